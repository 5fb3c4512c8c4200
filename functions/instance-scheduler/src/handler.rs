//! The Lambda handler: the event read, every target run (each on its own, a bounded number at once),
//! the summary returned, logged and emitted as metrics, and the invocation failed when anything did.

use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use tokio::time::{Duration, Instant};

use crate::request::{self, Request};
use crate::run::run;
use crate::settings::Settings;
use crate::summary::Summary;
use crate::targets::{Hub, Identity, Target};
use crate::{events, metrics};

/// Calls not begun this long before the invocation's deadline are left for the next run.
const RESERVE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("{0}")]
    Event(#[from] request::EventError),
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
}

/// Why a whole target (an account in a Region) gave no summary.
#[derive(Debug, thiserror::Error)]
pub enum TargetFailure {
    #[error(transparent)]
    Target(#[from] crate::targets::TargetError),
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
    #[error("no answer by the run's cutoff (AssumeRole or every listing hung); the next run tries again")]
    Late,
}

/// The Lambda error type of a run in which something failed: its message is the summary (the log form,
/// lists cut to their first entries) with an `error` line, so that an alarm on the function's Errors
/// fires and whoever reads the error sees what failed.
pub const FAILED_ERROR_TYPE: &str = "Stackhand.InstanceScheduler.Failed";

/// The Lambda handler: an event in, the summary out — as the result when everything went, as the
/// invocation's error when anything failed (a start, a stop, a listing, a whole target).
pub async fn handle(
    hub: &Hub,
    settings: &Settings,
    event: Value,
    own: &Identity,
    deadline: Instant,
) -> Result<Value, Diagnostic> {
    let request = match request::parse(&event, Utc::now(), settings.interval) {
        Ok(request) => request,
        Err(e) => {
            tracing::error!(error = %e, "scheduler run failed");
            return Err(stackhand::lambda::diagnostic("Stackhand.InstanceScheduler", &e));
        }
    };
    let cutoff = deadline.checked_sub(RESERVE).unwrap_or(deadline);
    // Every AWS call of the run retries (throttling, transient errors) until the cutoff, no longer.
    let started = Instant::now();
    let summary = stackhand::aws::within(cutoff, run_targets(hub, settings, &request, own, cutoff)).await;
    let reconcile = request.action == request::Action::Reconcile;
    let facts = metrics::RunFacts {
        duration: started.elapsed(),
        interval_minutes: reconcile.then(|| u64::try_from(settings.interval.num_minutes()).unwrap_or(0)),
    };
    metrics::emit(&summary, facts, &mut std::io::stdout().lock());
    let logged = summary.for_log();
    if summary.failed.is_empty() {
        tracing::info!(summary = %logged, "scheduler run");
        return Ok(summary.to_value());
    }
    tracing::error!(summary = %logged, "scheduler run failed");
    let mut message = logged;
    message["error"] = Value::String(summary.failure_line());
    Err(stackhand::lambda::diagnostic(FAILED_ERROR_TYPE, &message))
}

/// Every target, `settings.target_concurrency` at a time, each on its own: one whose role can't be
/// assumed or whose listings all fail is reported in the summary, and the others go on.
pub async fn run_targets(
    hub: &Hub,
    settings: &Settings,
    request: &Request,
    own: &Identity,
    cutoff: Instant,
) -> Summary {
    let targets = hub.targets(settings, own);
    let definer = hub.definer(settings);
    let runs: Vec<(Target, Result<Summary, TargetFailure>)> = stream::iter(targets.iter())
        .map(|target| {
            let definer = &definer;
            async move {
                let summary = async {
                    let clients = hub.clients(settings, own, target).await?;
                    Ok(run(&clients, definer, settings, request, cutoff).await?)
                };
                let summary = tokio::time::timeout_at(cutoff, summary).await.unwrap_or(Err(TargetFailure::Late));
                (target.clone(), summary)
            }
        })
        .buffer_unordered(settings.target_concurrency.max(1))
        .collect()
        .await;
    // The events are each target's own, so they are made before the summaries merge; a dry run moved
    // nothing and says nothing.
    let unput = match &settings.event_bus {
        Some(bus) if !request.dry_run => {
            let events = events::of_runs(request, &runs);
            events::put(hub.events(), bus, &events, cutoff).await
        }
        _ => Vec::new(),
    };
    let mut summary = Summary::merge(Summary::of(request), runs, targets.len() > 1);
    if !unput.is_empty() {
        summary.failed.extend(unput);
        summary.sort();
    }
    summary
}
