//! Applying migrations: a history table on the server, a named lock around the run, checksums that
//! keep applied migrations from changing silently, and per-statement progress so that a migration that
//! failed midway (MySQL commits DDL at once) is reported exactly and can resume.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sha2::{Digest, Sha256};
use stackhand::cfn::stable_digest;
use tokio::time::Instant;

use crate::error::Interruption;
use crate::props::Properties;
use crate::source::{hex, normalise, Login, Migration};
use crate::split::{split, Statement};
use crate::{db, SchemaError};

/// No statement starts with less than this left before the deadline: one that outlives the invocation
/// leaves its outcome unknown. The run stops cleanly instead, and the next run resumes there.
pub const START_MARGIN: Duration = Duration::from_secs(10);
/// A statement still running this long before the deadline is stopped: its connection is killed from
/// a new one (which also frees the schema lock), with time left to say so.
pub const ABORT_MARGIN: Duration = Duration::from_secs(4);

/// The history lives in its own database so that no application schema is touched by it.
pub const HISTORY_DATABASE: &str = "stackhand";
pub const HISTORY_TABLE: &str = "`stackhand`.`schema_history`";

/// The history is kept per target database and source: one SQL path applied to two databases on one
/// server is two histories. Scripts run without a Database (they `USE` their own) share the scope "".
fn target_database(props: &Properties) -> &str {
    props.database.as_deref().unwrap_or_default()
}

/// A migration split into statements, with the checksum of each prefix (`prefixes[k]` covers the
/// first `k` statements) to recognise, on resume, that what already ran is unchanged.
pub struct Prepared {
    pub migration: Migration,
    pub checksum: String,
    pub statements: Vec<Statement>,
    prefixes: Vec<String>,
}

/// Splits every migration before anything connects: a script that cannot be split applies nothing.
pub fn prepare(migrations: Vec<Migration>) -> Result<Vec<Prepared>, SchemaError> {
    migrations
        .into_iter()
        .map(|migration| {
            let statements = split(&normalise(&migration.sql))
                .map_err(|source| SchemaError::Split { migration: migration.id.clone(), source })?;
            let mut hasher = Sha256::new();
            let mut prefixes = vec![hex(&hasher.clone().finalize())];
            for s in &statements {
                hasher.update(s.text.as_bytes());
                hasher.update([0u8]);
                prefixes.push(hex(&hasher.clone().finalize()));
            }
            Ok(Prepared { checksum: migration.checksum(), migration, statements, prefixes })
        })
        .collect()
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Migrations applied (or finished) by this run, in order.
    pub applied: Vec<String>,
    /// The last migration in order; all of them are applied when a run succeeds.
    pub version: String,
}

/// One history row.
struct Applied {
    migration: String,
    checksum: String,
    status: String,
    statements_applied: usize,
    prefix: String,
    finished: String,
    /// The statement that was running when the run that started it stopped answering.
    in_flight: Option<InFlight>,
}

/// A statement recorded before it ran and not yet recorded as done (nor failed).
#[derive(Debug, Clone, PartialEq, Eq)]
struct InFlight {
    /// 1-based.
    statement: usize,
    /// The prefix checksum through that statement, as it was when it ran.
    checksum: Option<String>,
    connection: Option<u64>,
    since: String,
}

fn db_error(what: &str, e: mysql_async::Error) -> SchemaError {
    SchemaError::Database(format!("{what}: {e}"))
}

/// The statement as one short line for a Reason, with string literals masked: a failing
/// `CREATE USER … IDENTIFIED BY '…'` must not put a password into the stack's events.
fn excerpt(text: &str) -> String {
    let masked = mask_literals(text);
    let one_line: String = masked.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 80 {
        format!("{}…", one_line.chars().take(80).collect::<String>())
    } else {
        one_line
    }
}

