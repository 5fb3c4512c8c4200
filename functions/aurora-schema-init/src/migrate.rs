//! Applying migrations: a history table on the server, a named lock around the run, checksums that
//! keep applied migrations from changing silently, and per-statement progress so that a migration that
//! failed midway (MySQL commits DDL at once) is reported exactly and can resume.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sha2::{Digest, Sha256};
use stackhand::cfn::stable_digest;
use tokio::time::Instant;

use crate::props::Properties;
use crate::source::{hex, normalise, Migration};
use crate::split::{split, Statement};
use crate::SchemaError;

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
                    error = ?, finished_at = UTC_TIMESTAMP(6) WHERE target_database = ? AND source = ? AND migration = ?"
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

pub async fn run(
    conn: &mut Conn,
    props: &Properties,
    prepared: &[Prepared],
    deadline: Instant,
) -> Result<Report, SchemaError> {
    let source = props.sql.key();
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
            PRIMARY KEY (target_database, source, migration)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    ))
    .await
    .map_err(|e| db_error("creating the history table stackhand.schema_history", e))?;

    // Two stacks, or two deliveries of one event, never apply concurrently: the second waits here.
    let lock = format!("stackhand-schema:{}", stable_digest(&[target_database(props), source]));
    let wait = deadline.saturating_duration_since(Instant::now()).saturating_sub(std::time::Duration::from_secs(1));
    let started = Instant::now();
    let got: Option<Option<i64>> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (&lock, wait.as_secs()))
        .await
        .map_err(|e| db_error("taking the schema lock", e))?;
    if got.flatten() != Some(1) {
        return Err(SchemaError::Locked { source_key: source.to_owned(), waited: started.elapsed() });
    }
    tracing::info!(lock = %lock, waited_ms = started.elapsed().as_millis() as u64, "schema lock held");
    let result = apply_all(conn, props, prepared).await;
    let _ = conn.exec_drop("DO RELEASE_LOCK(?)", (&lock,)).await;
    result
}

async fn history(conn: &mut Conn, props: &Properties) -> Result<Vec<Applied>, SchemaError> {
    let rows: Vec<(String, String, String, u32, String, Option<String>)> = conn
        .exec(
            format!(
                "SELECT migration, checksum, status, statements_applied, applied_prefix_checksum,
                        DATE_FORMAT(COALESCE(finished_at, started_at), '%Y-%m-%dT%H:%i:%sZ')
                 FROM {HISTORY_TABLE} WHERE target_database = ? AND source = ?"
            ),
            (target_database(props), props.sql.key()),
        )
        .await
        .map_err(|e| db_error("reading the history", e))?;
    Ok(rows
        .into_iter()
        .map(|(migration, checksum, status, applied, prefix, finished)| Applied {
            migration,
            checksum,
            status,
            statements_applied: applied as usize,
            prefix,
            finished: finished.unwrap_or_default(),
        })
        .collect())
}

/// Where each migration starts: `None` when applied and unchanged, `Some(k)` to run from statement k.
fn plan(prepared: &[Prepared], history: &[Applied]) -> Result<Vec<Option<usize>>, SchemaError> {
    let mut changed = Vec::new();
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
    Ok(starts)
}

async fn apply_all(conn: &mut Conn, props: &Properties, prepared: &[Prepared]) -> Result<Report, SchemaError> {
    let source = props.sql.key();
    let starts = plan(prepared, &history(conn, props).await?)?;
    let mut report =
        Report { version: prepared.last().map(|p| p.migration.id.clone()).unwrap_or_default(), ..Report::default() };
    for (p, start) in prepared.iter().zip(starts) {
        let Some(start) = start else { continue };
        apply_one(conn, props, p, start).await?;
        report.applied.push(p.migration.id.clone());
    }
    if report.applied.is_empty() {
        tracing::info!(%source, version = %report.version, "nothing pending");
    }
    Ok(report)
}

async fn apply_one(conn: &mut Conn, props: &Properties, p: &Prepared, start: usize) -> Result<(), SchemaError> {
    let source = props.sql.key();
    let id = &p.migration.id;
    let total = p.statements.len();
    conn.exec_drop(
        format!(
            "INSERT INTO {HISTORY_TABLE}
                (target_database, source, migration, checksum, status, statements_total, statements_applied,
                 applied_prefix_checksum, started_at)
             VALUES (?, ?, ?, ?, 'running', ?, ?, ?, UTC_TIMESTAMP(6))
             ON DUPLICATE KEY UPDATE checksum = VALUES(checksum), status = 'running',
                statements_total = VALUES(statements_total), error = NULL, started_at = UTC_TIMESTAMP(6), finished_at = NULL"
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
        "UPDATE {HISTORY_TABLE} SET statements_applied = ?, applied_prefix_checksum = ?
         WHERE target_database = ? AND source = ? AND migration = ?"
    );
    // A script that manages its own transactions is run as written, one statement at a time.
    let batchable = !p.statements.iter().any(|s| is_transaction_control(&s.text));
    let mut next = start;
    while next < total {
        // A run of DML statements goes in one transaction with its progress record: all of it lands
        // with the record, or none of it does. Anything else commits on its own (DDL always does).
        let end = if batchable && is_dml(&p.statements[next].text) {
            next + p.statements[next..].iter().take(MAX_BATCH).take_while(|s| is_dml(&s.text)).count()
        } else {
            next + 1
        };
        let batch = end - next > 1;
        if batch {
            conn.query_drop("START TRANSACTION").await.map_err(|e| db_error("starting a transaction", e))?;
        }
        for (i, statement) in p.statements.iter().enumerate().take(end).skip(next) {
            if let Err(e) = conn.query_drop(&statement.text).await {
                if batch {
                    let _ = conn.query_drop("ROLLBACK").await;
                }
                return Err(record_failure(conn, props, p, next, i, e).await);
            }
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
        }
    }

    #[test]
    fn applied_migrations_are_skipped_and_new_ones_start_at_the_top() {
        let prepared =
            prepare(vec![migration("0001", "CREATE TABLE a (x int);"), migration("0002", "SELECT 1;")]).unwrap();
        let history = [applied("0001", &prepared[0])];
        assert_eq!(plan(&prepared, &history).unwrap(), vec![None, Some(0)]);
    }

    #[test]
    fn a_changed_applied_migration_stops_everything_and_says_what_to_do() {
        let old = prepare(vec![migration("0001", "CREATE TABLE a (x int);")]).unwrap();
        let new =
            prepare(vec![migration("0001", "CREATE TABLE a (x bigint);"), migration("0002", "SELECT 1;")]).unwrap();
        let err = plan(&new, &[applied("0001", &old[0])]).unwrap_err().to_string();
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
        };
        let fixed =
            prepare(vec![migration("0001", "CREATE TABLE a (x int); CREATE TABLE b (y int); CREATE TABLE c (z int);")])
                .unwrap();
        assert_eq!(plan(&fixed, std::slice::from_ref(&failed)).unwrap(), vec![Some(1)]);
        let rewritten = prepare(vec![migration("0001", "CREATE TABLE a2 (x int); CREATE TABLE b (y int);")]).unwrap();
        let err = plan(&rewritten, &[failed]).unwrap_err().to_string();
        assert!(err.contains("cannot resume"), "{err}");
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
