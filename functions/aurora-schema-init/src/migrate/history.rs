//! The history table on the server, `stackhand.schema_history`: one row per migration of a source
//! applied to a target database, with its checksum, status and per-statement progress. [`History`]
//! owns every statement that reads or writes it.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::sql::db_error;
use crate::props::Properties;
use crate::SchemaError;

/// The history lives in its own database so that no application schema is touched by it.
pub const HISTORY_DATABASE: &str = "stackhand";
pub const HISTORY_TABLE: &str = "`stackhand`.`schema_history`";

/// The columns that record a statement in flight. Added to a history table an earlier version created;
/// its `running` rows are then marked in flight at their next statement, since that version did not
/// record whether it had run.
const IN_FLIGHT_COLUMNS: &str = "in_flight_statement INT UNSIGNED NULL, in_flight_checksum CHAR(64) NULL, \
     in_flight_connection BIGINT UNSIGNED NULL, in_flight_since DATETIME(6) NULL";

/// One history row.
pub(super) struct Applied {
    pub(super) migration: String,
    pub(super) checksum: String,
    pub(super) status: String,
    pub(super) statements_applied: usize,
    pub(super) prefix: String,
    pub(super) finished: String,
    /// The statement that was running when the run that started it stopped answering.
    pub(super) in_flight: Option<InFlight>,
}

/// A statement recorded before it ran and not yet recorded as done (nor failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InFlight {
    /// 1-based.
    pub(super) statement: usize,
    /// The prefix checksum through that statement, as it was when it ran.
    pub(super) checksum: Option<String>,
    pub(super) connection: Option<u64>,
    pub(super) since: String,
}

/// The history of one source applied to one target database.
///
/// The history is kept per target database and source: one SQL path applied to two databases on one
/// server is two histories. Scripts run without a Database (they `USE` their own) share the scope "".
#[derive(Debug, Clone, Copy)]
pub(super) struct History<'a> {
    database: &'a str,
    source: &'a str,
}

impl<'a> History<'a> {
    pub(super) fn of(props: &'a Properties) -> Self {
        Self { database: props.database.as_deref().unwrap_or_default(), source: props.sql.key() }
    }

    /// (target database, source): what the history's rows are keyed by, besides the migration.
    pub(super) fn scope(&self) -> (&'a str, &'a str) {
        (self.database, self.source)
    }

