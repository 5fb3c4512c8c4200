//! Starting and stopping. EC2 instances go in batches — one StartInstances/StopInstances call per batch,
//! a batch that fails retried by halves so that one bad instance doesn't hold back the rest. RDS and
//! Auto Scaling have no batch calls: one call per resource, run with bounded concurrency by the caller.
//! "Already in that state" answers are reported as skipped, not failed. Throttling is retried by the SDK.
//! Every call is bounded by the run's cutoff: one that has no answer by then is reported, not awaited.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_autoscaling::types::Tag as AsgTag;
use stackhand::aws::{AwsError, AwsResultExt};
use tokio::time::Instant;

use crate::direction::Direction;
use crate::inventory::{saved_suspended, saved_value, Capacity, Resource};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Done, but not the way asked (a hibernation that fell back to a normal stop): why.
    Fallback(String),
    Skipped(String),
    Failed(String),
    /// Not sent: EC2's buckets would not admit it before the run's cutoff (the next run does it).
    Deferred,
}

const THROTTLING: [&str; 4] = ["RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"];

/// Error codes meaning "it is not in a state for that" — for one resource, not a failure of the run.
const WRONG_STATE: [&str; 4] =
    ["IncorrectInstanceState", "InvalidDBInstanceState", "InvalidDBInstanceStateFault", "InvalidDBClusterStateFault"];

pub(crate) struct CallError {
    pub(crate) message: String,
    code: Option<String>,
    /// A service's answer about the request's content (not throttling, not the network): splitting
    /// the batch may get the rest through.
    splittable: bool,
}

impl From<AwsError> for CallError {
    fn from(err: AwsError) -> Self {
        let code = err.code().map(str::to_owned);
        let splittable = err.is_service_error() && !code.as_deref().is_some_and(|c| THROTTLING.contains(&c));
        CallError { message: err.to_string(), code, splittable }
    }
}