/// Replaces the contents of '…' and "…" literals with `…` (backslash escapes and doubled quotes
/// understood); names in backticks stay.
fn mask_literals(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '\'' && c != '"' {
            continue;
        }
        out.push('…');
        while let Some(inner) = chars.next() {
            match inner {
                '\\' => {
                    chars.next();
                }
                q if q == c && chars.peek() == Some(&c) => {
                    chars.next();
                }
                q if q == c => {
                    out.push(c);
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

/// The server's message, with the literals in its `near '…'` fragment (raw SQL) masked.
fn server_message(message: &str) -> String {
    match (message.find("near '"), message.rfind("' at line")) {
        (Some(start), Some(end)) if end > start + 6 => {
            let fragment = &message[start + 6..end];
            format!("{}near '{}{}", &message[..start], mask_literals(fragment), &message[end..])
        }
        _ => message.to_owned(),
    }
}

/// How many DML statements share one transaction at most.
const MAX_BATCH: usize = 500;

fn first_keyword(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == '(').find(|w| !w.is_empty()).unwrap_or_default().to_ascii_uppercase()
}

fn is_dml(text: &str) -> bool {
    matches!(first_keyword(text).as_str(), "INSERT" | "UPDATE" | "DELETE" | "REPLACE")
}

/// Statements by which a script takes charge of its own transactions.
fn is_transaction_control(text: &str) -> bool {
    let first = first_keyword(text);
    let autocommit = first == "SET" && text.to_ascii_lowercase().contains("autocommit");
    autocommit
        || matches!(
            first.as_str(),
            "START" | "BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "XA" | "LOCK" | "UNLOCK"
        )
}

/// Records that statement `failed` (0-based) failed with `committed` statements applied before it,
/// and builds the error CloudFormation shows.
async fn record_failure(
    conn: &mut Conn,
    props: &Properties,
    p: &Prepared,
    committed: usize,
    failed: usize,
    e: mysql_async::Error,
) -> SchemaError {
    let message = match &e {
        mysql_async::Error::Server(s) => format!("{} (error {})", server_message(&s.message), s.code),
        other => other.to_string(),
    };
    let id = &p.migration.id;
    let _ = conn
        .exec_drop(
            format!(
                "UPDATE {HISTORY_TABLE} SET status = 'failed', statements_applied = ?, applied_prefix_checksum = ?,
                    error = ?, finished_at = UTC_TIMESTAMP(6), in_flight_statement = NULL WHERE target_database = ? AND source = ? AND migration = ?"
            ),
            (committed as u32, &p.prefixes[committed], &message, target_database(props), props.sql.key(), id),
        )
        .await;
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

/// Session statements are re-run when a migration resumes: they set up the connection, not the schema.
fn is_session_statement(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default();
    first.eq_ignore_ascii_case("USE") || first.eq_ignore_ascii_case("SET")
}

/// A string as a single-quoted SQL literal.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The columns that record a statement in flight. Added to a history table an earlier version created;
/// its `running` rows are then marked in flight at their next statement, since that version did not
/// record whether it had run.
const IN_FLIGHT_COLUMNS: &str = "in_flight_statement INT UNSIGNED NULL, in_flight_checksum CHAR(64) NULL, \
     in_flight_connection BIGINT UNSIGNED NULL, in_flight_since DATETIME(6) NULL";

async fn create_history(conn: &mut Conn) -> Result<(), SchemaError> {
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{HISTORY_DATABASE}`"))
        .await
        .map_err(|e| db_error("creating the history database `stackhand` (the user needs CREATE)", e))?;
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
            target_database VARCHAR(64) NOT NULL,
            source VARCHAR(255) NOT NULL,
            migration VARCHAR(255) NOT NULL,
            checksum CHAR(64) NOT NULL,
            status ENUM('running', 'failed', 'applied') NOT NULL,
            statements_total INT UNSIGNED NOT NULL,
            statements_applied INT UNSIGNED NOT NULL DEFAULT 0,
            applied_prefix_checksum CHAR(64) NOT NULL,
            error TEXT NULL,
            started_at DATETIME(6) NOT NULL,
            finished_at DATETIME(6) NULL,
            {IN_FLIGHT_COLUMNS},
            PRIMARY KEY (target_database, source, migration)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    ))
    .await
    .map_err(|e| db_error("creating the history table stackhand.schema_history", e))?;
    let present: Option<u64> = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'stackhand' \
             AND TABLE_NAME = 'schema_history' AND COLUMN_NAME = 'in_flight_statement'",
        )
        .await
        .map_err(|e| db_error("reading the history table's columns", e))?;
    if present.unwrap_or(0) > 0 {
        return Ok(());
    }
    let add = IN_FLIGHT_COLUMNS.split(", ").map(|c| format!("ADD COLUMN {c}")).collect::<Vec<_>>().join(", ");
    match conn.query_drop(format!("ALTER TABLE {HISTORY_TABLE} {add}")).await {
        // Another run added them meanwhile.
        Err(mysql_async::Error::Server(e)) if e.code == 1060 => return Ok(()),
        Err(e) => {
            return Err(db_error("adding the in-flight columns to stackhand.schema_history (the user needs ALTER)", e))
        }
        Ok(()) => {}
    }
    conn.query_drop(format!(
        "UPDATE {HISTORY_TABLE} SET in_flight_statement = statements_applied + 1
         WHERE status = 'running' AND statements_applied < statements_total"
    ))
    .await
    .map_err(|e| db_error("marking the running migrations of an earlier version", e))
}

/// What a run needs besides the migrations: the properties, the login for a second connection (to
/// kill a statement that outlives its time) and the deadline.
pub struct Context<'a> {
    pub props: &'a Properties,
    pub login: &'a Login,
    pub deadline: Instant,
}

pub async fn run(conn: &mut Conn, cx: &Context<'_>, prepared: &[Prepared]) -> Result<Report, SchemaError> {
    let props = cx.props;
    let source = props.sql.key();
    create_history(conn).await?;

    // Two stacks, or two deliveries of one event, never apply concurrently: the second waits here,
    // leaving itself the time to start a statement.
    let lock = format!("stackhand-schema:{}", stable_digest(&[target_database(props), source]));
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

async fn history(conn: &mut Conn, props: &Properties) -> Result<Vec<Applied>, SchemaError> {
    type Row =
        (String, String, String, u32, String, Option<String>, Option<u32>, Option<String>, Option<u64>, Option<String>);
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT migration, checksum, status, statements_applied, applied_prefix_checksum,
                        DATE_FORMAT(COALESCE(finished_at, started_at), '%Y-%m-%dT%H:%i:%sZ'),
                        in_flight_statement, in_flight_checksum, in_flight_connection,
                        DATE_FORMAT(in_flight_since, '%Y-%m-%dT%H:%i:%sZ')
                 FROM {HISTORY_TABLE} WHERE target_database = ? AND source = ?"
            ),
            (target_database(props), props.sql.key()),
        )
        .await
        .map_err(|e| db_error("reading the history", e))?;
    Ok(rows
        .into_iter()
        .map(|(migration, checksum, status, applied, prefix, finished, statement, in_checksum, connection, since)| {
            let in_flight = match (status.as_str(), statement) {
                ("running", Some(statement)) => Some(InFlight {
                    statement: statement as usize,
                    checksum: in_checksum,
                    connection,
                    since: since.unwrap_or_default(),
                }),
                _ => None,
            };
            Applied {
                migration,
                checksum,
                status,
                statements_applied: applied as usize,
                prefix,
                finished: finished.unwrap_or_default(),
                in_flight,
            }
        })
        .collect())
}

/// The leading decimal number of a migration name, without leading zeros (`None` if it has none).
fn leading_number(id: &str) -> Option<&str> {
    let digits = id.len() - id.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    (digits > 0).then(|| id[..digits].trim_start_matches('0'))
}

/// Whether `a` has the higher leading number of the two (numbers compared as numbers).
fn numbered_higher(a: &str, b: &str) -> bool {
    match (leading_number(a), leading_number(b)) {
        (Some(x), Some(y)) => (x.len(), x) > (y.len(), y),
        _ => false,
    }
}

/// Refuses new migrations that would run out of order: one whose name sorts before a migration already
/// started or applied, and new numbered ones whose names sort against their numbers (`10-x` before
/// `2-y`: names compare byte by byte).
fn check_order(prepared: &[Prepared], history: &[Applied]) -> Result<(), SchemaError> {
    let known = |id: &str| history.iter().any(|h| h.migration == id);
    let mut problems = Vec::new();
    for p in prepared.iter().filter(|p| !known(&p.migration.id)) {
        let id = &p.migration.id;
        if let Some(later) =
            history.iter().filter(|h| h.migration.as_str() > id.as_str()).max_by(|a, b| a.migration.cmp(&b.migration))
        {
            problems.push(format!(
                "migration {id} (parameter {}) is new, but its name sorts before {}, which an earlier run already \
                 {} on {}",
                p.migration.parameter,
                later.migration,
                if later.status == "applied" { "applied" } else { "started" },
                later.finished
            ));
        }
    }
    let pending: Vec<&Prepared> = prepared.iter().filter(|p| !known(&p.migration.id)).collect();
    for (i, a) in pending.iter().enumerate() {
        if let Some(b) = pending[i + 1..].iter().find(|b| numbered_higher(&a.migration.id, &b.migration.id)) {
            problems.push(format!(
                "migrations {} and {} are new, and {} would run first although its number is higher",
                a.migration.id, b.migration.id, a.migration.id
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(SchemaError::OutOfOrder(problems.join("; ")))
}

/// Where each migration starts: `None` when applied and unchanged, `Some(k)` to run from statement k.
fn plan(prepared: &[Prepared], history: &[Applied], scope: (&str, &str)) -> Result<Vec<Option<usize>>, SchemaError> {
    let mut changed = Vec::new();
    let mut interrupted = None;
    let mut starts = Vec::new();
    for p in prepared {
        let id = &p.migration.id;
        let start = match history.iter().find(|h| &h.migration == id) {
            None => Some(0),
            Some(h) if h.status == "applied" && h.checksum == p.checksum => None,
            Some(h) if h.status == "applied" => {
                changed.push(format!(
                    "migration {id} (parameter {}) was applied on {} with checksum {}…, but its SQL now has checksum {}…",
                    p.migration.parameter,
                    h.finished,
                    &h.checksum[..12],
                    &p.checksum[..12]
                ));
                None
            }
            Some(h) => {
                let k = h.statements_applied.min(p.statements.len());
                if p.prefixes[k] != h.prefix {
                    changed.push(format!(
                        "migration {id} failed on {} after statements 1-{k} had been applied and committed, \
                         and those statements have changed since, so it cannot resume",
                        h.finished
                    ));
                    None
                } else {
                    if let (Some(f), None) = (&h.in_flight, &interrupted) {
                        interrupted = Some(interruption(p, f, scope, InterruptedBy::EarlierRun));
                    }
                    Some(k)
                }
            }
        };
        starts.push(start);
    }
    if !changed.is_empty() {
        return Err(SchemaError::Changed(format!(
            "{}. Applied SQL never runs again, so the change would be silently ignored: restore the original SQL \
             and put the change in a new migration that sorts after it (a new parameter under SqlParameterPath). \
             Nothing was applied",
            changed.join("; ")
        )));
    }
    check_order(prepared, history)?;
    if let Some(e) = interrupted {
        return Err(e);
    }
    Ok(starts)
}

/// How a statement came to be in flight with its outcome unknown.
enum InterruptedBy {
    EarlierRun,
    Deadline { killed: String },
    LostConnection { error: String, killed: String },
}

/// The error for statement `f.statement` of `p` whose outcome is unknown, with what the operator checks
/// and the two UPDATEs that record the answer.
fn interruption(p: &Prepared, f: &InFlight, (database, source): (&str, &str), by: InterruptedBy) -> SchemaError {
    let n = f.statement.clamp(1, p.statements.len().max(1));
    let statement = p.statements.get(n - 1);
    let connection = f.connection.map_or("of that run".to_owned(), |c| c.to_string());
    let mut cause = match by {
        InterruptedBy::EarlierRun => {
            format!("an earlier run started it on connection {connection} at {} and stopped answering", f.since)
        }
        InterruptedBy::Deadline { killed } => {
            format!("it was still running {} s before the deadline; {killed}", ABORT_MARGIN.as_secs())
        }
        InterruptedBy::LostConnection { error, killed } => format!("the connection was lost ({error}); {killed}"),
    };
    if f.checksum.as_deref().is_some_and(|c| Some(c) != p.prefixes.get(n).map(String::as_str)) {
        cause.push_str("; its text has changed since it ran");
    }
    let key = format!(
        "target_database = {} AND source = {} AND migration = {}",
        quoted(database),
        quoted(source),
        quoted(&p.migration.id)
    );
    SchemaError::Interrupted(Box::new(Interruption {
        migration: p.migration.id.clone(),
        number: n,
        total: p.statements.len(),
        line: statement.map_or(0, |s| s.line),
        excerpt: statement.map(|s| excerpt(&s.text)).unwrap_or_default(),
        cause,
        connection,
        key,
    }))
}

async fn apply_all(conn: &mut Conn, cx: &Context<'_>, prepared: &[Prepared]) -> Result<Report, SchemaError> {
    let props = cx.props;
    let source = props.sql.key();
    let history = history(conn, props).await?;
    let starts = match plan(prepared, &history, (target_database(props), source)) {
        Err(e @ SchemaError::Interrupted(_)) => {
            // A row an earlier version marked has no checksum for "took effect" to copy: give it the
            // current one (its prefix is unchanged, or plan would have said so).
            for (p, h) in
                prepared.iter().filter_map(|p| history.iter().find(|h| h.migration == p.migration.id).map(|h| (p, h)))
            {
                if let Some(InFlight { statement, checksum: None, .. }) = &h.in_flight {
                    if let Some(prefix) = p.prefixes.get(*statement) {
                        let _ = conn
                            .exec_drop(
                                format!(
                                    "UPDATE {HISTORY_TABLE} SET in_flight_checksum = ? WHERE target_database = ? \
                                     AND source = ? AND migration = ? AND in_flight_checksum IS NULL"
                                ),
                                (prefix, target_database(props), source, &p.migration.id),
                            )
                            .await;
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
    let mut other = match db::connect(cx.props, cx.login, cx.deadline).await {
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
        Err(e) => format!("killing connection {id} failed too ({e})"),
    }
}

async fn apply_one(conn: &mut Conn, cx: &Context<'_>, p: &Prepared, start: usize) -> Result<(), SchemaError> {
    let props = cx.props;
    let source = props.sql.key();
    let scope = (target_database(props), source);
    let id = &p.migration.id;
    let total = p.statements.len();
    conn.exec_drop(
        format!(
            "INSERT INTO {HISTORY_TABLE}
                (target_database, source, migration, checksum, status, statements_total, statements_applied,
                 applied_prefix_checksum, started_at)
             VALUES (?, ?, ?, ?, 'running', ?, ?, ?, UTC_TIMESTAMP(6))
             ON DUPLICATE KEY UPDATE checksum = VALUES(checksum), status = 'running',
                statements_total = VALUES(statements_total), error = NULL, started_at = UTC_TIMESTAMP(6), finished_at = NULL,
                in_flight_statement = NULL"
        ),
        (target_database(props), source, id, &p.checksum, total as u32, start as u32, &p.prefixes[start]),
    )
    .await
    .map_err(|e| db_error("recording the migration's start", e))?;
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
    let progress = format!(
        "UPDATE {HISTORY_TABLE} SET statements_applied = ?, applied_prefix_checksum = ?, in_flight_statement = NULL,
            in_flight_checksum = NULL, in_flight_connection = NULL, in_flight_since = NULL
         WHERE target_database = ? AND source = ? AND migration = ?"
    );
    let in_flight = format!(
        "UPDATE {HISTORY_TABLE} SET in_flight_statement = ?, in_flight_checksum = ?, in_flight_connection = ?,
            in_flight_since = UTC_TIMESTAMP(6)
         WHERE target_database = ? AND source = ? AND migration = ?"
    );
    // A script that manages its own transactions is run as written, one statement at a time.
    let batchable = !p.statements.iter().any(|s| is_transaction_control(&s.text));
    let mut next = start;
    while next < total {
        let left = cx.deadline.saturating_duration_since(Instant::now());
        if left < START_MARGIN {
            let statement = &p.statements[next];
            let why = format!("stopped for time before statement {} with {:.1} s left", next + 1, left.as_secs_f64());
            let _ = conn
                .exec_drop(
                    format!(
                        "UPDATE {HISTORY_TABLE} SET status = 'failed', error = ?, finished_at = UTC_TIMESTAMP(6)
                         WHERE target_database = ? AND source = ? AND migration = ?"
                    ),
                    (&why, target_database(props), source, id),
                )
                .await;
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
            conn.exec_drop(&in_flight, (end as u32, &p.prefixes[end], connection, target_database(props), source, id))
                .await
                .map_err(|e| db_error(&format!("recording statement {end} of {id} as in flight"), e))?;
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
                    return Err(record_failure(conn, props, p, next, i, e).await);
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
                None => InterruptedBy::Deadline { killed },
            };
            return Err(interruption(p, &f, scope, by));
        }
        conn.exec_drop(&progress, (end as u32, &p.prefixes[end], target_database(props), source, id))
            .await
            .map_err(|e| db_error(&format!("recording progress of migration {id} at statement {end}"), e))?;
        if batch {
            conn.query_drop("COMMIT")
                .await
                .map_err(|e| db_error(&format!("committing statements {}-{end} of {id}", next + 1), e))?;
        }
        next = end;
    }
    conn.exec_drop(
        format!(
            "UPDATE {HISTORY_TABLE} SET status = 'applied', finished_at = UTC_TIMESTAMP(6)
             WHERE target_database = ? AND source = ? AND migration = ?"
        ),
        (target_database(props), source, id),
    )
    .await
    .map_err(|e| db_error("recording the migration as applied", e))?;
    tracing::info!(migration = %id, statements = total - start, "applied");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(id: &str, sql: &str) -> Migration {
        Migration { id: id.into(), parameter: format!("/app/schema/{id}"), sql: sql.into() }
    }

    fn applied(id: &str, p: &Prepared) -> Applied {
        Applied {
            migration: id.into(),
            checksum: p.checksum.clone(),
            status: "applied".into(),
            statements_applied: p.statements.len(),
            prefix: p.prefixes[p.statements.len()].clone(),
            finished: "2026-11-22T03:00:00Z".into(),
            in_flight: None,
        }
    }

    const SCOPE: (&str, &str) = ("app", "/app/schema");

    #[test]
    fn applied_migrations_are_skipped_and_new_ones_start_at_the_top() {
        let prepared =
            prepare(vec![migration("0001", "CREATE TABLE a (x int);"), migration("0002", "SELECT 1;")]).unwrap();
        let history = [applied("0001", &prepared[0])];
        assert_eq!(plan(&prepared, &history, SCOPE).unwrap(), vec![None, Some(0)]);
    }

    #[test]
    fn a_changed_applied_migration_stops_everything_and_says_what_to_do() {
        let old = prepare(vec![migration("0001", "CREATE TABLE a (x int);")]).unwrap();
        let new =
            prepare(vec![migration("0001", "CREATE TABLE a (x bigint);"), migration("0002", "SELECT 1;")]).unwrap();
        let err = plan(&new, &[applied("0001", &old[0])], SCOPE).unwrap_err().to_string();
        assert!(
            err.contains("migration 0001 (parameter /app/schema/0001) was applied on 2026-11-22T03:00:00Z"),
            "{err}"
        );
        assert!(err.contains("new migration"), "{err}");
        assert!(err.ends_with("Nothing was applied"), "{err}");
    }

    #[test]
    fn a_failed_migration_resumes_after_its_unchanged_prefix() {
        let p =
            prepare(vec![migration("0001", "CREATE TABLE a (x int); CREATE TABLE b (oops); CREATE TABLE c (z int);")])
                .unwrap();
        let failed = Applied {
            migration: "0001".into(),
            checksum: "whatever".into(),
            status: "failed".into(),
            statements_applied: 1,
            prefix: p[0].prefixes[1].clone(),
            finished: String::new(),
            in_flight: None,
        };
        let fixed =
            prepare(vec![migration("0001", "CREATE TABLE a (x int); CREATE TABLE b (y int); CREATE TABLE c (z int);")])
                .unwrap();
        assert_eq!(plan(&fixed, std::slice::from_ref(&failed), SCOPE).unwrap(), vec![Some(1)]);
        let rewritten = prepare(vec![migration("0001", "CREATE TABLE a2 (x int); CREATE TABLE b (y int);")]).unwrap();
        let err = plan(&rewritten, &[failed], SCOPE).unwrap_err().to_string();
        assert!(err.contains("cannot resume"), "{err}");
    }

    #[test]
    fn a_statement_left_in_flight_stops_the_run_with_how_to_confirm_it() {
        let p =
            prepare(vec![migration("0001", "CREATE TABLE a (x int);\nALTER TABLE a ADD y int;\nSELECT 1;")]).unwrap();
        let running = Applied {
            migration: "0001".into(),
            checksum: p[0].checksum.clone(),
            status: "running".into(),
            statements_applied: 1,
            prefix: p[0].prefixes[1].clone(),
            finished: "2026-11-22T03:00:00Z".into(),
            in_flight: Some(InFlight {
                statement: 2,
                checksum: Some(p[0].prefixes[2].clone()),
                connection: Some(42),
                since: "2026-11-22T03:00:01Z".into(),
            }),
        };
        let err = plan(&p, std::slice::from_ref(&running), ("app", "/app/schema")).unwrap_err();
        assert!(matches!(&err, SchemaError::Interrupted(i) if i.number == 2), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "migration 0001 was interrupted at statement 2 of 3 (line 2: ALTER TABLE a ADD y int): an earlier \
                 run started it on connection 42 at 2026-11-22T03:00:01Z and stopped answering."
            ),
            "{text}"
        );
        assert!(text.contains("connection 42 is gone"), "{text}");
        let key = "WHERE target_database = 'app' AND source = '/app/schema' AND migration = '0001'";
        assert!(
            text.contains(&format!(
                "If it took effect: UPDATE stackhand.schema_history SET statements_applied = in_flight_statement, \
                 applied_prefix_checksum = in_flight_checksum, in_flight_statement = NULL {key}; the next run continues"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "If it did not: UPDATE stackhand.schema_history SET in_flight_statement = NULL {key}"
            )),
            "{text}"
        );
        assert!(text.len() < 1500, "fits a Reason: {}", text.len());
        // Once answered (the in-flight mark cleared), the run resumes from what the history says.
        let answered = Applied { in_flight: None, ..running };
        assert_eq!(plan(&p, &[answered], SCOPE).unwrap(), vec![Some(1)]);
    }

    #[test]
    fn a_new_migration_that_sorts_before_an_applied_one_is_refused() {
        let p =
            prepare(vec![migration("1-a", "SELECT 1;"), migration("10-c", "SELECT 3;"), migration("2-b", "SELECT 2;")])
                .unwrap();
        let history = [applied("1-a", &p[0]), applied("2-b", &p[2])];
        let err = plan(&p, &history, SCOPE).unwrap_err();
        assert!(matches!(err, SchemaError::OutOfOrder(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "migration 10-c (parameter /app/schema/10-c) is new, but its name sorts before 2-b, which an earlier \
                 run already applied on 2026-11-22T03:00:00Z."
            ),
            "{text}"
        );
        assert!(text.contains("rename the parameters under SqlParameterPath"), "{text}");
        assert!(text.contains("zero-padded"), "{text}");
        assert!(text.ends_with("Nothing was applied"), "{text}");
        // Zero-padded names sort as they are numbered: nothing to refuse.
        let p = prepare(vec![
            migration("0001-a", "SELECT 1;"),
            migration("0002-b", "SELECT 2;"),
            migration("0010-c", "SELECT 3;"),
        ])
        .unwrap();
        let history = [applied("0001-a", &p[0]), applied("0002-b", &p[1])];
        assert_eq!(plan(&p, &history, SCOPE).unwrap(), vec![None, None, Some(0)]);
    }

    #[test]
    fn new_numbered_migrations_whose_names_sort_against_their_numbers_are_refused() {
        let p =
            prepare(vec![migration("1-a", "SELECT 1;"), migration("10-c", "SELECT 3;"), migration("2-b", "SELECT 2;")])
                .unwrap();
        let text = plan(&p, &[], SCOPE).unwrap_err().to_string();
        assert!(
            text.starts_with("migrations 10-c and 2-b are new, and 10-c would run first although its number is higher"),
            "{text}"
        );
        assert!(!numbered_higher("2024-01-01-x", "20240102-y") && !numbered_higher("0002-a", "10-b"));
        assert!(numbered_higher("10-a", "9-b") && !numbered_higher("init", "2-b"));
        // Names without numbers, or numbered in order, are left alone.
        let p = prepare(vec![migration("a-init", "SELECT 1;"), migration("b-next", "SELECT 2;")]).unwrap();
        assert_eq!(plan(&p, &[], SCOPE).unwrap(), vec![Some(0), Some(0)]);
    }

    #[test]
    fn splitting_errors_name_the_migration() {
        let err = prepare(vec![migration("0007-x", "SELECT 'unclosed;")]).err().unwrap().to_string();
        assert_eq!(err, "migration 0007-x: line 1: a quoted string opened here is never closed; nothing was applied");
    }

    #[test]
    fn literals_never_reach_a_reason() {
        assert_eq!(excerpt("CREATE USER app IDENTIFIED BY 's3cret;''x\\'y'"), "CREATE USER app IDENTIFIED BY '…'");
        assert_eq!(excerpt("INSERT INTO `t;x` VALUES (\"a\", 'b')"), "INSERT INTO `t;x` VALUES (\"…\", '…')");
        let server =
            "You have an error in your SQL syntax; check the manual near 'IDENTIFED BY 'hunter2-pw'' at line 1";
        let shown = server_message(server);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("near 'IDENTIFED BY '…'' at line 1"), "{shown}");
        assert_eq!(server_message("Table 'a' already exists"), "Table 'a' already exists");
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("CREATE TABLE t (\n  a int\n)"), "CREATE TABLE t ( a int )");
        assert_eq!(excerpt(&"x".repeat(100)).chars().count(), 81);
        assert!(
            is_session_statement("use mydb")
                && is_session_statement("SET NAMES utf8mb4")
                && !is_session_statement("SELECT 1")
        );
    }

    #[test]
    fn dml_and_transaction_control_are_told_apart() {
        assert!(
            is_dml("insert into t values (1)") && is_dml("REPLACE INTO t VALUES (1)") && is_dml("UPDATE t SET a=1")
        );
        assert!(!is_dml("CREATE TABLE t (a int)") && !is_dml("SELECT 1"));
        for tc in
            ["START TRANSACTION", "begin", "COMMIT", "rollback to s1", "SET autocommit = 0", "LOCK TABLES t WRITE"]
        {
            assert!(is_transaction_control(tc), "{tc}");
        }
        assert!(!is_transaction_control("CREATE PROCEDURE p() BEGIN SELECT 1; END"));
        assert!(!is_transaction_control("SET NAMES utf8mb4"));
    }
}
