//! One run: find the tagged resources, decide for each, act in batches and with bounded concurrency,
//! and sum it up. Per-resource trouble is reported and never stops the run; the invocation fails only
//! when the event can't be read or nothing at all could be listed.

use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use stackhand::aws::describe_error;
use tokio::time::{Duration, Instant};

use crate::actions::{self, Outcome};
use crate::inventory::{self, Kind, Resource, TagKeys};
use crate::plan::{self, Decision, Named};
use crate::request::{self, Action, Request};
use crate::schedule::{self, Definitions};
use crate::summary::{Failed, Skipped, Summary};

/// The SDK clients, built once per process.
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            ec2: stackhand::client!(aws_sdk_ec2, config),
            rds: stackhand::client!(aws_sdk_rds, config),
            autoscaling: stackhand::client!(aws_sdk_autoscaling, config),
            ssm: stackhand::client!(aws_sdk_ssm, config),
        }
    }
}

/// Configuration from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub keys: TagKeys,
    /// `SCHEDULES_PARAMETER`: an SSM parameter with named schedules, `{"name": "<schedule>", …}`.
    pub definitions_parameter: Option<String>,
    /// Instances per StartInstances/StopInstances call.
    pub batch_size: usize,
    /// Calls in flight at once.
    pub concurrency: usize,
}

pub const DEFAULT_SCHEDULE_TAG: &str = "Schedule";
pub const DEFAULT_OVERRIDE_TAG: &str = "ScheduleOverride";
pub const SAVED_CAPACITY_TAG: &str = "stackhand:saved-capacity";
const BATCH_SIZE: usize = 100;
const CONCURRENCY: usize = 8;
/// Calls not begun this long before the invocation's deadline are left for the next run.
const RESERVE: Duration = Duration::from_secs(3);

impl Settings {
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            keys: TagKeys {
                schedule: get("SCHEDULE_TAG_KEY").unwrap_or_else(|| DEFAULT_SCHEDULE_TAG.into()),
                override_until: get("SCHEDULE_OVERRIDE_TAG_KEY").unwrap_or_else(|| DEFAULT_OVERRIDE_TAG.into()),
                saved_capacity: SAVED_CAPACITY_TAG.into(),
            },
            definitions_parameter: get("SCHEDULES_PARAMETER"),
            batch_size: BATCH_SIZE,
            concurrency: CONCURRENCY,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("{0}")]
    Event(#[from] request::EventError),
    #[error("nothing could be evaluated: {0}")]
    NothingListed(String),
}

/// The Lambda handler: an event in, the summary out.
pub async fn handle(
    clients: &Clients,
    settings: &Settings,
    event: Value,
    deadline: Instant,
) -> Result<Value, Diagnostic> {
    let outcome = async {
        let request = request::parse(&event, Utc::now())?;
        let cutoff = deadline.checked_sub(RESERVE).unwrap_or(deadline);
        // Every AWS call of the run retries (throttling, transient errors) until the cutoff, no longer.
        stackhand::aws::within(cutoff, run(clients, settings, &request, cutoff)).await
    }
    .await;
    match outcome {
        Ok(summary) => {
            tracing::info!(summary = %summary.for_log(), "scheduler run");
            Ok(summary.to_value())
        }
        Err(e) => {
            tracing::error!(error = %e, "scheduler run failed");
            Err(Diagnostic { error_type: "Stackhand.InstanceScheduler".into(), error_message: e.to_string() })
        }
    }
}

/// What one job did: per resource, its name, whether it was a start, and how it went.
type Done = Vec<(String, bool, Outcome)>;

enum Job<'a> {
    Instances { start: bool, ids: Vec<String> },
    One { resource: &'a Resource, start: bool },
}