impl CallError {
    fn late(operation: &str, in_flight: bool) -> Self {
        let message = if in_flight {
            format!("{operation} had no answer by the run's cutoff (it may still take effect); the next run checks")
        } else {
            format!("{operation} not attempted: the invocation was about to time out; the next run picks it up")
        };
        CallError { message, code: None, splittable: false }
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

/// The instance a StopInstances refused for its stop protection names: `The instance 'i-…' may not be
/// stopped. Modify its 'disableApiStop' instance attribute and try again.`
fn stop_protected(error: &CallError) -> Option<&str> {
    if error.code.as_deref() != Some("OperationNotPermitted") || !error.message.contains("disableApiStop") {
        return None;
    }
    let (_, rest) = error.message.split_once("instance '")?;
    rest.split_once('\'').map(|(id, _)| id)
}

pub(crate) fn outcome(error: CallError) -> Outcome {
    if error.code.as_deref().is_some_and(|c| WRONG_STATE.contains(&c)) {
        Outcome::Skipped(error.message)
    } else {
        Outcome::Failed(error.message)
    }
}

/// Starts or stops `ids` in one call; if that fails for the content of the request, each half is
/// tried on its own, down to single instances, whose error is then theirs alone. An instance refused
/// for its stop protection is taken out (AWS names it) and the rest tried again whole.
pub async fn ec2_batch(
    ec2: &aws_sdk_ec2::Client,
    direction: Direction,
    ids: Vec<String>,
    cutoff: Instant,
) -> Vec<(String, Outcome)> {
    batch(ec2, direction, ids, false, cutoff, &mut Vec::new()).await
}

/// Hibernates `ids` (instances tagged for it and launched with it enabled) in one StopInstances call
/// with `Hibernate`. An instance AWS refuses to hibernate is taken out — the one its answer names, or
/// else found by halving — and the rest hibernated again as one batch; those taken out are then
/// stopped normally, together in one batch, and reported with AWS's reason. Other errors go as in
/// [`ec2_batch`].
pub async fn hibernate_batch(ec2: &aws_sdk_ec2::Client, ids: Vec<String>, cutoff: Instant) -> Vec<(String, Outcome)> {
    let mut refused = Vec::new();
    let mut outcomes = batch(ec2, Direction::Stop, ids, true, cutoff, &mut refused).await;
    if refused.is_empty() {
        return outcomes;
    }
    let why: HashMap<String, String> = refused.into_iter().collect();
    let ids = why.keys().cloned().collect();
    for (id, outcome) in batch(ec2, Direction::Stop, ids, false, cutoff, &mut Vec::new()).await {
        let outcome = match outcome {
            Outcome::Done => Outcome::Fallback(format!("not hibernated ({}); stopped normally instead", why[&id])),
            other => other,
        };
        outcomes.push((id, outcome));
    }
    outcomes
}

/// Whether StopInstances refused to hibernate (not to stop): the instance isn't able to hibernate
/// (`UnsupportedHibernationConfiguration`; `UnsupportedOperation` about hibernation, as when it is
/// asked too soon after launch, before the hibernation agent is ready).
fn refuses_hibernation(error: &CallError) -> bool {
    match error.code.as_deref() {
        Some("UnsupportedHibernationConfiguration") => true,
        Some("UnsupportedOperation") => error.message.to_ascii_lowercase().contains("hibernat"),
        _ => false,
    }
}

/// [`ec2_batch`], and with `hibernate` a StopInstances with `Hibernate`, whose refusals are taken out
/// into `refused` (instance, reason) rather than reported.
async fn batch(
    ec2: &aws_sdk_ec2::Client,
    direction: Direction,
    ids: Vec<String>,
    hibernate: bool,
    cutoff: Instant,
    refused: &mut Vec<(String, String)>,
) -> Vec<(String, Outcome)> {
    if ids.is_empty() {
        return Vec::new();
    }
    let result = send(ec2, direction, &ids, hibernate, cutoff).await;
    match result {
        Ok(()) => ids.into_iter().map(|id| (id, Outcome::Done)).collect(),
        Err(e) if hibernate && refuses_hibernation(&e) => {
            // The instance its answer names (or the only one) falls back; else halve to find it.
            match ids.iter().position(|i| e.message.contains(i.as_str())).or((ids.len() == 1).then_some(0)) {
                Some(index) => {
                    let mut rest = ids;
                    refused.push((rest.remove(index), e.message));
                    Box::pin(batch(ec2, direction, rest, hibernate, cutoff, refused)).await
                }
                None => halves(ec2, direction, ids, hibernate, cutoff, refused).await,
            }
        }
        Err(e) if direction == Direction::Stop && stop_protected(&e).is_some_and(|id| ids.iter().any(|i| i == id)) => {
            let protected = stop_protected(&e).unwrap_or_default().to_owned();
            tracing::debug!(instance = %protected, "stop protection; retrying the batch without it");
            let rest = ids.into_iter().filter(|id| *id != protected).collect();
            let mut outcomes = Box::pin(batch(ec2, direction, rest, hibernate, cutoff, refused)).await;
            let why = "has stop protection (DisableApiStop); AWS won't stop it until that is turned off";
            outcomes.push((protected, Outcome::Skipped(why.into())));
            outcomes
        }
        Err(e) if e.splittable && ids.len() > 1 => {
            tracing::debug!(batch = ids.len(), error = %e.message, "batch failed; retrying by halves");
            halves(ec2, direction, ids, hibernate, cutoff, refused).await
        }
        Err(e) => {
            let outcome = outcome(e);
            ids.into_iter().map(|id| (id, outcome.clone())).collect()
        }
    }
}

/// [`batch`] for each half of `ids`.
async fn halves(
    ec2: &aws_sdk_ec2::Client,
    direction: Direction,
    mut ids: Vec<String>,
    hibernate: bool,
    cutoff: Instant,
    refused: &mut Vec<(String, String)>,
) -> Vec<(String, Outcome)> {
    let right = ids.split_off(ids.len() / 2);
    let mut outcomes = Box::pin(batch(ec2, direction, ids, hibernate, cutoff, refused)).await;
    outcomes.extend(Box::pin(batch(ec2, direction, right, hibernate, cutoff, refused)).await);
    outcomes
}

/// One StartInstances or StopInstances call for `ids`; with `hibernate`, StopInstances with `Hibernate`.
async fn send(
    ec2: &aws_sdk_ec2::Client,
    direction: Direction,
    ids: &[String],
    hibernate: bool,
    cutoff: Instant,
) -> Result<(), CallError> {
    match direction {
        Direction::Start => {
            aws_call(cutoff, "StartInstances", ec2.start_instances().set_instance_ids(Some(ids.to_vec())).send()).await
        }
        Direction::Stop => {
            let request = ec2.stop_instances().set_instance_ids(Some(ids.to_vec()));
            let request = if hibernate { request.hibernate(true) } else { request };
            aws_call(cutoff, "StopInstances", request.send()).await
        }
    }
}

pub async fn db_instance(rds: &aws_sdk_rds::Client, direction: Direction, id: &str, cutoff: Instant) -> Outcome {
    let result = match direction {
        Direction::Start => {
            aws_call(cutoff, "StartDBInstance", rds.start_db_instance().db_instance_identifier(id).send()).await
        }
        Direction::Stop => {
            aws_call(cutoff, "StopDBInstance", rds.stop_db_instance().db_instance_identifier(id).send()).await
        }
    };
    result.map_or_else(outcome, |()| Outcome::Done)
}

pub async fn db_cluster(rds: &aws_sdk_rds::Client, direction: Direction, id: &str, cutoff: Instant) -> Outcome {
    let result = match direction {
        Direction::Start => {
            aws_call(cutoff, "StartDBCluster", rds.start_db_cluster().db_cluster_identifier(id).send()).await
        }
        Direction::Stop => {
            aws_call(cutoff, "StopDBCluster", rds.stop_db_cluster().db_cluster_identifier(id).send()).await
        }
    };
    result.map_or_else(outcome, |()| Outcome::Done)
}

/// Stopping a group: its capacity is saved in a tag first (so nothing is lost if the next call
/// fails), then minimum, maximum and desired are set to 0. A group that already has a valid saved
/// capacity (a stop whose second call failed, or a group someone scaled up by hand meanwhile) keeps
/// it: only the capacity is set to 0 again. Instances protected from scale in survive capacity 0:
/// such a stop is reported as failed, with them.
pub async fn stop_group(
    asg: &aws_sdk_autoscaling::Client,
    group: &Resource,
    saved_key: &str,
    cutoff: Instant,
) -> Outcome {
    let keeps_saved = group.saved.as_deref().is_some_and(|saved| Capacity::parse(saved).is_ok());
    let capacity = group.capacity.unwrap_or(Capacity::ZERO);
    // What brings a group at 0 back: its scheduled actions, and alarms (scaling policies). Suspended by
    // the stop, recorded in the tag, and resumed by the start: those the stop suspended, no others.
    let suspend: Vec<String> = match group.saved.as_deref() {
        Some(saved) if keeps_saved => saved_suspended(saved),
        _ => GROUP_PROCESSES.iter().map(|p| p.to_string()).filter(|p| !group.suspended.contains(p)).collect(),
    };
    // An all-zero capacity is never saved: it would overwrite what an overlapping stop saved.
    if !keeps_saved && capacity != Capacity::ZERO {
        let tag = AsgTag::builder()
            .resource_id(&group.id)
            .resource_type("auto-scaling-group")
            .key(saved_key)
            .value(saved_value(&capacity, &suspend))
            .propagate_at_launch(false)
            .build();
        if let Err(e) = aws_call(cutoff, "CreateOrUpdateTags", asg.create_or_update_tags().tags(tag).send()).await {
            return outcome(e);
        }
    }
    let not_yet: Vec<String> = suspend.iter().filter(|p| !group.suspended.contains(p)).cloned().collect();
    if !not_yet.is_empty() {
        let request = asg.suspend_processes().auto_scaling_group_name(&group.id).set_scaling_processes(Some(not_yet));
        if let Err(e) = aws_call(cutoff, "SuspendProcesses", request.send()).await {
            return outcome(e);
        }
    }
    if let Err(e) = set_capacity(asg, &group.id, Capacity::ZERO, cutoff).await {
        return outcome(e);
    }
    match group.scale_in_protection() {
        Some(why) => Outcome::Failed(format!("capacity set to 0, but {why}")),
        None => Outcome::Done,
    }
}

/// The scaling processes a stop suspends: scheduled actions (which would set a capacity at their
/// time) and alarm notifications (scaling policies raising it).
pub const GROUP_PROCESSES: [&str; 2] = ["ScheduledActions", "AlarmNotification"];

/// Starting a group: the saved capacity is restored, the processes its stop suspended resumed, then
/// the tag removed. A saved capacity that does
/// not parse, is inconsistent, or is larger than `bound` (the owner's SCHEDULER_MAX_RESTORED_CAPACITY)
/// starts nothing: whoever can write the tag must not choose the size.
pub async fn start_group(
    asg: &aws_sdk_autoscaling::Client,
    group: &Resource,
    saved_key: &str,
    bound: i32,
    cutoff: Instant,
) -> Outcome {
    let saved = group.saved.as_deref().unwrap_or_default();
    let capacity = match Capacity::parse(saved).and_then(|c| c.restorable(bound)) {
        Ok(capacity) => capacity,
        Err(e) => {
            return Outcome::Failed(format!(
                "{saved_key} tag: {e}; set it to the capacity to restore, or delete it if the group is already running"
            ))
        }
    };
    if let Err(e) = set_capacity(asg, &group.id, capacity, cutoff).await {
        return outcome(e);
    }
    let resume = saved_suspended(saved);
    if !resume.is_empty() {
        let request = asg.resume_processes().auto_scaling_group_name(&group.id).set_scaling_processes(Some(resume));
        if let Err(e) = aws_call(cutoff, "ResumeProcesses", request.send()).await {
            return Outcome::Failed(format!(
                "capacity restored to {capacity}, but {}; they stay suspended until the next scheduled start (or \
                 ResumeProcesses by hand), and the tag stays",
                e.message
            ));
        }
    }
    let tag = AsgTag::builder().resource_id(&group.id).resource_type("auto-scaling-group").key(saved_key).build();
    match aws_call(cutoff, "DeleteTags", asg.delete_tags().tags(tag).send()).await {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(format!(
            "capacity restored to {capacity}, but {}; the tag stays (the next stop keeps the capacity it holds)",
            e.message
        )),
    }
}

async fn set_capacity(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
    c: Capacity,
    cutoff: Instant,
) -> Result<(), CallError> {
    let request = asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .min_size(c.min)
        .max_size(c.max)
        .desired_capacity(c.desired);
    aws_call(cutoff, "UpdateAutoScalingGroup", request.send()).await
}

/// Runs `call` on `items`; if AWS refuses it for the request's content, on each half, down to single
/// items, whose error is then theirs alone: one resource gone since the listing doesn't hold back the
/// rest. Each item with how it went.
async fn by_halves<T, F, Fut>(items: Vec<T>, call: &F) -> Vec<(T, Result<(), String>)>
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
        Err(e) => items.into_iter().map(|item| (item, Err(e.message.clone()))).collect(),
    }
}

