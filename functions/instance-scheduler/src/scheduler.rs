//! One run: find the tagged resources, decide for each, act in batches and with bounded concurrency,
//! and sum it up. Per-resource trouble is reported and never stops the run; the invocation fails only
//! when the event can't be read or nothing at all could be listed.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use tokio::time::{Duration, Instant};

use crate::actions::{self, Outcome};
use crate::direction::Direction;
use crate::ecs;
use crate::inventory::{self, Hibernation, Kind, Resource, State};
use crate::metrics;
use crate::plan::{decide_transition, selected, Decision, Named};
use crate::request::{self, Request};
use crate::summary::{Failed, Note, Skipped, Summary};
use crate::targets::{Hub, Identity, Target};

use crate::call::by_cutoff;
pub use crate::clients::Clients;
use crate::named::named;
pub use crate::named::Definer;
pub use crate::settings::{
    Settings, SettingsError, DEFAULT_HIBERNATE_TAG, DEFAULT_MAX_RESTORED_CAPACITY, DEFAULT_OVERRIDE_TAG,
    DEFAULT_ROLE_NAME, DEFAULT_SCHEDULE_TAG, SAVED_CAPACITY_TAG, SCHEDULE_APPLIED_TAG,
};

/// Calls not begun this long before the invocation's deadline are left for the next run.
const RESERVE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("{0}")]
    Event(#[from] request::EventError),
    #[error("nothing could be evaluated: {0}")]
    NothingListed(String),
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
    let summary = stackhand::aws::within(cutoff, run_targets(hub, settings, &request, own, cutoff)).await;
    metrics::emit(&summary, &mut std::io::stdout().lock());
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
    let runs: Vec<(Target, Result<Summary, String>)> = stream::iter(targets.iter())
        .map(|target| {
            let definer = &definer;
            async move {
                let summary = async {
                    let clients = hub.clients(settings, own, target).await?;
                    run(&clients, definer, settings, request, cutoff).await.map_err(|e| e.to_string())
                };
                let summary = tokio::time::timeout_at(cutoff, summary).await.unwrap_or_else(|_| {
                    Err("no answer by the run's cutoff (AssumeRole or every listing hung); the next run tries again".into())
                });
                (target.clone(), summary)
            }
        })
        .buffer_unordered(settings.target_concurrency.max(1))
        .collect()
        .await;
    Summary::merge(request_summary(request), runs, targets.len() > 1)
}

/// An empty summary of `request`.
fn request_summary(request: &Request) -> Summary {
    Summary {
        action: request.action.name().into(),
        at: request.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        dry_run: request.dry_run,
        ..Default::default()
    }
}

/// What the jobs did: per resource, its name, which way it was moved, and how it went.
type Done = Vec<(String, Direction, Outcome)>;

enum Job<'a> {
    /// With `hibernate`, a stop with `Hibernate` (instances that ask for it and can).
    Instances {
        direction: Direction,
        ids: Vec<String>,
        hibernate: bool,
    },
    One {
        resource: &'a Resource,
        direction: Direction,
    },
}

/// Everything the plan needs from AWS.
struct Listed {
    /// The tagged resources the request selects.
    resources: Vec<Resource>,
    /// The listings that failed.
    failed: Vec<Failed>,
    named: Named,
}

/// What the run is to send, and what it decided without sending anything.
struct Plan<'a> {
    jobs: Vec<Job<'a>>,
    decided: Decided,
    /// The transitions to record on resources once their job, if any, is done.
    marks: Vec<(&'a Resource, String)>,
}

#[derive(Default)]
struct Decided {
    unchanged: usize,
    skipped: Vec<Skipped>,
    /// In a dry run, what would be started or stopped.
    would: Vec<(String, Direction)>,
}

/// One run: list, plan, execute, summarize.
pub async fn run(
    clients: &Clients,
    definer: &Definer,
    settings: &Settings,
    request: &Request,
    cutoff: Instant,
) -> Result<Summary, SchedulerError> {
    let listed = list(clients, definer, request, settings, cutoff).await?;
    let Plan { jobs, decided, marks } = plan(&listed.resources, request, settings, &listed.named);
    let done = execute(clients, settings, jobs, cutoff).await;
    let unmarked = mark(clients, settings, marks, &done, cutoff).await;
    let mut summary = summarize(request, listed, decided, done);
    // A marker refused for the tag limit is no failure of the run: the next run, seeing 50 tags, acts
    // only at transitions.
    let (limited, unmarked): (Vec<_>, Vec<_>) =
        unmarked.into_iter().partition(|f| f.error.contains("TagLimitExceeded"));
    summary.notes.extend(limited.into_iter().map(|f| Note {
        resource: f.resource,
        note: format!(
            "its {} marker could not be added: it has {} tags, AWS's limit; it is acted on only at transitions of \
             its schedule until a tag is removed",
            settings.keys.applied,
            crate::plan::TAG_LIMIT
        ),
    }));
    summary.failed.extend(unmarked);
    summary.sort();
    Ok(summary)
}

/// The tagged resources the request selects, and the named schedules if any of them names one. Fails
/// only when nothing at all could be listed.
async fn list(
    clients: &Clients,
    definer: &Definer,
    request: &Request,
    settings: &Settings,
    cutoff: Instant,
) -> Result<Listed, SchedulerError> {
    let keys = &settings.keys;
    // Listing too ends at the cutoff: a page that hangs must not cost the run its summary.
    let (instances, databases, clusters, groups, services) = tokio::join!(
        by_cutoff(cutoff, "DescribeInstances", inventory::ec2_instances(&clients.ec2, keys)),
        by_cutoff(cutoff, "DescribeDBInstances", inventory::db_instances(&clients.rds, keys)),
        by_cutoff(cutoff, "DescribeDBClusters", inventory::db_clusters(&clients.rds, keys)),
        by_cutoff(cutoff, "DescribeAutoScalingGroups", inventory::auto_scaling_groups(&clients.autoscaling, keys)),
        by_cutoff(cutoff, "ListServices", ecs::services(&clients.ecs, &clients.applicationautoscaling, keys)),
    );
    let mut resources = Vec::new();
    let mut failed = Vec::new();
    let listings = [
        ("ec2-instances", instances),
        ("rds-instances", databases),
        ("rds-clusters", clusters),
        ("autoscaling-groups", groups),
        ("ecs-services", services),
    ];
    let sources = listings.len();
    for (source, listed) in listings {
        match listed {
            Ok(found) => resources.extend(found),
            Err(error) => failed.push(Failed { resource: format!("{source} (listing)"), error }),
        }
    }
    if failed.len() == sources {
        let errors: Vec<&str> = failed.iter().map(|f| f.error.as_str()).collect();
        return Err(SchedulerError::NothingListed(errors.join("; ")));
    }
    resources.retain(|r| selected(r, request));
    let named = named(definer, request, &resources, cutoff).await;
    Ok(Listed { resources, failed, named })
}

