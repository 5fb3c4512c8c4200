//! Applying migrations: a history table on the server, a named lock around the run, checksums that
//! keep applied migrations from changing silently, and per-statement progress so that a migration that
//! failed midway (MySQL commits DDL at once) is reported exactly and can resume.
//!
//! [`prepare`] splits the scripts, [`history::History`] owns the history table's SQL, [`plan`] decides
//! where each migration starts, and [`run`] applies them under the lock.

mod history;
mod plan;
mod prepare;
mod sql;
#[cfg(test)]
mod tests;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use stackhand::cfn::stable_digest;
use tokio::time::Instant;

use self::history::{History, InFlight};
use self::plan::{interruption, plan, InterruptedBy};
use self::sql::{db_error, excerpt, is_dml, is_session_statement, is_transaction_control};
use crate::props::Properties;
use crate::source::Login;
use crate::target::Target;
use crate::{db, SchemaError};

pub use self::prepare::{prepare, Prepared};
pub(crate) use self::sql::{error_text, server_message};

/// No statement starts with less than this left before the deadline: one that outlives the invocation
/// leaves its outcome unknown. The run stops cleanly instead, and the next run resumes there.
pub const START_MARGIN: Duration = Duration::from_secs(10);
/// A statement still running this long before the deadline is stopped: its connection is killed from
/// a new one (which also frees the schema lock), with time left to say so.
pub const ABORT_MARGIN: Duration = Duration::from_secs(4);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Migrations applied (or finished) by this run, in order.
    pub applied: Vec<String>,
    /// The last migration in order; all of them are applied when a run succeeds.
    pub version: String,
}

/// How many DML statements share one transaction at most.
const MAX_BATCH: usize = 500;

/// Records that statement `failed` (0-based) failed with `committed` statements applied before it,
/// and builds the error CloudFormation shows.
async fn record_failure(
    conn: &mut Conn,
    history: History<'_>,
    p: &Prepared,
    committed: usize,
    failed: usize,
    e: mysql_async::Error,
) -> SchemaError {
    let message = error_text(&e);
    let id = &p.migration.id;
    history.record_failed(conn, id, committed, &p.prefixes[committed], &message).await;
    let mut committed_text = if committed == 0 {
        "No statement of it had been applied; a later run starts it over".to_owned()
    } else {
        format!(
            "Statements 1-{committed} of it were applied and are committed (MySQL commits DDL at once); a later run \
             with those statements unchanged resumes at statement {}",
            committed + 1
        )
    };
    if failed > committed {
        committed_text.push_str(&format!(
            ". Statements {}-{failed} ran in one transaction with it and were rolled back",
            committed + 1
        ));
    }
    let statement = &p.statements[failed];
    SchemaError::Statement {
        migration: id.clone(),
        number: failed + 1,
        total: p.statements.len(),
        line: statement.line,
        excerpt: excerpt(&statement.text),
        message,
        committed: committed_text,
    }
}

/// What a run needs besides the migrations: the properties, the endpoint and login for a second
/// connection (to kill a statement that outlives its time) and the deadline.
pub struct Context<'a> {
    pub props: &'a Properties,
    pub target: &'a Target,
    pub login: &'a Login,
    pub deadline: Instant,
}