/// Writes the tag `key` = `value` on the instances `ids`: one CreateTags call (AWS takes up to 1,000
/// ids; the caller sends as many as in a StartInstances), split by halves if refused.
pub async fn tag_instances(
    ec2: &aws_sdk_ec2::Client,
    key: &str,
    value: &str,
    ids: Vec<String>,
    cutoff: Instant,
) -> Vec<(String, Result<(), String>)> {
    let tag = aws_sdk_ec2::types::Tag::builder().key(key).value(value).build();
    let call = |ids: Vec<String>| {
        let request = ec2.create_tags().set_resources(Some(ids)).tags(tag.clone());
        aws_call(cutoff, "CreateTags", request.send())
    };
    by_halves(ids, &call).await
}

/// Writes the tag `key` on Auto Scaling groups, each `(group, value)` its own value, in one
/// CreateOrUpdateTags call, split by halves if refused. Not propagated to the groups' instances.
pub async fn tag_groups(
    asg: &aws_sdk_autoscaling::Client,
    key: &str,
    groups: Vec<(String, String)>,
    cutoff: Instant,
) -> Vec<(String, Result<(), String>)> {
    let call = |groups: Vec<(String, String)>| {
        let tags = groups.iter().map(|(group, value)| {
            AsgTag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(key)
                .value(value)
                .propagate_at_launch(false)
                .build()
        });
        let request = asg.create_or_update_tags().set_tags(Some(tags.collect()));
        aws_call(cutoff, "CreateOrUpdateTags", request.send())
    };
    let results = by_halves(groups, &call).await;
    results.into_iter().map(|((group, _), result)| (group, result)).collect()
}