/// Each resource's decision: EC2 instances to start or stop go in batches, every other resource in a
/// job of its own; a dry run sends nothing.
fn plan<'a>(resources: &'a [Resource], request: &Request, settings: &Settings, named: &Named) -> Plan<'a> {
    let mut decided = Decided::default();
    let mut jobs = Vec::new();
    let (mut ec2_start, mut ec2_stop, mut ec2_hibernate) = (Vec::new(), Vec::new(), Vec::new());
    let mut marks = Vec::new();
    for resource in resources {
        let (decision, applies) = decide_transition(resource, request, &settings.keys, named, settings.interval);
        if let (Some(since), false) = (applies, request.dry_run) {
            // The direction applied: the decision's, or for a resource already in state, that state's.
            let direction = match decision {
                Decision::Stop => Direction::Stop,
                Decision::Start => Direction::Start,
                _ => Direction::towards(resource.state != State::Stopped),
            };
            marks.push((resource, crate::plan::marker(since, direction)));
        }
        let direction = match decision {
            Decision::Unchanged => {
                decided.unchanged += 1;
                continue;
            }
            Decision::Skip(reason) => {
                decided.skipped.push(Skipped { resource: resource.name(), reason });
                continue;
            }
            Decision::Start => Direction::Start,
            Decision::Stop => Direction::Stop,
        };
        if request.dry_run {
            decided.would.push((resource.name(), direction));
        } else if resource.kind == Kind::Ec2Instance {
            match direction {
                Direction::Start => &mut ec2_start,
                Direction::Stop if resource.hibernate == Hibernation::Configured => &mut ec2_hibernate,
                Direction::Stop => &mut ec2_stop,
            }
            .push(resource.id.clone());
        } else {
            jobs.push(Job::One { resource, direction });
        }
    }
    for (direction, ids, hibernate) in [
        (Direction::Start, ec2_start, false),
        (Direction::Stop, ec2_stop, false),
        (Direction::Stop, ec2_hibernate, true),
    ] {
        for batch in ids.chunks(settings.batch_size.max(1)) {
            jobs.push(Job::Instances { direction, ids: batch.to_vec(), hibernate });
        }
    }
    Plan { jobs, decided, marks }
}

/// Runs the jobs, `settings.concurrency` at a time.
async fn execute(clients: &Clients, settings: &Settings, jobs: Vec<Job<'_>>, cutoff: Instant) -> Done {
    let done: Vec<Done> = stream::iter(jobs)
        .map(|job| execute_job(clients, settings, job, cutoff))
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    done.into_iter().flatten().collect()
}

/// The summary: what the listing, the plan and the jobs each reported.
fn summarize(request: &Request, listed: Listed, decided: Decided, done: Done) -> Summary {
    let mut summary = Summary {
        skipped: decided.skipped,
        failed: listed.failed,
        unchanged: decided.unchanged,
        ..request_summary(request)
    };
    for (name, direction) in decided.would {
        summary.moved(direction).push(name);
    }
    // Instances whose last start fell back to stopped: started again, and reported as failing until
    // one start holds.
    let start_failures: HashMap<String, &str> =
        listed.resources.iter().filter_map(|r| r.start_failure.as_deref().map(|why| (r.name(), why))).collect();
    // Instances that ask for hibernation but were not launched able to, or are Spot Instances: stopped
    // normally, and said so.
    let unable: HashMap<String, &str> = listed
        .resources
        .iter()
        .filter(|_| !request.dry_run)
        .filter_map(|r| match r.hibernate {
            Hibernation::NotConfigured => Some((
                r.name(),
                "not hibernated: it asks for hibernation but was not launched with it enabled \
                 (HibernationOptions.Configured, which can only be set at launch); stopped normally instead",
            )),
            Hibernation::Spot => Some((
                r.name(),
                "not hibernated: a Spot Instance (EC2's documentation has said StopInstances cannot hibernate \
                 Spot Instances, and the error it gives is undocumented); stopped normally instead",
            )),
            Hibernation::NotAsked | Hibernation::Configured => None,
        })
        .collect();
    for (name, direction, outcome) in done {
        match outcome {
            Outcome::Done if direction == Direction::Stop && unable.contains_key(&name) => {
                summary.notes.push(Note { resource: name.clone(), note: unable[&name].into() });
                summary.moved(direction).push(name);
            }
            Outcome::Fallback(note) => {
                summary.notes.push(Note { resource: name.clone(), note });
                summary.moved(direction).push(name);
            }
            Outcome::Done if direction == Direction::Start && start_failures.contains_key(&name) => {
                let error = format!("{}; started again", start_failures[&name]);
                summary.failed.push(Failed { resource: name, error });
            }
            Outcome::Done => summary.moved(direction).push(name),
            Outcome::Skipped(reason) => summary.skipped.push(Skipped { resource: name, reason }),
            Outcome::Failed(error) => summary.failed.push(Failed { resource: name, error }),
            Outcome::Deferred => summary.deferred.push(name),
        }
    }
    summary.sort();
    summary
}