pub async fn run(
    clients: &Clients,
    settings: &Settings,
    request: &Request,
    cutoff: Instant,
) -> Result<Summary, SchedulerError> {
    let keys = &settings.keys;
    let mut summary = Summary {
        action: request.action.name().into(),
        at: request.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        dry_run: request.dry_run,
        ..Default::default()
    };
    let (instances, databases, clusters, groups) = tokio::join!(
        inventory::ec2_instances(&clients.ec2, keys),
        inventory::db_instances(&clients.rds, keys),
        inventory::db_clusters(&clients.rds, keys),
        inventory::auto_scaling_groups(&clients.autoscaling, keys),
    );
    let mut resources = Vec::new();
    let mut errors = Vec::new();
    for (source, listed) in [
        ("ec2-instances", instances),
        ("rds-instances", databases),
        ("rds-clusters", clusters),
        ("autoscaling-groups", groups),
    ] {
        match listed {
            Ok(found) => resources.extend(found),
            Err(error) => {
                errors.push(error.clone());
                summary.failed.push(Failed { resource: format!("{source} (listing)"), error });
            }
        }
    }
    if errors.len() == 4 {
        return Err(SchedulerError::NothingListed(errors.join("; ")));
    }
    resources.retain(|r| plan::selected(r, request));

    let mut named = Named { parameter: settings.definitions_parameter.clone(), definitions: None };
    if let Some(parameter) = &named.parameter {
        if request.action == Action::Reconcile && plan::needs_definitions(&resources) {
            named.definitions = Some(definitions(&clients.ssm, parameter).await);
        }
    }

    let mut jobs = Vec::new();
    let (mut ec2_start, mut ec2_stop) = (Vec::new(), Vec::new());
    for resource in &resources {
        let start = match plan::decide(resource, request, keys, &named) {
            Decision::Unchanged => {
                summary.unchanged += 1;
                continue;
            }
            Decision::Skip(reason) => {
                summary.skipped.push(Skipped { resource: resource.name(), reason });
                continue;
            }
            Decision::Start => true,
            Decision::Stop => false,
        };
        if request.dry_run {
            if start { &mut summary.started } else { &mut summary.stopped }.push(resource.name());
        } else if resource.kind == Kind::Ec2Instance {
            if start { &mut ec2_start } else { &mut ec2_stop }.push(resource.id.clone());
        } else {
            jobs.push(Job::One { resource, start });
        }
    }
    for (start, ids) in [(true, ec2_start), (false, ec2_stop)] {
        for batch in ids.chunks(settings.batch_size.max(1)) {
            jobs.push(Job::Instances { start, ids: batch.to_vec() });
        }
    }

    let done: Vec<Done> = stream::iter(jobs)
        .map(|job| execute(clients, keys, job, cutoff))
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    for (name, start, outcome) in done.into_iter().flatten() {
        match outcome {
            Outcome::Done => if start { &mut summary.started } else { &mut summary.stopped }.push(name),
            Outcome::Skipped(reason) => summary.skipped.push(Skipped { resource: name, reason }),
            Outcome::Failed(error) => summary.failed.push(Failed { resource: name, error }),
        }
    }
    summary.sort();
    Ok(summary)
}

async fn execute(clients: &Clients, keys: &TagKeys, job: Job<'_>, cutoff: Instant) -> Done {
    let late = Instant::now() >= cutoff;
    let too_late =
        || Outcome::Failed("not attempted: the invocation was about to time out; the next run picks it up".into());
    match job {
        Job::Instances { start, ids } => {
            let name = |id: &str| format!("{}/{id}", Kind::Ec2Instance.label());
            if late {
                return ids.iter().map(|id| (name(id), start, too_late())).collect();
            }
            let outcomes = actions::ec2_batch(&clients.ec2, start, ids).await;
            outcomes.into_iter().map(|(id, outcome)| (name(&id), start, outcome)).collect()
        }
        Job::One { resource, start } => {
            let outcome = if late {
                too_late()
            } else {
                match (resource.kind, start) {
                    (Kind::DbInstance, _) => actions::db_instance(&clients.rds, start, &resource.id).await,
                    (Kind::DbCluster, _) => actions::db_cluster(&clients.rds, start, &resource.id).await,
                    (Kind::AutoScalingGroup, true) => {
                        actions::start_group(&clients.autoscaling, resource, &keys.saved_capacity).await
                    }
                    (Kind::AutoScalingGroup, false) => {
                        actions::stop_group(&clients.autoscaling, resource, &keys.saved_capacity).await
                    }
                    (Kind::Ec2Instance, _) => unreachable!("instances go in batches"),
                }
            };
            vec![(resource.name(), start, outcome)]
        }
    }
}

async fn definitions(ssm: &aws_sdk_ssm::Client, parameter: &str) -> Result<Definitions, String> {
    let out = ssm
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| describe_error("GetParameter", &e))?;
    let text = out.parameter().and_then(|p| p.value()).unwrap_or_default();
    schedule::parse_definitions(text).map_err(|e| format!("SSM parameter {parameter}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn settings_default_and_from_the_environment() {
        let defaults = Settings::from_lookup(|_| None);
        assert_eq!(defaults.keys.schedule, "Schedule");
        assert_eq!(defaults.keys.override_until, "ScheduleOverride");
        assert_eq!(defaults.keys.saved_capacity, "stackhand:saved-capacity");
        assert_eq!(defaults.definitions_parameter, None);
        let env: HashMap<&str, &str> = [
            ("SCHEDULE_TAG_KEY", "office-schedule"),
            ("SCHEDULE_OVERRIDE_TAG_KEY", "hold-until"),
            ("SCHEDULES_PARAMETER", "/stackhand/schedules"),
        ]
        .into();
        let set = Settings::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(set.keys.schedule, "office-schedule");
        assert_eq!(set.keys.override_until, "hold-until");
        assert_eq!(set.definitions_parameter.as_deref(), Some("/stackhand/schedules"));
    }
}
