//! Every way a schema run can fail, each with the text CloudFormation shows as the Reason.

use std::time::Duration;

use crate::split::SplitError;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A property points at something missing or malformed (a parameter, a secret, a database).
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Aws(String),
    #[error(
        "the database at {endpoint} did not accept a connection within {:.1} s ({attempts} attempts); \
         last error: {last}", waited.as_secs_f64()
    )]
    Unavailable { endpoint: String, waited: Duration, attempts: u32, last: String },
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
    #[error("another run held the schema lock of {source_key} for {:.1} s; nothing was applied", waited.as_secs_f64())]
    Locked { source_key: String, waited: Duration },
}
