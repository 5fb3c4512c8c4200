//! AWS configuration from the standard environment, readable SDK errors, and a retry budget bounded
//! by the invocation's deadline rather than by a count of attempts.
//!
//! `AWS_REGION`, the credential chain, `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` all work
//! unchanged: that is how the local emulator is reached, with no special path in any function.
//!
//! Throttling is normal in a busy account: several stacks or binders at once run the SDK's default three
//! attempts out. Every client built with [`client!`](crate::client) therefore retries throttling,
//! transient and server errors (the SDK's own classification, with its exponential backoff and jitter)
//! for as long as the deadline set with [`within`] allows, and stops retrying [`RETRY_WINDOW`] before it,
//! so that the caller still has time to undo what it changed and to answer.

use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{BeforeTransmitInterceptorContextMut, InterceptorContext};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction, RetryClassifierPriority};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::time::Instant;

/// The longest wait between two attempts (the SDK's default is 20 s; a deadline-bound budget retries
/// more often instead of sleeping through its time).
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// No retry starts when less than this is left before the deadline: the longest backoff and a second
/// for the attempt itself.
pub const RETRY_WINDOW: Duration = Duration::from_secs(6);
/// Attempts for a call made outside any [`within`] scope (tools and tests): the SDK's default, the only
/// bound there.
pub const UNSCOPED_MAX_ATTEMPTS: u32 = 3;
/// Attempts within a deadline: high enough that the deadline, not the count, ends the retries.
const SCOPED_MAX_ATTEMPTS: u32 = 1_000;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as the retry budget of every AWS call made in it (on this task).
pub async fn within<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The deadline set by the innermost [`within`] around the caller, if any.
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Forbids a retry that the SDK's classifiers asked for when the deadline is too near for one (or,
/// outside any deadline, after [`UNSCOPED_MAX_ATTEMPTS`], which the SDK counts itself). Runs after
/// every other classifier, so it sees their verdict.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineClassifier;

impl DeadlineClassifier {
    /// Whether a retry may start now, with `deadline` (if any) ahead.
    pub fn allows_retry(deadline: Option<Instant>, now: Instant) -> bool {
        deadline.is_none_or(|d| d.saturating_duration_since(now) >= RETRY_WINDOW)
    }
}

impl ClassifyRetry for DeadlineClassifier {
    fn classify_retry_v2(&self, _ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        if previous.should_retry() && !Self::allows_retry(deadline(), Instant::now()) {
            tracing::warn!(verdict = %previous, "not retrying: the deadline is too near");
            return RetryAction::RetryForbidden;
        }
        RetryAction::NoActionIndicated
    }

    fn classify_retry(&self, _ctx: &InterceptorContext) -> RetryAction {
        RetryAction::NoActionIndicated
    }

    fn name(&self) -> &'static str {
        "stackhand deadline"
    }

    fn priority(&self) -> RetryClassifierPriority {
        // After the SDK's status-code, modeled and transient classifiers (0, 10, 20) and AWS's error
        // code classifier.
        RetryClassifierPriority::run_after(RetryClassifierPriority::run_after(
            RetryClassifierPriority::transient_error_classifier(),
        ))
    }
}

/// Sets each call's attempt count from its scope as it starts: within a deadline, a count the deadline
/// always ends first; outside one (tools, tests), [`UNSCOPED_MAX_ATTEMPTS`]. A call that would start
/// after its deadline is not sent at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineBudget;

impl Intercept for DeadlineBudget {
    fn name(&self) -> &'static str {
        "stackhand deadline budget"
    }

    fn modify_before_retry_loop(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let scoped = deadline();
        if scoped.is_some_and(|d| d <= Instant::now()) {
            return Err("not sent: the invocation's deadline had passed".into());
        }
        let attempts = if scoped.is_some() { SCOPED_MAX_ATTEMPTS } else { UNSCOPED_MAX_ATTEMPTS };
        let retry = cfg.load::<RetryConfig>().cloned().unwrap_or_else(RetryConfig::standard);
        cfg.interceptor_state().store_put(retry.with_max_attempts(attempts));
        Ok(())
    }
}

/// A service client from the shared configuration, with the deadline-bound retry budget
/// ([`DeadlineBudget`], [`DeadlineClassifier`]). The SDK's retry quota (a token bucket per process that
/// refuses every retry after a burst of throttling) is replaced by the deadline, which bounds the same
/// thing per invocation. Usage: `stackhand::client!(aws_sdk_ec2, &config)`.
#[macro_export]
macro_rules! client {
    ($service:ident, $config:expr) => {
        $crate::client!($service, $config, builder => builder)
    };
    // `builder => expression` adjusts the service's config builder further (tests add a mock interceptor).
    ($service:ident, $config:expr, $builder:ident => $with:expr) => {{
        use $service::config::retry::{RetryPartition, TokenBucket};
        let partition = RetryPartition::custom("stackhand-deadline").token_bucket(TokenBucket::unlimited()).build();
        let $builder = $service::config::Builder::from($config)
            .retry_partition(partition)
            .interceptor($crate::aws::DeadlineBudget)
            .retry_classifier($crate::aws::DeadlineClassifier);
        $service::Client::from_conf($with.build())
    }};
}