pub async fn run(conn: &mut Conn, cx: &Context<'_>, prepared: &[Prepared]) -> Result<Report, SchemaError> {
    let (database, source) = History::of(cx.props).scope();
    History::create(conn).await?;

    // Two stacks, or two deliveries of one event, never apply concurrently: the second waits here,
    // leaving itself the time to start a statement.
    let lock = format!("stackhand-schema:{}", stable_digest(&[database, source]));
    let wait = cx.deadline.saturating_duration_since(Instant::now()).saturating_sub(START_MARGIN);
    let started = Instant::now();
    let got: Option<Option<i64>> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (&lock, wait.as_secs()))
        .await
        .map_err(|e| db_error("taking the schema lock", e))?;
    if got.flatten() != Some(1) {
        let holder: Option<Option<u64>> = conn.exec_first("SELECT IS_USED_LOCK(?)", (&lock,)).await.unwrap_or(None);
        let holder = match holder.flatten() {
            Some(id) => format!(
                " (held by connection {id}: if no other run of this resource is in progress, it is a session an \
                 interrupted run left behind; see SHOW PROCESSLIST and end it with KILL {id})"
            ),
            None => String::new(),
        };
        return Err(SchemaError::Locked { source_key: source.to_owned(), waited: started.elapsed(), holder });
    }
    tracing::info!(lock = %lock, waited_ms = started.elapsed().as_millis() as u64, "schema lock held");
    let result = apply_all(conn, cx, prepared).await;
    // A killed session took the lock with it; a lost one cannot answer: never wait long here.
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.exec_drop("DO RELEASE_LOCK(?)", (&lock,))).await;
    result
}

async fn apply_all(conn: &mut Conn, cx: &Context<'_>, prepared: &[Prepared]) -> Result<Report, SchemaError> {
    let history = History::of(cx.props);
    let (_, source) = history.scope();
    let rows = history.read(conn).await?;
    let starts = match plan(prepared, &rows, history.scope()) {
        Err(e @ SchemaError::Interrupted(_)) => {
            // A row an earlier version marked has no checksum for "took effect" to copy: give it the
            // current one (its prefix is unchanged, or plan would have said so).
            for (p, h) in
                prepared.iter().filter_map(|p| rows.iter().find(|h| h.migration == p.migration.id).map(|h| (p, h)))
            {
                if let Some(InFlight { statement, checksum: None, .. }) = &h.in_flight {
                    if let Some(prefix) = p.prefixes.get(*statement) {
                        history.fill_in_flight_checksum(conn, &p.migration.id, prefix).await;
                    }
                }
            }
            return Err(e);
        }
        other => other?,
    };
    let mut report =
        Report { version: prepared.last().map(|p| p.migration.id.clone()).unwrap_or_default(), ..Report::default() };
    for (p, start) in prepared.iter().zip(starts) {
        let Some(start) = start else { continue };
        apply_one(conn, cx, p, start).await?;
        report.applied.push(p.migration.id.clone());
    }
    if report.applied.is_empty() {
        tracing::info!(%source, version = %report.version, "nothing pending");
    }
    Ok(report)
}

/// Ends connection `id` from a new connection (a statement that outlived its time, or one whose
/// client is gone): the server rolls back its transaction and frees its schema lock. On success the
/// new connection replaces `conn`. Says what happened, for the Reason.
async fn kill(conn: &mut Conn, cx: &Context<'_>, id: u32) -> String {
    let mut other = match db::connect(cx.props, cx.target, cx.login, cx.deadline).await {
        Ok(other) => other,
        Err(e) => return format!("killing connection {id} from a new connection failed too ({e})"),
    };
    match other.query_drop(format!("KILL CONNECTION {id}")).await {
        // 1094: no such thread, it has ended already.
        Ok(()) | Err(mysql_async::Error::Server(mysql_async::ServerError { code: 1094, .. })) => {
            tracing::warn!(connection = id, "killed the connection of an interrupted statement");
            *conn = other;
            format!("connection {id} was killed")
        }
        Err(e) => format!("killing connection {id} failed too ({})", error_text(&e)),
    }
}