/// Writes the tag `key` = `value` on the database or cluster `arn` (AddTagsToResource takes one).
pub async fn tag_database(
    rds: &aws_sdk_rds::Client,
    key: &str,
    arn: &str,
    value: &str,
    cutoff: Instant,
) -> Result<(), String> {
    let tag = aws_sdk_rds::types::Tag::builder().key(key).value(value).build();
    let request = rds.add_tags_to_resource().resource_name(arn).tags(tag);
    aws_call(cutoff, "AddTagsToResource", request.send()).await.map_err(|e| e.message)
}

/// One ECS service's marker (`ecs:TagResource` takes one ARN per call).
pub async fn tag_service(
    ecs: &aws_sdk_ecs::Client,
    key: &str,
    arn: &str,
    value: &str,
    cutoff: Instant,
) -> Result<(), String> {
    let tag = aws_sdk_ecs::types::Tag::builder().key(key).value(value).build();
    aws_call(cutoff, "TagResource", ecs.tag_resource().resource_arn(arn).tags(tag).send()).await.map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::operation::start_instances::StartInstancesOutput;
    use aws_sdk_ec2::operation::stop_instances::{StopInstancesError, StopInstancesOutput};
    use aws_smithy_mocks::{mock, MockResponse, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    /// A cutoff no test reaches.
    fn later() -> Instant {
        Instant::now() + std::time::Duration::from_secs(3600)
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i-{i:017x}")).collect()
    }

    fn failing(code: &'static str) -> StopInstancesError {
        StopInstancesError::generic(ErrorMetadata::builder().code(code).message("no").build())
    }

    /// A mock EC2 whose StopInstances fails whenever the batch contains `bad`.
    fn ec2_refusing(bad: &'static str, code: &'static str) -> (aws_sdk_ec2::Client, aws_smithy_mocks::Rule) {
        let refuse = mock!(aws_sdk_ec2::Client::stop_instances)
            .match_requests(move |r| r.instance_ids().iter().any(|id| id == bad))
            .then_error(move || failing(code));
        let accept = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
        let client = testkit::mock_ec2_with(RuleMode::MatchAny, &[&refuse, &accept]);
        (client, refuse)
    }

    #[tokio::test]
    async fn a_good_batch_is_one_call() {
        let ok = mock!(aws_sdk_ec2::Client::start_instances).then_output(|| StartInstancesOutput::builder().build());
        let ec2 = testkit::mock_ec2_with(RuleMode::MatchAny, &[&ok]);
        let out = ec2_batch(&ec2, Direction::Start, ids(100), later()).await;
        assert_eq!(out.len(), 100);
        assert!(out.iter().all(|(_, o)| *o == Outcome::Done));
        assert_eq!(ok.num_calls(), 1);
    }

    #[tokio::test]
    async fn one_bad_instance_is_isolated_by_halving_and_the_rest_stop() {
        let mut batch = ids(64);
        batch[37] = "i-bad00000000000000".into();
        let (ec2, refuse) = ec2_refusing("i-bad00000000000000", "UnsupportedOperation");
        let out = ec2_batch(&ec2, Direction::Stop, batch, later()).await;
        assert_eq!(out.len(), 64, "every instance has an outcome");
        let failed: Vec<_> = out.iter().filter(|(_, o)| matches!(o, Outcome::Failed(_))).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "i-bad00000000000000");
        assert_eq!(failed[0].1, Outcome::Failed("StopInstances failed: UnsupportedOperation: no".into()));
        // 64 → 32 → 16 → 8 → 4 → 2 → 1: one refused call per level.
        assert_eq!(refuse.num_calls(), 7);
    }

    #[tokio::test]
    async fn a_wrong_state_answer_is_a_skip_not_a_failure() {
        let (ec2, _) = ec2_refusing("i-00000000000000001", "IncorrectInstanceState");
        let out = ec2_batch(&ec2, Direction::Stop, ids(2), later()).await;
        assert_eq!(out[0].1, Outcome::Done);
        assert_eq!(out[1].1, Outcome::Skipped("StopInstances failed: IncorrectInstanceState: no".into()));
    }

    #[tokio::test]
    async fn throttling_that_outlasts_the_retries_fails_the_batch_without_splitting() {
        let sizes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&sizes);
        let throttled = mock!(aws_sdk_ec2::Client::stop_instances)
            .match_requests(move |r| {
                seen.lock().unwrap().push(r.instance_ids().len());
                true
            })
            .then_error(|| failing("RequestLimitExceeded"));
        let ec2 = testkit::mock_ec2_with(RuleMode::MatchAny, &[&throttled]);
        let out = ec2_batch(&ec2, Direction::Stop, ids(8), later()).await;
        assert!(out.iter().all(|(_, o)| matches!(o, Outcome::Failed(m) if m.contains("RequestLimitExceeded"))));
        let sizes = sizes.lock().unwrap();
        assert!(!sizes.is_empty() && sizes.iter().all(|n| *n == 8), "never split into more throttled calls: {sizes:?}");
    }

    type Calls = std::sync::Arc<std::sync::Mutex<Vec<(bool, usize)>>>;

    /// A mock EC2 whose StopInstances refuses with `code` to hibernate a batch holding one of `unable`
    /// (its message naming that instance when `named`); each StopInstances call's (hibernate, size) kept.
    fn ec2_hibernating(
        unable: &'static [&'static str],
        code: &'static str,
        named: bool,
    ) -> (aws_sdk_ec2::Client, Calls) {
        let calls = Calls::default();
        let seen = std::sync::Arc::clone(&calls);
        let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_compute_response(move |r| {
            let hibernate = r.hibernate() == Some(true);
            seen.lock().unwrap().push((hibernate, r.instance_ids().len()));
            match r.instance_ids().iter().find(|id| unable.contains(&id.as_str())) {
                Some(id) if hibernate => {
                    let message = if named {
                        format!("Instance {id} is not ready to hibernate yet, please try again later.")
                    } else {
                        "The instance configuration does not support hibernation.".to_owned()
                    };
                    let meta = ErrorMetadata::builder().code(code).message(message).build();
                    MockResponse::Error(StopInstancesError::generic(meta))
                }
                _ => MockResponse::Output(StopInstancesOutput::builder().build()),
            }
        });
        (testkit::mock_ec2_with(RuleMode::MatchAny, &[&stop]), calls)
    }

    fn fallbacks(out: &[(String, Outcome)]) -> Vec<(&str, &str)> {
        let mut found: Vec<_> = out
            .iter()
            .filter_map(|(id, o)| match o {
                Outcome::Fallback(why) => Some((id.as_str(), why.as_str())),
                _ => None,
            })
            .collect();
        found.sort();
        found
    }

    #[tokio::test]
    async fn instances_refused_hibernation_by_name_are_taken_out_and_stopped_together_normally() {
        let unable = &["i-00000000000000002", "i-00000000000000005"];
        let (ec2, calls) = ec2_hibernating(unable, "UnsupportedHibernationConfiguration", true);
        let out = hibernate_batch(&ec2, ids(8), later()).await;
        assert_eq!(out.len(), 8, "every instance has an outcome");
        assert_eq!(out.iter().filter(|(_, o)| *o == Outcome::Done).count(), 6, "{out:?}");
        let fell_back = fallbacks(&out);
        assert_eq!(fell_back.iter().map(|(id, _)| *id).collect::<Vec<_>>(), unable);
        assert!(
            fell_back[0].1.starts_with("not hibernated (StopInstances failed: UnsupportedHibernationConfiguration: ")
                && fell_back[0].1.ends_with("); stopped normally instead"),
            "{fell_back:?}"
        );
        // The hibernate batch is sent again whole without each refused instance; the two go in one stop.
        assert_eq!(*calls.lock().unwrap(), [(true, 8), (true, 7), (true, 6), (false, 2)]);
    }

    #[tokio::test]
    async fn a_hibernation_refusal_that_names_no_instance_is_found_by_halving() {
        let (ec2, calls) = ec2_hibernating(&["i-00000000000000005"], "UnsupportedOperation", false);
        let out = hibernate_batch(&ec2, ids(8), later()).await;
        assert_eq!(out.iter().filter(|(_, o)| *o == Outcome::Done).count(), 7, "{out:?}");
        let fell_back = fallbacks(&out);
        assert_eq!(fell_back.len(), 1);
        assert_eq!(fell_back[0].0, "i-00000000000000005");
        assert!(fell_back[0].1.contains("UnsupportedOperation"), "{fell_back:?}");
        // 8 → 0..4 (good) + 4..8 → 4..6 → 4 (good) + 5 (refused), and 6..8 (good); then the normal stop.
        let calls = calls.lock().unwrap();
        assert_eq!(*calls, [(true, 8), (true, 4), (true, 4), (true, 2), (true, 1), (true, 1), (true, 2), (false, 1)]);
    }

    #[tokio::test]
    async fn an_error_that_is_not_about_hibernation_is_no_fallback() {
        let (ec2, calls) = ec2_hibernating(&["i-00000000000000001"], "IncorrectInstanceState", true);
        let out = hibernate_batch(&ec2, ids(2), later()).await;
        assert!(fallbacks(&out).is_empty(), "{out:?}");
        assert!(matches!(&out[1].1, Outcome::Skipped(m) if m.contains("IncorrectInstanceState")), "{out:?}");
        assert!(calls.lock().unwrap().iter().all(|(hibernate, _)| *hibernate), "never stopped without hibernation");
    }

    // A run over instances that ask for hibernation: those able to go in a hibernate batch of their own,
    // the one not launched with it enabled in the normal batch, reported in notes.
    #[tokio::test]
    async fn a_stop_hibernates_the_tagged_instances_that_can_and_notes_the_others() {
        use crate::request::Action;
        use crate::testing::{self, Rules, HIBERNATE, KEY};
        use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
        use aws_sdk_ec2::types::{
            DeviceType, HibernationOptions, Instance, InstanceState, InstanceStateName, Reservation, Tag,
        };
        let instance = |id: &str, hibernate: Option<&str>, configured: bool| {
            let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
            let mut instance = Instance::builder()
                .instance_id(id)
                .state(InstanceState::builder().name(InstanceStateName::Running).build())
                .root_device_type(DeviceType::Ebs)
                .hibernation_options(HibernationOptions::builder().configured(configured).build())
                .tags(tag(KEY, "office"));
            if let Some(value) = hibernate {
                instance = instance.tags(tag(HIBERNATE, value));
            }
            instance.build()
        };
        // Issue 20 item 12: a Spot Instance, though tagged and configured, is stopped normally and noted.
        let mut spot = instance("i-spot", Some("true"), true);
        spot.instance_lifecycle = Some(aws_sdk_ec2::types::InstanceLifecycleType::Spot);
        spot.spot_instance_request_id = Some("sir-persistent".into());
        let instances = vec![
            instance("i-sleeps", Some("true"), true),
            instance("i-also", Some(" TRUE "), true),
            instance("i-unable", Some("true"), false),
            instance("i-plain", None, true),
            instance("i-no", Some("false"), true),
            spot,
        ];
        let requests = mock!(aws_sdk_ec2::Client::describe_spot_instance_requests).then_output(|| {
            use aws_sdk_ec2::operation::describe_spot_instance_requests::DescribeSpotInstanceRequestsOutput;
            use aws_sdk_ec2::types::{SpotInstanceRequest, SpotInstanceType};
            let request = SpotInstanceRequest::builder()
                .spot_instance_request_id("sir-persistent")
                .r#type(SpotInstanceType::Persistent)
                .build();
            DescribeSpotInstanceRequestsOutput::builder().spot_instance_requests(request).build()
        });
        let listing = mock!(aws_sdk_ec2::Client::describe_instances).then_output(move || {
            let reservation = Reservation::builder().set_instances(Some(instances.clone())).build();
            DescribeInstancesOutput::builder().reservations(reservation).build()
        });
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&sent);
        let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_compute_output(move |r| {
            let mut ids = r.instance_ids().to_vec();
            ids.sort();
            seen.lock().unwrap().push((r.hibernate() == Some(true), ids));
            StopInstancesOutput::builder().build()
        });
        let clients = testing::clients(Rules { ec2: vec![&listing, &requests, &stop], ..Default::default() });
        let cutoff = later();
        let summary = crate::scheduler::run(
            &clients,
            &testing::no_definitions(),
            &testing::settings(),
            &testing::request(Action::Stop),
            cutoff,
        )
        .await
        .expect("a summary");
        assert_eq!(summary.stopped.len(), 6, "{summary:?}");
        let mut notes: Vec<_> = summary.notes.iter().map(|n| (n.resource.as_str(), n.note.as_str())).collect();
        notes.sort();
        assert_eq!(notes.len(), 2, "{summary:?}");
        assert_eq!(notes[0].0, "ec2-instance/i-spot");
        assert!(notes[0].1.starts_with("not hibernated: a Spot Instance"), "{summary:?}");
        assert_eq!(notes[1].0, "ec2-instance/i-unable");
        assert!(notes[1].1.contains("HibernationOptions.Configured"), "{summary:?}");
        let mut sent = sent.lock().unwrap().clone();
        sent.sort();
        let strings = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            sent,
            [(false, strings(&["i-no", "i-plain", "i-spot", "i-unable"])), (true, strings(&["i-also", "i-sleeps"]))]
        );
    }
}