/// The SDK's standard retry mode (its classifiers, exponential backoff with jitter) with the backoff
/// capped at [`MAX_BACKOFF`]; [`DeadlineBudget`] sets the attempt count of each call.
pub fn sdk_retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(UNSCOPED_MAX_ATTEMPTS).with_max_backoff(MAX_BACKOFF)
}

/// Loads the shared SDK configuration once per process. Each attempt is bounded so that a dead endpoint
/// surfaces as an error; the deadline bounds the retries ([`within`], with clients built by
/// [`client!`](crate::client)); the custom-resource runtime's deadline guard covers whatever still hangs.
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
        .retry_config(sdk_retry_config())
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

/// A failed AWS call: which operation, the service's error code when it answered with one, and one
/// line for people (the [`describe_error`] text, which is what it displays). Function errors wrap it
/// (`#[error(transparent)]`); a call reads `client.describe_addresses().send().await.op("DescribeAddresses")?`
/// ([`AwsResultExt::op`]), and a conflict is matched on [`AwsError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AwsError {
    operation: &'static str,
    code: Option<String>,
    message: String,
    service_error: bool,
}

impl AwsError {
    /// The error of `operation` from the SDK's.
    pub fn new<E, R>(operation: &'static str, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        Self {
            operation,
            code: error_code(err).map(str::to_owned),
            message: describe_error(operation, err),
            service_error: matches!(err, SdkError::ServiceError(_)),
        }
    }

    /// The operation that failed, e.g. `DescribeAddresses`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The service's error code, if the service answered with one (not for a timeout or a transport
    /// error).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether the service answered with an error (rather than the call timing out or failing on the
    /// way).
    pub fn is_service_error(&self) -> bool {
        self.service_error
    }

    /// The one line for people: what [`Display`](std::fmt::Display) prints.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// [`AwsError`] from an SDK call's result: `...send().await.op("DescribeAddresses")?`.
pub trait AwsResultExt<T> {
    /// Names the call's operation in its error.
    fn op(self, operation: &'static str) -> Result<T, AwsError>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    fn op(self, operation: &'static str) -> Result<T, AwsError> {
        self.map_err(|e| AwsError::new(operation, &e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: Option<&str>, message: Option<&str>) -> SdkError<ErrorMetadata, HttpResponse> {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        if let Some(message) = message {
            meta = meta.message(message);
        }
        let response = HttpResponse::new(400.try_into().unwrap(), aws_smithy_types::body::SdkBody::empty());
        SdkError::service_error(meta.build(), response)
    }

    #[test]
    fn an_aws_error_says_what_describe_error_says_and_keeps_the_code() {
        let err = service_error(Some("InvalidAllocationID.NotFound"), Some("no such allocation"));
        let aws = Err::<(), _>(err).op("DescribeAddresses").unwrap_err();
        assert_eq!(aws.to_string(), "DescribeAddresses failed: InvalidAllocationID.NotFound: no such allocation");
        assert_eq!(aws.operation(), "DescribeAddresses");
        assert_eq!(aws.code(), Some("InvalidAllocationID.NotFound"));
        assert!(aws.is_service_error());

        let only_code = AwsError::new("CreateTags", &service_error(Some("Throttling"), None));
        assert_eq!(only_code.to_string(), "CreateTags failed: Throttling");
        assert_eq!(only_code.to_string(), describe_error("CreateTags", &service_error(Some("Throttling"), None)));

        let timeout =
            AwsError::new("DescribeInstances", &SdkError::<ErrorMetadata, HttpResponse>::timeout_error("slow"));
        assert_eq!(timeout.to_string(), "DescribeInstances timed out");
        assert_eq!(timeout.code(), None);
        assert!(!timeout.is_service_error());
    }

    #[test]
    fn a_retry_starts_only_with_the_retry_window_left_before_the_deadline() {
        let now = Instant::now();
        assert!(DeadlineClassifier::allows_retry(None, now), "outside a deadline the SDK's count decides");
        assert!(DeadlineClassifier::allows_retry(Some(now + RETRY_WINDOW), now));
        assert!(DeadlineClassifier::allows_retry(Some(now + Duration::from_secs(300)), now));
        assert!(!DeadlineClassifier::allows_retry(Some(now + RETRY_WINDOW - Duration::from_millis(1)), now));
        assert!(!DeadlineClassifier::allows_retry(Some(now), now));
        assert!(!DeadlineClassifier::allows_retry(now.checked_sub(Duration::from_secs(1)), now));
    }

    #[tokio::test]
    async fn the_deadline_is_the_innermost_one_and_only_on_its_task() {
        let outer = Instant::now() + Duration::from_secs(60);
        let inner = outer - Duration::from_secs(30);
        assert_eq!(deadline(), None);
        within(outer, async {
            assert_eq!(deadline(), Some(outer));
            within(inner, async { assert_eq!(deadline(), Some(inner)) }).await;
            assert_eq!(deadline(), Some(outer));
            assert_eq!(tokio::spawn(async { deadline() }).await.unwrap(), None, "a spawned task sets its own");
        })
        .await;
    }
}