    /// Creates the history database and table if they are missing, and adds the in-flight columns to a
    /// table an earlier version created.
    pub(super) async fn create(conn: &mut Conn) -> Result<(), SchemaError> {
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
                return Err(db_error(
                    "adding the in-flight columns to stackhand.schema_history (the user needs ALTER)",
                    e,
                ))
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

    /// Every row of this history.
    pub(super) async fn read(&self, conn: &mut Conn) -> Result<Vec<Applied>, SchemaError> {
        type Row = (
            String,
            String,
            String,
            u32,
            String,
            Option<String>,
            Option<u32>,
            Option<String>,
            Option<u64>,
            Option<String>,
        );
        let rows: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT migration, checksum, status, statements_applied, applied_prefix_checksum,
                        DATE_FORMAT(COALESCE(finished_at, started_at), '%Y-%m-%dT%H:%i:%sZ'),
                        in_flight_statement, in_flight_checksum, in_flight_connection,
                        DATE_FORMAT(in_flight_since, '%Y-%m-%dT%H:%i:%sZ')
                 FROM {HISTORY_TABLE} WHERE target_database = ? AND source = ?"
                ),
                (self.database, self.source),
            )
            .await
            .map_err(|e| db_error("reading the history", e))?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    migration,
                    checksum,
                    status,
                    applied,
                    prefix,
                    finished,
                    statement,
                    in_checksum,
                    connection,
                    since,
                )| {
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
                },
            )
            .collect())
    }

    /// Gives a row an earlier version marked in flight (without a checksum) the current prefix
    /// checksum through that statement, for "took effect" to copy. Best effort.
    pub(super) async fn fill_in_flight_checksum(&self, conn: &mut Conn, migration: &str, prefix: &str) {
        let _ = conn
            .exec_drop(
                format!(
                    "UPDATE {HISTORY_TABLE} SET in_flight_checksum = ? WHERE target_database = ? \
                     AND source = ? AND migration = ? AND in_flight_checksum IS NULL"
                ),
                (prefix, self.database, self.source, migration),
            )
            .await;
    }

    /// Records that `migration` (of `total` statements, with `checksum`) starts running at statement
    /// `start` (0-based), whose prefix checksum is `prefix`.
    pub(super) async fn start(
        &self,
        conn: &mut Conn,
        migration: &str,
        checksum: &str,
        total: usize,
        start: usize,
        prefix: &str,
    ) -> Result<(), SchemaError> {
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
            (self.database, self.source, migration, checksum, total as u32, start as u32, prefix),
        )
        .await
        .map_err(|e| db_error("recording the migration's start", e))
    }

    /// Records statement `statement` (1-based; `checksum` its prefix checksum) as in flight on
    /// `connection`, before it runs.
    pub(super) async fn mark_in_flight(
        &self,
        conn: &mut Conn,
        migration: &str,
        statement: usize,
        checksum: &str,
        connection: u32,
    ) -> Result<(), SchemaError> {
        conn.exec_drop(
            format!(
                "UPDATE {HISTORY_TABLE} SET in_flight_statement = ?, in_flight_checksum = ?, in_flight_connection = ?,
            in_flight_since = UTC_TIMESTAMP(6)
         WHERE target_database = ? AND source = ? AND migration = ?"
            ),
            (statement as u32, checksum, connection, self.database, self.source, migration),
        )
        .await
        .map_err(|e| db_error(&format!("recording statement {statement} of {migration} as in flight"), e))
    }

    /// Records statements 1-`applied` as applied (`checksum` their prefix checksum), nothing in flight.
    pub(super) async fn record_progress(
        &self,
        conn: &mut Conn,
        migration: &str,
        applied: usize,
        checksum: &str,
    ) -> Result<(), SchemaError> {
        conn.exec_drop(
            format!(
                "UPDATE {HISTORY_TABLE} SET statements_applied = ?, applied_prefix_checksum = ?, in_flight_statement = NULL,
            in_flight_checksum = NULL, in_flight_connection = NULL, in_flight_since = NULL
         WHERE target_database = ? AND source = ? AND migration = ?"
            ),
            (applied as u32, checksum, self.database, self.source, migration),
        )
        .await
        .map_err(|e| db_error(&format!("recording progress of migration {migration} at statement {applied}"), e))
    }

    /// Records `migration` as failed with `committed` statements applied (`checksum` their prefix
    /// checksum) and the server's `message`. Best effort: the failure is reported either way.
    pub(super) async fn record_failed(
        &self,
        conn: &mut Conn,
        migration: &str,
        committed: usize,
        checksum: &str,
        message: &str,
    ) {
        let _ = conn
            .exec_drop(
                format!(
                    "UPDATE {HISTORY_TABLE} SET status = 'failed', statements_applied = ?, applied_prefix_checksum = ?,
                    error = ?, finished_at = UTC_TIMESTAMP(6), in_flight_statement = NULL WHERE target_database = ? AND source = ? AND migration = ?"
                ),
                (committed as u32, checksum, message, self.database, self.source, migration),
            )
            .await;
    }

    /// Records `migration` as failed because the run stopped for time (`why`), its progress kept.
    /// Best effort: the stop is reported either way.
    pub(super) async fn record_stopped(&self, conn: &mut Conn, migration: &str, why: &str) {
        let _ = conn
            .exec_drop(
                format!(
                    "UPDATE {HISTORY_TABLE} SET status = 'failed', error = ?, finished_at = UTC_TIMESTAMP(6)
                         WHERE target_database = ? AND source = ? AND migration = ?"
                ),
                (why, self.database, self.source, migration),
            )
            .await;
    }

    /// Records `migration` as applied.
    pub(super) async fn record_applied(&self, conn: &mut Conn, migration: &str) -> Result<(), SchemaError> {
        conn.exec_drop(
            format!(
                "UPDATE {HISTORY_TABLE} SET status = 'applied', finished_at = UTC_TIMESTAMP(6)
             WHERE target_database = ? AND source = ? AND migration = ?"
            ),
            (self.database, self.source, migration),
        )
        .await
        .map_err(|e| db_error("recording the migration as applied", e))
    }
}
