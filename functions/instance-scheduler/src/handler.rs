//! The Lambda handler: the event read, every target run (each on its own, a bounded number at once) or
//! sent to the queue one message each, the summary returned, logged and emitted as metrics, and the
//! invocation failed when anything did; or, for a worker, the queue's messages run, each target's
//! summary its own, and the messages to hand back answered.

use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use tokio::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::fanout::{self, Received, Work};
use crate::named::Definer;
use crate::request::{self, Request};
use crate::run::run;
use crate::settings::Settings;
use crate::summary::{Failed, Summary};
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
/// invocation's error when anything failed (a start, a stop, a listing, a whole target, a message not
/// sent). An SQS event (the queue's targets, see [`fanout`]) is a worker's: its answer is the
/// messages to hand back.
pub async fn handle(
    hub: &Hub,
    settings: &Settings,
    event: Value,
    own: &Identity,
    deadline: Instant,
) -> Result<Value, Diagnostic> {
    let cutoff = deadline.checked_sub(RESERVE).unwrap_or(deadline);
    if let Some(messages) = fanout::sqs_event(&event) {
        return Ok(stackhand::aws::within(cutoff, work(hub, settings, messages, own, cutoff)).await);
    }
    let request = match request::parse(&event, Utc::now(), settings.interval) {
        Ok(request) => request,
        Err(e) => {
            tracing::error!(error = %e, "scheduler run failed");
            return Err(stackhand::lambda::diagnostic("Stackhand.InstanceScheduler", &e));
        }
    };
    let started = Instant::now();
    // Every AWS call of the run retries (throttling, transient errors) until the cutoff, no longer.
    let summary = stackhand::aws::within(cutoff, run_or_dispatch(hub, settings, &request, own, cutoff)).await;
    metrics::emit(&summary, facts(settings, &request, Some(started.elapsed())), &mut std::io::stdout().lock());
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

/// What the metrics need of a run besides its summary: `duration` for the run's own line (None for a
/// worker's target: its run's line is the hub's).
fn facts(settings: &Settings, request: &Request, duration: Option<Duration>) -> metrics::RunFacts {
    let reconcile = request.action == request::Action::Reconcile;
    metrics::RunFacts {
        duration,
        interval_minutes: reconcile.then(|| u64::try_from(settings.interval.num_minutes()).unwrap_or(0)),
    }
}

/// The run's targets, run here or — above the fan-out threshold, or always for an organization, when
/// there is a queue — sent to the queue, one message each. A dry run is always run here: its answer is
/// what whoever asked reads.
async fn run_or_dispatch(
    hub: &Hub,
    settings: &Settings,
    request: &Request,
    own: &Identity,
    cutoff: Instant,
) -> Summary {
    let targets = match hub.resolve_targets(settings, own).await {
        Ok(targets) => targets,
        Err(e) => {
            let mut summary = Summary::of(request);
            summary.failed.push(Failed { resource: "organizational units (listing)".into(), error: e.to_string() });
            return summary;
        }
    };
    let fans_out = !settings.organizational_units.is_empty() || targets.len() > settings.fan_out_threshold();
    match &settings.queue_url {
        Some(queue) if fans_out && !request.dry_run => {
            let mut summary = Summary::of(request);
            summary.failed = fanout::dispatch(hub.sqs(), queue, request, &targets, settings.concurrency).await;
            summary.dispatched = targets.len() - summary.failed.len();
            summary.sort();
            summary
        }
        _ => run_targets(hub, settings, request, own, &targets, cutoff).await,
    }
}

/// `targets`, `settings.target_concurrency` at a time, each on its own: one whose role can't be
/// assumed or whose listings all fail is reported in the summary, and the others go on.
pub async fn run_targets(
    hub: &Hub,
    settings: &Settings,
    request: &Request,
    own: &Identity,
    targets: &[Target],
    cutoff: Instant,
) -> Summary {
    let definer = hub.definer(settings);
    let runs: Vec<(Target, Result<Summary, TargetFailure>)> = stream::iter(targets.iter())
        .map(|target| run_target(hub, settings, request, own, target, &definer, cutoff))
        .buffer_unordered(settings.target_concurrency.max(1))
        .collect()
        .await;
    let unput = put_events(hub, settings, request, &runs, cutoff).await;
    let mut summary = Summary::merge(Summary::of(request), runs, targets.len() > 1);
    if !unput.is_empty() {
        summary.failed.extend(unput);
        summary.sort();
    }
    summary
}

/// One target's run, bounded by the cutoff.
async fn run_target(
    hub: &Hub,
    settings: &Settings,
    request: &Request,
    own: &Identity,
    target: &Target,
    definer: &Definer,
    cutoff: Instant,
) -> (Target, Result<Summary, TargetFailure>) {
    let summary = async {
        let clients = hub.clients(settings, own, target).await?;
        Ok(run(&clients, definer, settings, request, cutoff).await?)
    };
    let summary = tokio::time::timeout_at(cutoff, summary).await.unwrap_or(Err(TargetFailure::Late));
    (target.clone(), summary)
}

/// The runs' events, made before the summaries merge (they are each target's own); a dry run moved
/// nothing and says nothing. What could not be put.
async fn put_events(
    hub: &Hub,
    settings: &Settings,
    request: &Request,
    runs: &[(Target, Result<Summary, TargetFailure>)],
    cutoff: Instant,
) -> Vec<Failed> {
    match &settings.event_bus {
        Some(bus) if !request.dry_run => events::put(hub.events(), bus, &events::of_runs(request, runs), cutoff).await,
        _ => Vec::new(),
    }
}

/// A worker's invocation: each message's target run (those of one target one after the other, the
/// targets `settings.target_concurrency` at a time). Answers the messages to hand back to SQS (a
/// target that failed as a whole, a message that can't be read, and — as FIFO requires — every later
/// message of their target); every target's summary, metrics and events are its own.
async fn work(hub: &Hub, settings: &Settings, event: SqsEvent, own: &Identity, cutoff: Instant) -> Value {
    let mut groups: Vec<(String, Vec<Received>)> = Vec::new();
    for message in fanout::receive(event, Utc::now(), settings.interval) {
        match groups.iter_mut().find(|(group, _)| *group == message.group) {
            Some((_, messages)) => messages.push(message),
            None => groups.push((message.group.clone(), vec![message])),
        }
    }
    let definer = hub.definer(settings);
    let handed_back: Vec<(Vec<String>, Vec<String>)> = stream::iter(groups)
        .map(|(_, messages)| {
            let definer = &definer;
            async move {
                let (mut ids, mut receipts) = (Vec::new(), Vec::new());
                for message in messages {
                    // FIFO: once one of a target's messages is handed back, so are its later ones, unread.
                    if ids.is_empty() && work_on(hub, settings, own, message.work, definer, cutoff).await {
                        continue;
                    }
                    ids.push(message.id);
                    receipts.extend(message.receipt);
                }
                (ids, receipts)
            }
        })
        .buffer_unordered(settings.target_concurrency.max(1))
        .collect()
        .await;
    let (ids, receipts): (Vec<Vec<String>>, Vec<Vec<String>>) = handed_back.into_iter().unzip();
    let (ids, receipts): (Vec<String>, Vec<String>) = (ids.concat(), receipts.concat());
    if let (Some(queue), false) = (&settings.queue_url, receipts.is_empty()) {
        fanout::retry_now(hub.sqs(), queue, &receipts).await;
    }
    let mut answer = SqsBatchResponse::default();
    for id in ids {
        answer.add_failure(id);
    }
    serde_json::to_value(answer).unwrap_or_default()
}

/// One message's work; whether it is done with (false: hand it back).
async fn work_on(
    hub: &Hub,
    settings: &Settings,
    own: &Identity,
    work: Work,
    definer: &Definer,
    cutoff: Instant,
) -> bool {
    let (target, request) = match work {
        Work::Run(target, _) if !hub.allows(settings, own, &target) => {
            tracing::error!(
                target = %target,
                "a message for a target this function is not configured for (SCHEDULER_ACCOUNTS, SCHEDULER_REGIONS, \
                 SCHEDULER_ORGANIZATIONAL_UNITS): not acted on; handed back, then to the dead-letter queue"
            );
            return false;
        }
        Work::Run(target, request) => (target, request),
        Work::Stale { target, age } => {
            tracing::warn!(
                target = %target,
                age_seconds = age.num_seconds(),
                "a target's message older than one interval dropped: the next run supersedes it"
            );
            return true;
        }
        Work::Bad(e) => {
            tracing::error!(error = %e, "a message that can't be acted on: handed back, then to the dead-letter queue");
            return false;
        }
    };
    let run = run_target(hub, settings, &request, own, &target, definer, cutoff).await;
    let whole = run.1.is_err();
    let runs = vec![run];
    let unput = put_events(hub, settings, &request, &runs, cutoff).await;
    let mut summary = Summary::merge(Summary::of(&request), runs, false);
    summary.failed.extend(unput);
    summary.sort();
    metrics::emit(&summary, facts(settings, &request, None), &mut std::io::stdout().lock());
    let logged = summary.for_log();
    if summary.failed.is_empty() {
        tracing::info!(target = %target, summary = %logged, "scheduler target run");
    } else {
        tracing::error!(target = %target, summary = %logged, "scheduler target run failed");
    }
    // A target that failed as a whole (its role, every listing, the cutoff) is tried again; a resource
    // that failed is in the summary, the metrics and the events, and the next run tries it again.
    !whole
}