async fn apply_one(conn: &mut Conn, cx: &Context<'_>, p: &Prepared, start: usize) -> Result<(), SchemaError> {
    let props = cx.props;
    let history = History::of(props);
    let scope = history.scope();
    let id = &p.migration.id;
    let total = p.statements.len();
    history.start(conn, id, &p.checksum, total, start, &p.prefixes[start]).await?;
    if let Some(database) = &props.database {
        conn.query_drop(format!("USE `{database}`")).await.map_err(|e| match e {
            mysql_async::Error::Server(ref s) if s.code == 1049 => SchemaError::Input(format!(
                "Database {database} does not exist on the server; create it (the cluster's DatabaseName, or \
                 CREATE DATABASE in the first migration without the Database property)"
            )),
            e => db_error("selecting the Database", e),
        })?;
    }
    if start > 0 {
        tracing::info!(migration = %id, resume_at = start + 1, total, "resuming after an earlier failure");
        for s in p.statements[..start].iter().filter(|s| is_session_statement(&s.text)) {
            conn.query_drop(&s.text).await.map_err(|e| db_error("re-running a session statement", e))?;
        }
    }
    // A script that manages its own transactions is run as written, one statement at a time.
    let batchable = !p.statements.iter().any(|s| is_transaction_control(&s.text));
    let mut next = start;
    while next < total {
        let left = cx.deadline.saturating_duration_since(Instant::now());
        if left < START_MARGIN {
            let statement = &p.statements[next];
            let why = format!("stopped for time before statement {} with {:.1} s left", next + 1, left.as_secs_f64());
            history.record_stopped(conn, id, &why).await;
            return Err(SchemaError::OutOfTime {
                migration: id.clone(),
                number: next + 1,
                total,
                line: statement.line,
                excerpt: excerpt(&statement.text),
                left,
                margin: START_MARGIN,
            });
        }
        // A run of DML statements goes in one transaction with its progress record: all of it lands
        // with the record, or none of it does. Anything else commits on its own (DDL always does), so
        // it is recorded as in flight first: if its outcome is ever unknown, no run repeats it blindly.
        let batch = batchable && is_dml(&p.statements[next].text);
        let end = if batch {
            next + p.statements[next..].iter().take(MAX_BATCH).take_while(|s| is_dml(&s.text)).count()
        } else {
            next + 1
        };
        let connection = conn.id();
        if batch {
            conn.query_drop("START TRANSACTION").await.map_err(|e| db_error("starting a transaction", e))?;
        } else {
            history.mark_in_flight(conn, id, end, &p.prefixes[end], connection).await?;
        }
        let stop = cx.deadline.checked_sub(ABORT_MARGIN).unwrap_or(cx.deadline);
        for (i, statement) in p.statements.iter().enumerate().take(end).skip(next) {
            let outcome = tokio::time::timeout_at(stop, conn.query_drop(&statement.text)).await;
            let lost = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e @ mysql_async::Error::Server(_))) => {
                    if batch {
                        let _ = conn.query_drop("ROLLBACK").await;
                    }
                    return Err(record_failure(conn, history, p, next, i, e).await);
                }
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => None,
            };
            // The statement's outcome is unknown and its session may live on (holding the lock):
            // end it from a new connection.
            tracing::warn!(migration = %id, statement = i + 1, error = ?lost, "statement interrupted; killing its connection");
            let killed = kill(conn, cx, connection).await;
            if batch {
                return Err(SchemaError::Database(format!(
                    "migration {id}: statements {}-{end} (one transaction) were interrupted ({}); {killed}, so \
                     they were rolled back unless their commit had gone through, which the history records with \
                     them: a later run resumes exactly where it says",
                    next + 1,
                    lost.unwrap_or_else(|| format!("still running {} s before the deadline", ABORT_MARGIN.as_secs()))
                )));
            }
            let f = InFlight {
                statement: end,
                checksum: Some(p.prefixes[end].clone()),
                connection: Some(connection.into()),
                since: String::new(),
            };
            let by = match lost {
                Some(error) => InterruptedBy::LostConnection { error, killed },
                None => InterruptedBy::Deadline { killed, margin: ABORT_MARGIN },
            };
            return Err(interruption(p, &f, scope, by));
        }
        history.record_progress(conn, id, end, &p.prefixes[end]).await?;
        if batch {
            conn.query_drop("COMMIT")
                .await
                .map_err(|e| db_error(&format!("committing statements {}-{end} of {id}", next + 1), e))?;
        }
        next = end;
    }
    history.record_applied(conn, id).await?;
    tracing::info!(migration = %id, statements = total - start, "applied");
    Ok(())
}