async fn execute_job(clients: &Clients, settings: &Settings, job: Job<'_>, cutoff: Instant) -> Done {
    let keys = &settings.keys;
    let bound = settings.max_restored_capacity;
    let late = Instant::now() >= cutoff;
    let too_late =
        || Outcome::Failed("not attempted: the invocation was about to time out; the next run picks it up".into());
    match job {
        Job::Instances { direction, ids, hibernate } => {
            let name = |id: &str| format!("{}/{id}", Kind::Ec2Instance.label());
            if late {
                return ids.iter().map(|id| (name(id), direction, too_late())).collect();
            }
            // EC2's request and instance buckets for this account and Region: a batch they would not
            // admit before the cutoff is deferred to the next run, not sent to be throttled.
            if clients.pacer.admit(direction, ids.len(), cutoff).await.is_err() {
                return ids.iter().map(|id| (name(id), direction, Outcome::Deferred)).collect();
            }
            let outcomes = if hibernate {
                actions::hibernate_batch(&clients.ec2, ids, cutoff).await
            } else {
                actions::ec2_batch(&clients.ec2, direction, ids, cutoff).await
            };
            outcomes.into_iter().map(|(id, outcome)| (name(&id), direction, outcome)).collect()
        }
        Job::One { resource, direction } => {
            let outcome = if late {
                too_late()
            } else {
                match (resource.kind, direction) {
                    (Kind::DbInstance, _) => actions::db_instance(&clients.rds, direction, &resource.id, cutoff).await,
                    (Kind::DbCluster, _) => actions::db_cluster(&clients.rds, direction, &resource.id, cutoff).await,
                    (Kind::AutoScalingGroup, Direction::Start) => {
                        actions::start_group(&clients.autoscaling, resource, &keys.saved_capacity, bound, cutoff).await
                    }
                    (Kind::AutoScalingGroup, Direction::Stop) => {
                        actions::stop_group(&clients.autoscaling, resource, &keys.saved_capacity, cutoff).await
                    }
                    (Kind::EcsService, Direction::Start) => {
                        let aas = &clients.applicationautoscaling;
                        ecs::start(&clients.ecs, aas, resource, &keys.saved_capacity, bound, cutoff).await
                    }
                    (Kind::EcsService, Direction::Stop) => {
                        let aas = &clients.applicationautoscaling;
                        ecs::stop(&clients.ecs, aas, resource, &keys.saved_capacity, cutoff).await
                    }
                    (Kind::Ec2Instance, _) => unreachable!("instances go in batches"),
                }
            };
            vec![(resource.name(), direction, outcome)]
        }
    }
}

/// A write of the marker tag: EC2 instances given the same value share a CreateTags call, groups share
/// a CreateOrUpdateTags call (each tag names its group), a database or cluster has an AddTagsToResource
/// of its own (RDS tags one ARN per call).
enum MarkJob {
    Instances { value: String, ids: Vec<String> },
    Groups(Vec<(String, String)>),
    Database { name: String, arn: Option<String>, value: String },
    Service { name: String, arn: Option<String>, value: String },
}

/// Records on each resource of `marks` the transition this run applied to it, unless its start or stop
/// did not get done (then the next run tries again). A marker that could not be written is reported
/// with its resource; the start or stop stands, and the next run applies the schedule again.
async fn mark(
    clients: &Clients,
    settings: &Settings,
    marks: Vec<(&Resource, String)>,
    done: &Done,
    cutoff: Instant,
) -> Vec<Failed> {
    let undone: HashSet<&str> =
        done.iter().filter(|(_, _, outcome)| *outcome != Outcome::Done).map(|(name, _, _)| name.as_str()).collect();
    let batch = settings.batch_size.max(1);
    let (mut instances, mut groups, mut jobs) = (BTreeMap::<String, Vec<String>>::new(), Vec::new(), Vec::new());
    for (resource, value) in marks {
        let name = resource.name();
        if undone.contains(name.as_str()) {
            continue;
        }
        match resource.kind {
            Kind::Ec2Instance => instances.entry(value).or_default().push(resource.id.clone()),
            Kind::AutoScalingGroup => groups.push((resource.id.clone(), value)),
            Kind::DbInstance | Kind::DbCluster => {
                jobs.push(MarkJob::Database { name, arn: resource.arn.clone(), value });
            }
            Kind::EcsService => {
                let arn = resource.service.as_ref().map(|s| s.arn.clone());
                jobs.push(MarkJob::Service { name, arn, value });
            }
        }
    }
    for (value, ids) in instances {
        jobs.extend(ids.chunks(batch).map(|ids| MarkJob::Instances { value: value.clone(), ids: ids.to_vec() }));
    }
    jobs.extend(groups.chunks(batch).map(|tags| MarkJob::Groups(tags.to_vec())));
    let failed: Vec<Vec<Failed>> = stream::iter(jobs)
        .map(|job| mark_job(clients, &settings.keys.applied, job, cutoff))
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    failed.into_iter().flatten().collect()
}

async fn mark_job(clients: &Clients, key: &str, job: MarkJob, cutoff: Instant) -> Vec<Failed> {
    let named = |kind: Kind, written: Vec<(String, Result<(), String>)>| {
        written.into_iter().map(move |(id, result)| (format!("{}/{id}", kind.label()), result)).collect::<Vec<_>>()
    };
    let written = match job {
        MarkJob::Instances { value, ids } => {
            named(Kind::Ec2Instance, actions::tag_instances(&clients.ec2, key, &value, ids, cutoff).await)
        }
        MarkJob::Groups(tags) => {
            named(Kind::AutoScalingGroup, actions::tag_groups(&clients.autoscaling, key, tags, cutoff).await)
        }
        MarkJob::Database { name, arn: Some(arn), value } => {
            vec![(name, actions::tag_database(&clients.rds, key, &arn, &value, cutoff).await)]
        }
        MarkJob::Service { name, arn: Some(arn), value } => {
            vec![(name, actions::tag_service(&clients.ecs, key, &arn, &value, cutoff).await)]
        }
        MarkJob::Database { name, arn: None, .. } | MarkJob::Service { name, arn: None, .. } => {
            vec![(name, Err("its listing gave no ARN to tag".into()))]
        }
    };
    let failed = written.into_iter().filter_map(|(resource, result)| result.err().map(|e| (resource, e)));
    failed
        .map(|(resource, e)| Failed {
            resource,
            error: format!("{e}; its {key} tag was not written, so the next run applies the schedule to it again"),
        })
        .collect()
}

