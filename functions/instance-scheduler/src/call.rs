//! One AWS call of a run: bounded by the run's cutoff, its error named after the operation and
//! classified (wrong state, throttled, about the request's content), and its outcome for a resource.

use std::future::Future;

use stackhand::aws::{AwsError, AwsResultExt};
use tokio::time::Instant;

/// How a start or stop of one resource went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Done as asked, with something to say (an instance that asks for hibernation but can't have it,
    /// stopped normally as the listing said it would be).
    Noted(String),
    /// Done, but not the way asked (a hibernation that fell back to a normal stop): why.
    Fallback(String),
    /// Done, but it is the retry of one that did not hold (a start that fell back to stopped): reported
    /// failed, with why, until one holds.
    Repeated(String),
    Skipped(String),
    Failed(String),
    /// Not sent: EC2's buckets would not admit it before the run's cutoff (the next run does it).
    Deferred,
}

impl Outcome {
    /// Whether the call was made and answered as asked: such a resource gets its marker.
    pub fn applied(&self) -> bool {
        matches!(self, Self::Done | Self::Noted(_) | Self::Repeated(_))
    }
}

const THROTTLING: [&str; 4] = ["RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"];

/// Error codes meaning "it is not in a state for that" — for one resource, not a failure of the run.
const WRONG_STATE: [&str; 8] = [
    "IncorrectInstanceState",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterStateFault",
    "InvalidClusterState",
    "InvalidClusterStateFault",
    "ResourceInUseException",
    "ConflictException",
];

/// An AWS call that did not go: what it said, its error code, and whether splitting the request may
/// get the rest through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub(crate) message: String,
    pub(crate) code: Option<String>,
    /// A service's answer about the request's content (not throttling, not the network): splitting
    /// the batch may get the rest through.
    pub(crate) splittable: bool,
}

impl From<AwsError> for CallError {
    fn from(err: AwsError) -> Self {
        let code = err.code().map(str::to_owned);
        let splittable = err.is_service_error() && !code.as_deref().is_some_and(|c| THROTTLING.contains(&c));
        CallError { message: err.to_string(), code, splittable }
    }
}

impl CallError {
    /// An error that is not AWS's answer (no call could be made).
    pub(crate) fn other(message: impl Into<String>) -> Self {
        CallError { message: message.into(), code: None, splittable: false }
    }

    fn late(operation: &str, in_flight: bool) -> Self {
        let message = if in_flight {
            format!("{operation} had no answer by the run's cutoff (it may still take effect); the next run checks")
        } else {
            format!("{operation} not attempted: the invocation was about to time out; the next run picks it up")
        };
        CallError::other(message)
    }
}

/// The outcome of a call that failed: "not in a state for that" is a skip, anything else a failure.
pub(crate) fn outcome(error: CallError) -> Outcome {
    if error.code.as_deref().is_some_and(|c| WRONG_STATE.contains(&c)) {
        Outcome::Skipped(error.message)
    } else {
        Outcome::Failed(error.message)
    }
}

/// Runs one AWS call, but not past `cutoff`: an attempt may hang for its whole attempt timeout, longer
/// than the invocation has left, and the run must still answer with its summary.
pub(crate) async fn bounded<T>(
    cutoff: Instant,
    operation: &str,
    call: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    if Instant::now() >= cutoff {
        return Err(CallError::late(operation, false));
    }
    tokio::time::timeout_at(cutoff, call).await.unwrap_or_else(|_| Err(CallError::late(operation, true)))
}

/// One AWS call named `operation`: sent unless the cutoff has passed, its error named after the
/// operation, its output dropped, bounded by the cutoff as [`bounded`] says.
pub(crate) async fn aws_call<T, E>(
    cutoff: Instant,
    operation: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<(), CallError>
where
    Result<T, E>: AwsResultExt<T>,
{
    bounded(cutoff, operation, async { call.await.op(operation).map(drop).map_err(CallError::from) }).await
}

/// [`aws_call`], keeping the output.
pub(crate) async fn aws_output<T, E>(
    cutoff: Instant,
    operation: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, CallError>
where
    Result<T, E>: AwsResultExt<T>,
{
    bounded(cutoff, operation, async { call.await.op(operation).map_err(CallError::from) }).await
}

/// A start or stop's result as the resource's outcome.
pub(crate) fn done(result: Result<(), CallError>) -> Outcome {
    result.map_or_else(outcome, |()| Outcome::Done)
}

/// Runs `call` on `items`; if AWS refuses it for the request's content, on each half, down to single
/// items, whose error is then theirs alone: one resource gone since the listing doesn't hold back the
/// rest. Each item with how it went.
pub(crate) async fn by_halves<T, F, Fut>(items: Vec<T>, call: &F) -> Vec<(T, Result<(), CallError>)>
where
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Result<(), CallError>>,
{
    if items.is_empty() {
        return Vec::new();
    }
    match call(items.clone()).await {
        Ok(()) => items.into_iter().map(|item| (item, Ok(()))).collect(),
        Err(e) if e.splittable && items.len() > 1 => {
            let mut left = items;
            let right = left.split_off(left.len() / 2);
            let mut results = Box::pin(by_halves(left, call)).await;
            results.extend(Box::pin(by_halves(right, call)).await);
            results
        }
        Err(e) => items.into_iter().map(|item| (item, Err(e.clone()))).collect(),
    }
}

/// A listing that did not complete: its error, or that it had no answer by the run's cutoff.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    #[error("{0}")]
    Aws(String),
    #[error("{0} had no complete answer by the run's cutoff; the next run tries again")]
    Late(String),
}

/// `work`, or (when it is not done by `cutoff`) an error saying `operation` had no answer in time.
pub async fn by_cutoff<T, E: std::fmt::Display>(
    cutoff: Instant,
    operation: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ListingError> {
    match tokio::time::timeout_at(cutoff, work).await {
        Ok(done) => done.map_err(|e| ListingError::Aws(e.to_string())),
        Err(_) => Err(ListingError::Late(operation.to_owned())),
    }
}
