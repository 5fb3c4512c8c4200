//! Every way a schema run can fail, each with the text CloudFormation shows as the Reason.

use std::time::Duration;

use crate::split::SplitError;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A property points at something missing or malformed (a parameter, a secret, a database).
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Aws(#[from] stackhand::aws::AwsError),
    /// A property the function's owner does not allow (or that the credentials rule out).
    #[error(transparent)]
    Refused(#[from] crate::policy::Refusal),
    #[error(
        "the database at {endpoint} did not accept a connection within {:.1} s ({attempts} attempts); \
         last error: {last}", waited.as_secs_f64()
    )]
    Unavailable { endpoint: String, waited: Duration, attempts: u32, last: String },
    #[error(
        "the TLS handshake with {endpoint} failed: {message}. With Tls required (the default) the server's \
         certificate must chain to the Amazon RDS CAs (the global bundle) or the Amazon Trust Services roots (RDS \
         Proxy), both built into the function, and carry the Endpoint's name: give the cluster's Endpoint.Address, not an IP address or a DNS alias of your own"
    )]
    Tls { endpoint: String, message: String },
    #[error("the database at {endpoint} refused the login: {message}; check the credentials' user name and password")]
    Denied { endpoint: String, message: String },
    #[error("{0}")]
    Database(String),
    #[error("migration {migration}: {source}; nothing was applied")]
    Split { migration: String, source: SplitError },
    #[error("{0}")]
    Changed(String),
    #[error(
        "migration {migration} failed at statement {number} of {total} (line {line}: {excerpt}): {message}. \
         {committed}"
    )]
    Statement {
        migration: String,
        number: usize,
        total: usize,
        line: usize,
        excerpt: String,
        message: String,
        committed: String,
    },
    #[error(
        "another run held the schema lock of {source_key} for {:.1} s{holder}; nothing was applied",
        waited.as_secs_f64()
    )]
    Locked { source_key: String, waited: Duration, holder: String },
    /// A statement whose outcome is unknown: it is never run again without the operator's answer.
    #[error(transparent)]
    Interrupted(Box<Interruption>),
    #[error(
        "migration {migration} stopped before statement {number} of {total} (line {line}: {excerpt}) with {:.1} s \
         left of the invocation: no statement starts with less than {} s left. The statements before it are \
         applied and recorded; the next run resumes at statement {number}. If this recurs, raise the function's \
         Timeout (and the custom resource's ServiceTimeout) or split the migration",
        left.as_secs_f64(), margin.as_secs()
    )]
    OutOfTime {
        migration: String,
        number: usize,
        total: usize,
        line: usize,
        excerpt: String,
        left: Duration,
        margin: Duration,
    },
    #[error(
        "{0}. Migrations run in the byte order of their names (10-x sorts before 2-y), so this one would run out of \
         order: rename the parameters under SqlParameterPath so that a new migration sorts after every applied one, \
         numbering them with zero-padded numbers of one width (0001-…, 0002-…, 0010-…). An applied migration keeps \
         its name (a renamed one is a new migration). Nothing was applied"
    )]
    OutOfOrder(String),
}

/// A statement whose outcome is unknown, with what the operator checks and the two UPDATEs that
/// record the answer.
#[derive(Debug, thiserror::Error)]
#[error(
    "migration {migration} was interrupted at statement {number} of {total} (line {line}: {excerpt}): {cause}. \
     MySQL commits DDL at once, so it may or may not have taken effect, and no run repeats it blindly. Check \
     whether it did (e.g. SHOW CREATE TABLE of a table it changes) and that connection {connection} is gone \
     (SHOW PROCESSLIST), then record the answer. If it took effect: UPDATE stackhand.schema_history SET \
     statements_applied = in_flight_statement, applied_prefix_checksum = in_flight_checksum, \
     in_flight_statement = NULL WHERE {key}; the next run continues after it. If it did not: UPDATE \
     stackhand.schema_history SET in_flight_statement = NULL WHERE {key}; the next run runs it again"
)]
pub struct Interruption {
    pub migration: String,
    pub number: usize,
    pub total: usize,
    pub line: usize,
    pub excerpt: String,
    pub cause: String,
    pub connection: String,
    pub key: String,
}
