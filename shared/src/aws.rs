//! AWS configuration from the standard environment, and readable SDK errors.
//!
//! `AWS_REGION`, the credential chain, `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` all work
//! unchanged: that is how the local emulator is reached, with no special path in any function.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Loads the shared SDK configuration once per process. Attempts are bounded so that a dead endpoint
/// surfaces as an error well inside any Lambda timeout; the custom-resource runtime's deadline guard
/// covers whatever still hangs.
pub async fn config() -> SdkConfig {
    config_with_attempt_timeout(Duration::from_secs(20)).await
}

/// [`config`] with another bound on each attempt, for a function whose single calls may legitimately
/// take longer (a page of 1,000 EC2 instances).
pub async fn config_with_attempt_timeout(attempt: Duration) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder().connect_timeout(Duration::from_secs(3)).operation_attempt_timeout(attempt).build(),
        )
        .load()
        .await
}

/// One line for an SDK error: the operation, the service's error code and message when there is one,
/// otherwise the transport error chain. Never includes request signatures or credentials.
pub fn describe_error<E, R>(operation: &str, err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{operation} failed: {code}: {msg}"),
                (Some(code), None) => format!("{operation} failed: {code}"),
                _ => format!("{operation} failed: {}", error_chain(e)),
            }
        }
        SdkError::TimeoutError(_) => format!("{operation} timed out"),
        other => format!("{operation} failed: {}", error_chain(other)),
    }
}

/// The service error code of an SDK error, if the service answered with one.
pub fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// `e: cause: cause …` on one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