/// Runs against mocked AWS answers: what moto can't give (a failed UpdateAutoScalingGroup, a start that
/// fell back to stopped, stop protection, global databases, a call that never answers).
#[cfg(test)]
mod mocked {
    use super::*;
    use crate::request::Action;
    use crate::testing::{self, error_meta, Rules, KEY, SAVED};
    use aws_sdk_autoscaling::operation::create_or_update_tags::CreateOrUpdateTagsOutput;
    use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
    use aws_sdk_autoscaling::operation::update_auto_scaling_group::{
        UpdateAutoScalingGroupError, UpdateAutoScalingGroupOutput,
    };
    use aws_sdk_autoscaling::types::{AutoScalingGroup, Instance as GroupInstance, LifecycleState, TagDescription};
    use aws_sdk_ec2::operation::create_tags::{CreateTagsError, CreateTagsOutput};
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::operation::describe_spot_instance_requests::DescribeSpotInstanceRequestsOutput;
    use aws_sdk_ec2::operation::start_instances::StartInstancesOutput;
    use aws_sdk_ec2::operation::stop_instances::{StopInstancesError, StopInstancesOutput};
    use aws_sdk_ec2::types::{
        DeviceType, Instance, InstanceLifecycleType, InstanceState, InstanceStateName, Reservation,
        SpotInstanceRequest, SpotInstanceType, StateReason, Tag,
    };
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
    use aws_sdk_rds::operation::stop_db_cluster::StopDbClusterOutput;
    use aws_sdk_rds::operation::stop_db_instance::StopDbInstanceOutput;
    use aws_sdk_rds::types::{DbCluster, DbInstance, GlobalCluster, GlobalClusterMember, Tag as RdsTag};
    use aws_smithy_mocks::{mock, Rule};

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(600)
    }

    fn instance(id: &str, state: InstanceStateName) -> aws_sdk_ec2::types::builders::InstanceBuilder {
        Instance::builder()
            .instance_id(id)
            .state(InstanceState::builder().name(state).build())
            .root_device_type(DeviceType::Ebs)
            .tags(Tag::builder().key(KEY).value("office").build())
    }

    fn ec2_listing(instances: Vec<Instance>) -> Rule {
        mock!(aws_sdk_ec2::Client::describe_instances).then_output(move || {
            let reservation = Reservation::builder().set_instances(Some(instances.clone())).build();
            DescribeInstancesOutput::builder().reservations(reservation).build()
        })
    }

    fn group(name: &str, (min, max, desired): (i32, i32, i32), saved: Option<&str>) -> AutoScalingGroup {
        let mut group = AutoScalingGroup::builder()
            .auto_scaling_group_name(name)
            .min_size(min)
            .max_size(max)
            .desired_capacity(desired)
            .tags(TagDescription::builder().key(KEY).value("office").build());
        if let Some(saved) = saved {
            group = group.tags(TagDescription::builder().key(SAVED).value(saved).build());
        }
        group.build()
    }

    fn groups_listing(groups: Vec<AutoScalingGroup>) -> Rule {
        mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(move || {
            DescribeAutoScalingGroupsOutput::builder().set_auto_scaling_groups(Some(groups.clone())).build()
        })
    }

    /// UpdateAutoScalingGroup to 0/0/0, answered.
    fn zeroing() -> Rule {
        mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
            .match_requests(|r| (r.min_size(), r.max_size(), r.desired_capacity()) == (Some(0), Some(0), Some(0)))
            .then_output(|| UpdateAutoScalingGroupOutput::builder().build())
    }

    fn tagging() -> Rule {
        mock!(aws_sdk_autoscaling::Client::create_or_update_tags)
            .then_output(|| CreateOrUpdateTagsOutput::builder().build())
    }

    fn suspending() -> Rule {
        mock!(aws_sdk_autoscaling::Client::suspend_processes)
            .match_requests(|r| r.scaling_processes() == ["ScheduledActions", "AlarmNotification"])
            .then_output(|| {
                aws_sdk_autoscaling::operation::suspend_processes::SuspendProcessesOutput::builder().build()
            })
    }

    async fn run_with(clients: &Clients, action: Action) -> Summary {
        let definer = testing::no_definitions();
        run(clients, &definer, &testing::settings(), &testing::request(action), later()).await.expect("a summary")
    }

    fn reasons(summary: &Summary) -> Vec<(String, String)> {
        let skipped = summary.skipped.iter().map(|s| (s.resource.clone(), s.reason.clone()));
        let failed = summary.failed.iter().map(|f| (f.resource.clone(), f.error.clone()));
        skipped.chain(failed).collect()
    }

    fn reason<'a>(summary: &'a Summary, resource: &str) -> &'a str {
        let skipped = summary.skipped.iter().find(|s| s.resource == resource).map(|s| s.reason.as_str());
        let failed = summary.failed.iter().find(|f| f.resource == resource).map(|f| f.error.as_str());
        skipped.or(failed).unwrap_or_else(|| panic!("{resource} in {summary:?}"))
    }

    // Item 11: ResourceContention (not retried by the SDK) after the tag was written leaves the group
    // running with its saved capacity; the next run must stop it again, not call it unchanged.
    #[tokio::test]
    async fn a_stop_whose_resize_failed_is_finished_by_the_next_run_keeping_the_saved_capacity() {
        let listing = groups_listing(vec![group("web", (1, 3, 2), None)]);
        let suspend = suspending();
        let (tags, contention) = (
            tagging(),
            mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group).then_error(|| {
                UpdateAutoScalingGroupError::generic(error_meta("ResourceContention", "another update is in progress"))
            }),
        );
        let first = run_with(
            &testing::clients(Rules {
                autoscaling: vec![&listing, &tags, &suspend, &contention],
                ..Default::default()
            }),
            Action::Stop,
        )
        .await;
        assert!(reason(&first, "autoscaling-group/web").contains("ResourceContention"), "{first:?}");
        assert_eq!(tags.num_calls(), 1);

        // What the next run lists: the tag, and the capacity unchanged.
        let half_stopped = groups_listing(vec![group("web", (1, 3, 2), Some("min=1 max=3 desired=2"))]);
        let (tags, zero) = (tagging(), zeroing());
        let clients = testing::clients(Rules { autoscaling: vec![&half_stopped, &tags, &zero], ..Default::default() });
        let second = run_with(&clients, Action::Stop).await;
        assert_eq!(second.stopped, ["autoscaling-group/web"], "{second:?}");
        assert_eq!(second.unchanged, 0);
        assert_eq!(zero.num_calls(), 1, "set to 0 again");
        assert_eq!(tags.num_calls(), 0, "the saved capacity is kept, not overwritten");
    }

    #[tokio::test]
    async fn a_group_is_stopped_only_with_its_tag_and_minimum_maximum_and_desired_at_zero() {
        let listing = groups_listing(vec![
            group("stopped", (0, 0, 0), Some("min=1 max=3 desired=2")),
            group("max-left", (0, 3, 0), Some("min=1 max=3 desired=2")),
            group("untagged-zero", (0, 0, 0), None),
        ]);
        let (tags, zero) = (tagging(), zeroing());
        let clients = testing::clients(Rules { autoscaling: vec![&listing, &tags, &zero], ..Default::default() });
        let summary = run_with(&clients, Action::Stop).await;
        assert_eq!(summary.stopped, ["autoscaling-group/max-left"], "{summary:?}");
        assert_eq!(summary.unchanged, 1);
        // Issue 20: at 0 with no saved capacity is stopped already; saving "0" would overwrite the
        // capacity an overlapping run saved.
        assert!(reason(&summary, "autoscaling-group/untagged-zero").contains("taken as stopped"), "{summary:?}");
        assert_eq!(tags.num_calls(), 0, "no all-zero capacity is saved");
    }

    // Item 14: a start that fell back to stopped (no kms:CreateGrant: Client.InternalError) must not be
    // reported as started run after run.
    #[tokio::test]
    async fn a_start_that_fell_back_to_stopped_is_reported_failed_with_its_state_reason() {
        let reason_ =
            StateReason::builder().code("Client.InternalError").message("Client.InternalError: Client error on launch");
        let listing = ec2_listing(vec![
            instance("i-kms", InstanceStateName::Stopped).state_reason(reason_.build()).build(),
            instance("i-fine", InstanceStateName::Stopped)
                .state_reason(StateReason::builder().code("Client.UserInitiatedShutdown").build())
                .build(),
        ]);
        let start = mock!(aws_sdk_ec2::Client::start_instances).then_output(|| StartInstancesOutput::builder().build());
        let clients = testing::clients(Rules { ec2: vec![&listing, &start], ..Default::default() });
        let summary = run_with(&clients, Action::Start).await;
        assert_eq!(summary.started, ["ec2-instance/i-fine"], "{summary:?}");
        let why = reason(&summary, "ec2-instance/i-kms");
        assert!(why.starts_with("its last start fell back to stopped (Client.InternalError: "), "{why}");
        assert!(why.contains("SchedulerKmsKeyArns") && why.ends_with("; started again"), "{why}");
        assert_eq!(start.num_calls(), 1, "tried again: a fixed key grant lets it start");
    }

    // Item 15: what AWS won't stop is known from the listing and skipped with the reason; nothing is
    // sent for it, and no batch is split over it.
    #[tokio::test]
    async fn instances_aws_cannot_stop_are_skipped_with_the_reason_without_splitting_batches() {
        let spot = |id: &str, request: &str| {
            instance(id, InstanceStateName::Running)
                .instance_lifecycle(InstanceLifecycleType::Spot)
                .spot_instance_request_id(request)
                .build()
        };
        let listing = ec2_listing(vec![
            instance("i-plain", InstanceStateName::Running).build(),
            instance("i-store", InstanceStateName::Running).root_device_type(DeviceType::InstanceStore).build(),
            spot("i-oneshot", "sir-once"),
            spot("i-persist", "sir-keep"),
            instance("i-fleet", InstanceStateName::Running).instance_lifecycle(InstanceLifecycleType::Spot).build(),
            instance("i-guarded", InstanceStateName::Running).build(),
        ]);
        let requests = mock!(aws_sdk_ec2::Client::describe_spot_instance_requests).then_output(|| {
            let request =
                |id: &str, kind| SpotInstanceRequest::builder().spot_instance_request_id(id).r#type(kind).build();
            DescribeSpotInstanceRequestsOutput::builder()
                .spot_instance_requests(request("sir-once", SpotInstanceType::OneTime))
                .spot_instance_requests(request("sir-keep", SpotInstanceType::Persistent))
                .build()
        });
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&sent);
        let guarded = mock!(aws_sdk_ec2::Client::stop_instances)
            .match_requests(move |r| {
                seen.lock().unwrap().push(r.instance_ids().to_vec());
                r.instance_ids().iter().any(|id| id == "i-guarded")
            })
            .then_error(|| {
                StopInstancesError::generic(error_meta(
                    "OperationNotPermitted",
                    "The instance 'i-guarded' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.",
                ))
            });
        let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
        let clients = testing::clients(Rules { ec2: vec![&listing, &requests, &guarded, &stop], ..Default::default() });
        let summary = run_with(&clients, Action::Stop).await;
        assert_eq!(summary.stopped, ["ec2-instance/i-persist", "ec2-instance/i-plain"], "{summary:?}");
        assert!(summary.failed.is_empty(), "{summary:?}");
        assert!(reason(&summary, "ec2-instance/i-store").contains("instance-store root volume"));
        assert!(reason(&summary, "ec2-instance/i-oneshot").contains("one-time Spot Instance"));
        assert!(reason(&summary, "ec2-instance/i-fleet").contains("one-time Spot Instance"));
        assert!(reason(&summary, "ec2-instance/i-guarded").contains("stop protection (DisableApiStop)"));
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 2, "the protected instance taken out, the rest sent again whole: {sent:?}");
        assert_eq!(sent[0].len(), 3, "{sent:?}");
        assert_eq!(sent[1].len(), 2, "{sent:?}");
    }

    #[tokio::test]
    async fn databases_aws_cannot_stop_are_skipped_with_the_reason() {
        let tag = || RdsTag::builder().key(KEY).value("office").build();
        let db = move |id: &str| {
            DbInstance::builder().db_instance_identifier(id).db_instance_status("available").tag_list(tag())
        };
        let instances = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(db("mysql").engine("mysql").multi_az(true).build())
                .db_instances(db("mssql").engine("sqlserver-se").multi_az(true).build())
                .db_instances(db("mssql-single").engine("sqlserver-ex").multi_az(false).build())
                .db_instances(db("primary").engine("mysql").read_replica_db_instance_identifiers("replica").build())
                .db_instances(
                    db("replica").engine("mysql").read_replica_source_db_instance_identifier("primary").build(),
                )
                .build()
        });
        let cluster =
            move |id: &str| DbCluster::builder().db_cluster_identifier(id).status("available").tag_list(tag());
        let clusters = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(move || {
            DescribeDbClustersOutput::builder()
                .db_clusters(cluster("provisioned").engine_mode("provisioned").build())
                .db_clusters(cluster("v1").engine_mode("serverless").build())
                .db_clusters(cluster("global-2").engine_mode("provisioned").global_cluster_identifier("world").build())
                .db_clusters(cluster("global-1").engine_mode("provisioned").global_cluster_identifier("alone").build())
                .db_clusters(
                    cluster("source")
                        .engine_mode("provisioned")
                        .read_replica_identifiers("arn:aws:rds:eu-west-2:123456789012:cluster:copy")
                        .build(),
                )
                .build()
        });
        let global = mock!(aws_sdk_rds::Client::describe_global_clusters).then_output(|| {
            let member = |arn: &str| GlobalClusterMember::builder().db_cluster_arn(arn).build();
            DescribeGlobalClustersOutput::builder()
                .global_clusters(
                    GlobalCluster::builder()
                        .global_cluster_identifier("world")
                        .global_cluster_members(member("arn:aws:rds:eu-west-1:123456789012:cluster:global-2"))
                        .global_cluster_members(member("arn:aws:rds:us-east-1:123456789012:cluster:far"))
                        .build(),
                )
                .global_clusters(
                    GlobalCluster::builder()
                        .global_cluster_identifier("alone")
                        .global_cluster_members(member("arn:aws:rds:eu-west-1:123456789012:cluster:global-1"))
                        .build(),
                )
                .build()
        });
        let stop_db =
            mock!(aws_sdk_rds::Client::stop_db_instance).then_output(|| StopDbInstanceOutput::builder().build());
        let stop_cluster =
            mock!(aws_sdk_rds::Client::stop_db_cluster).then_output(|| StopDbClusterOutput::builder().build());
        let clients = testing::clients(Rules {
            rds: vec![&instances, &clusters, &global, &stop_db, &stop_cluster],
            ..Default::default()
        });
        let summary = run_with(&clients, Action::Stop).await;
        assert_eq!(
            summary.stopped,
            ["rds-cluster/global-1", "rds-cluster/provisioned", "rds-instance/mssql-single", "rds-instance/mysql"],
            "{summary:?}"
        );
        assert!(summary.failed.is_empty(), "{summary:?}");
        assert!(reason(&summary, "rds-instance/mssql").contains("SQL Server in a Multi-AZ deployment"));
        assert!(reason(&summary, "rds-instance/primary").contains("has read replicas"));
        assert!(reason(&summary, "rds-instance/replica").contains("is a read replica of primary"));
        assert!(reason(&summary, "rds-cluster/v1").contains("Aurora Serverless v1"));
        assert!(reason(&summary, "rds-cluster/global-2").contains("one of 2 clusters of global database world"));
        assert!(reason(&summary, "rds-cluster/source").contains("has read replicas (arn:aws:rds:eu-west-2"));
        assert_eq!((stop_db.num_calls(), stop_cluster.num_calls()), (2, 2), "{:?}", reasons(&summary));
    }

    // Item 17: instances protected from scale in outlive desired 0.
    #[tokio::test]
    async fn groups_whose_protected_instances_outlive_capacity_zero_are_reported() {
        let member = |id: &str, protected: bool, state: LifecycleState| {
            GroupInstance::builder().instance_id(id).protected_from_scale_in(protected).lifecycle_state(state).build()
        };
        let mut running = group("protected", (1, 3, 2), None);
        running.instances = Some(vec![
            member("i-kept", true, LifecycleState::InService),
            member("i-gone", false, LifecycleState::InService),
            member("i-leaving", true, LifecycleState::Terminating),
        ]);
        running.new_instances_protected_from_scale_in = Some(true);
        let mut stopped = group("stopped-protected", (0, 0, 0), Some("min=1 max=1 desired=1"));
        stopped.instances = Some(vec![member("i-still", true, LifecycleState::InService)]);
        let plain = group("plain", (1, 1, 1), None);
        let listing = groups_listing(vec![running, stopped, plain]);
        let (tags, zero) = (tagging(), zeroing());
        let suspend = suspending();
        let clients =
            testing::clients(Rules { autoscaling: vec![&listing, &tags, &suspend, &zero], ..Default::default() });
        let summary = run_with(&clients, Action::Stop).await;
        assert_eq!(summary.stopped, ["autoscaling-group/plain"], "{summary:?}");
        let why = reason(&summary, "autoscaling-group/protected");
        assert!(why.starts_with("capacity set to 0, but 1 instance(s) protected from scale in keep running"), "{why}");
        assert!(why.contains("i-kept") && !why.contains("i-gone") && !why.contains("i-leaving"), "{why}");
        assert!(why.contains("NewInstancesProtectedFromScaleIn"), "{why}");
        assert!(summary.failed.iter().any(|f| f.resource == "autoscaling-group/protected"), "{summary:?}");
        let why = reason(&summary, "autoscaling-group/stopped-protected");
        assert!(why.starts_with("is stopped, but 1 instance(s) protected") && why.contains("i-still"), "{why}");
        assert_eq!(summary.unchanged, 0);
        assert_eq!(zero.num_calls(), 2);
    }

    /// A run of `{"action": "stop"}` over one running instance, whose `hanging` calls never answer,
    /// with a cutoff 10 s on; the summary and how long past the cutoff it came.
    async fn stop_with_hanging(hanging: &'static [&'static str]) -> (Summary, Duration) {
        let config = testing::config_with(testing::hanging_on(hanging));
        let listing = ec2_listing(vec![instance("i-hangs", InstanceStateName::Running).build()]);
        // The answer the HTTP client never delivers when StopInstances hangs.
        let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
        let clients = testing::clients_on(&config, Rules { ec2: vec![&listing, &stop], ..Default::default() });
        let cutoff = Instant::now() + Duration::from_secs(10);
        let (settings, request) = (testing::settings(), testing::request(Action::Stop));
        let definer = testing::no_definitions();
        let run = run(&clients, &definer, &settings, &request, cutoff);
        let summary = stackhand::aws::within(cutoff, run).await.expect("a summary");
        (summary, Instant::now().saturating_duration_since(cutoff))
    }

    // Item 16: an attempt that hangs (up to the 60 s attempt timeout) ends at the run's cutoff, and
    // the run still answers with its summary.
    #[tokio::test(start_paused = true)]
    async fn a_call_that_hangs_ends_at_the_cutoff_and_the_run_still_sums_up() {
        let (summary, late) = stop_with_hanging(&["StopInstances"]).await;
        assert_eq!(late, Duration::ZERO, "ended past the cutoff");
        let why = reason(&summary, "ec2-instance/i-hangs");
        assert!(why.starts_with("StopInstances had no answer by the run's cutoff"), "{why}");
        assert_eq!(summary.failed.len(), 1, "{summary:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_listing_that_hangs_ends_at_the_cutoff_and_the_run_still_sums_up() {
        let (summary, late) = stop_with_hanging(&["DescribeDBInstances"]).await;
        assert_eq!(late, Duration::ZERO, "ended past the cutoff");
        let why = reason(&summary, "rds-instances (listing)");
        assert!(why.starts_with("DescribeDBInstances had no complete answer by the run's cutoff"), "{why}");
        // The listing took the run's time: what was found is reported, not attempted.
        assert!(reason(&summary, "ec2-instance/i-hangs").starts_with("not attempted"), "{summary:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_sent_after_the_cutoff() {
        let listing = ec2_listing(vec![instance("i-late", InstanceStateName::Running).build()]);
        let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
        let clients = testing::clients(Rules { ec2: vec![&listing, &stop], ..Default::default() });
        let outcomes =
            crate::actions::ec2_batch(&clients.ec2, Direction::Stop, vec!["i-late".into()], Instant::now()).await;
        assert!(matches!(&outcomes[0].1, crate::actions::Outcome::Failed(m) if m.contains("not attempted")));
        assert_eq!(stop.num_calls(), 0);
    }

    /// An instance on `Mon-Fri 08:00-19:00 UTC`, with the marker `applied` if given.
    fn scheduled(id: &str, state: InstanceStateName, applied: Option<&str>) -> Instance {
        let mut instance = Instance::builder()
            .instance_id(id)
            .state(InstanceState::builder().name(state).build())
            .root_device_type(DeviceType::Ebs)
            .tags(Tag::builder().key(KEY).value("Mon-Fri 08:00-19:00 UTC").build());
        if let Some(applied) = applied {
            instance = instance.tags(Tag::builder().key(SCHEDULE_APPLIED_TAG).value(applied).build());
        }
        instance.build()
    }

    /// A reconcile at Monday 2026-11-23 21:00 UTC, two hours after the 19:00 stop.
    /// EC2's StartInstances metering (the API throttling guide): a request bucket of 5 refilled at
    /// 2/s and a resource bucket of 1,000 instances refilled at 2/s, on Tokio's (paused) clock. A call
    /// either bucket can't cover is answered RequestLimitExceeded, as EC2 does.
    struct MeteredStarts {
        state: std::sync::Mutex<(f64, f64, Instant)>,
        throttled: std::sync::atomic::AtomicUsize,
        started: std::sync::atomic::AtomicUsize,
    }

    impl MeteredStarts {
        fn new() -> Self {
            Self {
                state: std::sync::Mutex::new((5.0, 1000.0, Instant::now())),
                throttled: Default::default(),
                started: Default::default(),
            }
        }

        fn call(&self, instances: usize) -> bool {
            let mut state = self.state.lock().unwrap();
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(state.2).as_secs_f64();
            state.0 = (state.0 + 2.0 * elapsed).min(5.0);
            state.1 = (state.1 + 2.0 * elapsed).min(1000.0);
            state.2 = now;
            // A little slack for float rounding between two clocks read a moment apart.
            if state.0 < 1.0 - 1e-6 || state.1 < instances as f64 - 1e-6 {
                self.throttled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return false;
            }
            state.0 -= 1.0;
            state.1 -= instances as f64;
            self.started.fetch_add(instances, std::sync::atomic::Ordering::SeqCst);
            true
        }
    }

    // Issue 20 item 4: 2,000 stopped instances to start, 8 batches of 100 at a time, 297 s to do it in.
    // Unpaced, the 1,000-instance bucket empties at once and everything after is throttled through the
    // timeout and reported failed; paced, nothing is throttled, what the buckets admit in time starts,
    // and the rest is deferred (no failure, no marker) to the next run.
    #[tokio::test(start_paused = true)]
    async fn starts_are_paced_to_ec2s_buckets_and_what_does_not_fit_is_deferred_not_failed() {
        let instances: Vec<Instance> =
            (0..2000).map(|i| instance(&format!("i-{i:017x}"), InstanceStateName::Stopped).build()).collect();
        let listing = ec2_listing(instances);
        let meter = std::sync::Arc::new(MeteredStarts::new());
        let seen = std::sync::Arc::clone(&meter);
        let start = mock!(aws_sdk_ec2::Client::start_instances).then_compute_response(move |r| {
            if seen.call(r.instance_ids().len()) {
                aws_smithy_mocks::MockResponse::Output(StartInstancesOutput::builder().build())
            } else {
                let meta = error_meta("RequestLimitExceeded", "Request limit exceeded.");
                aws_smithy_mocks::MockResponse::Error(
                    aws_sdk_ec2::operation::start_instances::StartInstancesError::generic(meta),
                )
            }
        });
        let clients = testing::clients(Rules { ec2: vec![&listing, &start], ..Default::default() });
        let cutoff = Instant::now() + Duration::from_secs(297);
        let summary =
            run(&clients, &testing::no_definitions(), &testing::settings(), &testing::request(Action::Start), cutoff)
                .await
                .expect("a summary");
        assert_eq!(meter.throttled.load(std::sync::atomic::Ordering::SeqCst), 0, "never throttled");
        assert!(summary.failed.is_empty(), "{:?}", summary.failed.first());
        // 1,000 at once, then 100 per 50 s of refill: at 50, 100, 150, 200 and 250 s.
        assert_eq!(summary.started.len(), 1500);
        assert_eq!(meter.started.load(std::sync::atomic::Ordering::SeqCst), 1500);
        assert_eq!(summary.deferred.len(), 500);
        assert_eq!(summary.started.len() + summary.deferred.len(), 2000);
        assert!(Instant::now() < cutoff, "the run ended before its cutoff");
    }

    async fn reconcile_evening(clients: &Clients, dry_run: bool) -> Summary {
        let mut request = testing::request(Action::Reconcile);
        request.at = "2026-11-23T21:00:00Z".parse().unwrap();
        request.dry_run = dry_run;
        run(clients, &testing::no_definitions(), &testing::settings(), &request, later()).await.expect("a summary")
    }

    /// Each CreateTags request's instance ids and `key=value`.
    type Sent = std::sync::Arc<std::sync::Mutex<Vec<(Vec<String>, String)>>>;

    /// CreateTags, refused with `code` for any batch holding `bad`; every request's ids and value kept.
    fn tagging_instances(bad: &'static str, code: &'static str) -> (Rule, Rule, Sent) {
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&sent);
        let refuse = mock!(aws_sdk_ec2::Client::create_tags)
            .match_requests(move |r| {
                let value = r.tags().iter().map(|t| format!("{}={}", t.key().unwrap(), t.value().unwrap())).collect();
                seen.lock().unwrap().push((r.resources().to_vec(), value));
                r.resources().iter().any(|id| id == bad)
            })
            .then_error(move || CreateTagsError::generic(error_meta(code, "not on this one")));
        let accept = mock!(aws_sdk_ec2::Client::create_tags).then_output(|| CreateTagsOutput::builder().build());
        (refuse, accept, sent)
    }

    #[tokio::test]
    async fn a_marker_that_cannot_be_written_is_reported_with_its_resource_and_the_stop_stands() {
        let listing = ec2_listing(vec![
            scheduled("i-ok", InstanceStateName::Running, None),
            scheduled("i-locked", InstanceStateName::Running, Some("2026-11-23T08:00:00Z")),
            scheduled("i-asleep", InstanceStateName::Stopped, None),
            scheduled("i-refused", InstanceStateName::Running, None),
        ]);
        let refuse_stop = mock!(aws_sdk_ec2::Client::stop_instances)
            .match_requests(|r| r.instance_ids().iter().any(|id| id == "i-refused"))
            .then_error(|| StopInstancesError::generic(error_meta("UnsupportedOperation", "no")));
        let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
        let (refuse_tags, tags, sent) = tagging_instances("i-locked", "UnauthorizedOperation");
        let clients = testing::clients(Rules {
            ec2: vec![&listing, &refuse_stop, &stop, &refuse_tags, &tags],
            ..Default::default()
        });
        let summary = reconcile_evening(&clients, false).await;
        assert_eq!(summary.stopped, ["ec2-instance/i-locked", "ec2-instance/i-ok"], "{summary:?}");
        assert_eq!(summary.unchanged, 1, "{summary:?}");
        let why = reason(&summary, "ec2-instance/i-locked");
        assert!(why.starts_with("CreateTags failed: UnauthorizedOperation"), "{why}");
        assert!(
            why.ends_with(
                "its stackhand:schedule-applied tag was not written, so the next run applies the schedule to it again"
            ),
            "{why}"
        );
        assert!(reason(&summary, "ec2-instance/i-refused").contains("UnsupportedOperation"), "{summary:?}");
        assert_eq!(summary.failed.len(), 2, "{summary:?}");
        let sent = sent.lock().unwrap();
        // One call for the three done (the stopped two and the one already stopped), then by halves.
        assert_eq!(sent[0].0.len(), 3, "{sent:?}");
        assert!(sent.iter().all(|(_, tag)| tag == "stackhand:schedule-applied=2026-11-23T19:00:00Z stop"), "{sent:?}");
        let tagged: std::collections::BTreeSet<&str> = sent
            .iter()
            .filter(|(ids, _)| !ids.contains(&"i-locked".to_owned()))
            .flat_map(|(ids, _)| ids.iter().map(String::as_str))
            .collect();
        assert_eq!(tagged, ["i-asleep", "i-ok"].into(), "a failed stop is not marked: {sent:?}");
    }

    // Issue 20 item 7: a marker refused for the 50-tag limit is a note, not a failed run.
    #[tokio::test]
    async fn a_marker_refused_for_the_tag_limit_is_a_note_and_the_run_does_not_fail() {
        let listing = ec2_listing(vec![
            scheduled("i-ok", InstanceStateName::Running, None),
            scheduled("i-full", InstanceStateName::Running, None),
        ]);
        let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
        let (refuse_tags, tags, _) = tagging_instances("i-full", "TagLimitExceeded");
        let clients = testing::clients(Rules { ec2: vec![&listing, &stop, &refuse_tags, &tags], ..Default::default() });
        let summary = reconcile_evening(&clients, false).await;
        assert_eq!(summary.stopped, ["ec2-instance/i-full", "ec2-instance/i-ok"], "{summary:?}");
        assert!(summary.failed.is_empty(), "{summary:?}");
        let note = summary.notes.iter().find(|n| n.resource == "ec2-instance/i-full").expect("a note");
        assert!(note.note.contains("it has 50 tags, AWS's limit"), "{summary:?}");
    }

    #[tokio::test]
    async fn a_dry_run_writes_no_marker() {
        let listing = ec2_listing(vec![
            scheduled("i-up", InstanceStateName::Running, None),
            scheduled("i-down", InstanceStateName::Stopped, None),
        ]);
        let (refuse_tags, tags, _) = tagging_instances("i-none", "UnauthorizedOperation");
        let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
        let clients = testing::clients(Rules { ec2: vec![&listing, &stop, &refuse_tags, &tags], ..Default::default() });
        let summary = reconcile_evening(&clients, true).await;
        assert_eq!(summary.stopped, ["ec2-instance/i-up"], "{summary:?}");
        assert_eq!((stop.num_calls(), refuse_tags.num_calls(), tags.num_calls()), (0, 0, 0));
        // The same run for real writes it on both.
        let summary = reconcile_evening(&clients, false).await;
        assert_eq!(summary.stopped, ["ec2-instance/i-up"], "{summary:?}");
        assert_eq!(tags.num_calls(), 1);
    }
}
