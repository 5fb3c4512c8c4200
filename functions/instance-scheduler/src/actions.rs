//! Starting and stopping. EC2 instances go in batches — one StartInstances/StopInstances call per batch,
//! a batch that fails retried by halves so that one bad instance doesn't hold back the rest. RDS and
//! Auto Scaling have no batch calls: one call per resource, run with bounded concurrency by the caller.
//! "Already in that state" answers are reported as skipped, not failed. Throttling is retried by the SDK.

use aws_sdk_autoscaling::types::Tag as AsgTag;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use stackhand::aws::{describe_error, error_code};

use crate::inventory::{Capacity, Resource};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Skipped(String),
    Failed(String),
}

const THROTTLING: [&str; 4] = ["RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"];

/// Error codes meaning "it is not in a state for that" — for one resource, not a failure of the run.
const WRONG_STATE: [&str; 4] =
    ["IncorrectInstanceState", "InvalidDBInstanceState", "InvalidDBInstanceStateFault", "InvalidDBClusterStateFault"];

struct CallError {
    message: String,
    code: Option<String>,
    /// A service's answer about the request's content (not throttling, not the network): splitting
    /// the batch may get the rest through.
    splittable: bool,
}

fn call_error<E, R>(operation: &str, err: &SdkError<E, R>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = error_code(err).map(str::to_owned);
    let splittable =
        matches!(err, SdkError::ServiceError(_)) && !code.as_deref().is_some_and(|c| THROTTLING.contains(&c));
    CallError { message: describe_error(operation, err), code, splittable }
}

fn outcome(error: CallError) -> Outcome {
    if error.code.as_deref().is_some_and(|c| WRONG_STATE.contains(&c)) {
        Outcome::Skipped(error.message)
    } else {
        Outcome::Failed(error.message)
    }
}

/// Starts or stops `ids` in one call; if that fails for the content of the request, each half is
/// tried on its own, down to single instances, whose error is then theirs alone.
pub async fn ec2_batch(ec2: &aws_sdk_ec2::Client, start: bool, ids: Vec<String>) -> Vec<(String, Outcome)> {
    if ids.is_empty() {
        return Vec::new();
    }
    let result = if start {
        let out = ec2.start_instances().set_instance_ids(Some(ids.clone())).send().await;
        out.map(drop).map_err(|e| call_error("StartInstances", &e))
    } else {
        let out = ec2.stop_instances().set_instance_ids(Some(ids.clone())).send().await;
        out.map(drop).map_err(|e| call_error("StopInstances", &e))
    };
    match result {
        Ok(()) => ids.into_iter().map(|id| (id, Outcome::Done)).collect(),
        Err(e) if e.splittable && ids.len() > 1 => {
            tracing::debug!(batch = ids.len(), error = %e.message, "batch failed; retrying by halves");
            let mut left = ids;
            let right = left.split_off(left.len() / 2);
            let mut outcomes = Box::pin(ec2_batch(ec2, start, left)).await;
            outcomes.extend(Box::pin(ec2_batch(ec2, start, right)).await);
            outcomes
        }
        Err(e) => {
            let outcome = outcome(e);
            ids.into_iter().map(|id| (id, outcome.clone())).collect()
        }
    }
}

pub async fn db_instance(rds: &aws_sdk_rds::Client, start: bool, id: &str) -> Outcome {
    let result = if start {
        rds.start_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| call_error("StartDBInstance", &e))
    } else {
        rds.stop_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| call_error("StopDBInstance", &e))
    };
    result.map_or_else(outcome, |()| Outcome::Done)
}

pub async fn db_cluster(rds: &aws_sdk_rds::Client, start: bool, id: &str) -> Outcome {
    let result = if start {
        rds.start_db_cluster()
            .db_cluster_identifier(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| call_error("StartDBCluster", &e))
    } else {
        rds.stop_db_cluster()
            .db_cluster_identifier(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| call_error("StopDBCluster", &e))
    };
    result.map_or_else(outcome, |()| Outcome::Done)
}

/// Stopping a group: its capacity is saved in a tag first (so nothing is lost if the next call
/// fails), then minimum, maximum and desired are set to 0.
pub async fn stop_group(asg: &aws_sdk_autoscaling::Client, group: &Resource, saved_key: &str) -> Outcome {
    let capacity = group.capacity.unwrap_or(Capacity::ZERO);
    let tag = AsgTag::builder()
        .resource_id(&group.id)
        .resource_type("auto-scaling-group")
        .key(saved_key)
        .value(capacity.to_string())
        .propagate_at_launch(false)
        .build();
    if let Err(e) = asg.create_or_update_tags().tags(tag).send().await {
        return outcome(call_error("CreateOrUpdateTags", &e));
    }
    set_capacity(asg, &group.id, Capacity::ZERO).await.map_or_else(outcome, |()| Outcome::Done)
}

/// Starting a group: the saved capacity is restored, then the tag removed.
pub async fn start_group(asg: &aws_sdk_autoscaling::Client, group: &Resource, saved_key: &str) -> Outcome {
    let saved = group.saved.as_deref().unwrap_or_default();
    let capacity = match Capacity::parse(saved) {
        Ok(capacity) => capacity,
        Err(e) => {
            return Outcome::Failed(format!(
                "{saved_key} tag: {e}; set it to the capacity to restore, or delete it if the group is already running"
            ))
        }
    };
    if let Err(e) = set_capacity(asg, &group.id, capacity).await {
        return outcome(e);
    }
    let tag = AsgTag::builder().resource_id(&group.id).resource_type("auto-scaling-group").key(saved_key).build();
    match asg.delete_tags().tags(tag).send().await {
        Ok(_) => Outcome::Done,
        Err(e) => Outcome::Failed(format!(
            "capacity restored to {capacity}, but {}; the next run will see the group as stopped",
            describe_error("DeleteTags", &e)
        )),
    }
}

async fn set_capacity(asg: &aws_sdk_autoscaling::Client, group: &str, c: Capacity) -> Result<(), CallError> {
    asg.update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .min_size(c.min)
        .max_size(c.max)
        .desired_capacity(c.desired)
        .send()
        .await
        .map(drop)
        .map_err(|e| call_error("UpdateAutoScalingGroup", &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::operation::start_instances::StartInstancesOutput;
    use aws_sdk_ec2::operation::stop_instances::{StopInstancesError, StopInstancesOutput};
    use aws_smithy_mocks::{mock, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

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
        let out = ec2_batch(&ec2, true, ids(100)).await;
        assert_eq!(out.len(), 100);
        assert!(out.iter().all(|(_, o)| *o == Outcome::Done));
        assert_eq!(ok.num_calls(), 1);
    }

    #[tokio::test]
    async fn one_bad_instance_is_isolated_by_halving_and_the_rest_stop() {
        let mut batch = ids(64);
        batch[37] = "i-bad00000000000000".into();
        let (ec2, refuse) = ec2_refusing("i-bad00000000000000", "UnsupportedOperation");
        let out = ec2_batch(&ec2, false, batch).await;
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
        let out = ec2_batch(&ec2, false, ids(2)).await;
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
        let out = ec2_batch(&ec2, false, ids(8)).await;
        assert!(out.iter().all(|(_, o)| matches!(o, Outcome::Failed(m) if m.contains("RequestLimitExceeded"))));
        let sizes = sizes.lock().unwrap();
        assert!(!sizes.is_empty() && sizes.iter().all(|n| *n == 8), "never split into more throttled calls: {sizes:?}");
    }
}
