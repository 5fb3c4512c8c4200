//! Auto Scaling groups against mocked answers: what moto can't give (a failed UpdateAutoScalingGroup,
//! instances protected from scale in).

use crate::request::Action;
use crate::testing::{self, error_meta, Rules};
use aws_sdk_autoscaling::operation::update_auto_scaling_group::UpdateAutoScalingGroupError;
use aws_sdk_autoscaling::types::{Instance as GroupInstance, LifecycleState, TagDescription};
use aws_smithy_mocks::mock;

use crate::testing::fixtures::*;

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
        &testing::clients(Rules { autoscaling: vec![&listing, &tags, &suspend, &contention], ..Default::default() }),
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
    let clients = testing::clients(Rules { autoscaling: vec![&listing, &tags, &suspend, &zero], ..Default::default() });
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

// Issue 21 item 3: an EKS managed node group's own Auto Scaling group is never scheduled by itself.
#[tokio::test]
async fn a_node_groups_own_auto_scaling_group_is_left_to_its_node_group() {
    let mut eks = group("eks-web-0123", (1, 3, 2), None);
    eks.tags
        .get_or_insert_with(Vec::new)
        .push(TagDescription::builder().key("eks:nodegroup-name").value("web").build());
    let listing = groups_listing(vec![eks]);
    let zero = zeroing();
    let clients = testing::clients(Rules { autoscaling: vec![&listing, &zero], ..Default::default() });
    let summary = run_with(&clients, Action::Stop).await;
    assert!(summary.stopped.is_empty(), "{summary:?}");
    let why = reason(&summary, "autoscaling-group/eks-web-0123");
    assert!(why.starts_with("belongs to EKS managed node group web"), "{why}");
    assert_eq!(zero.num_calls(), 0);
}

#[test]
fn a_group_counts_as_its_desired_capacity_a_stopped_one_as_what_it_saved() {
    use super::{units, Capacity};
    use aws_sdk_autoscaling::types::AutoScalingGroup;
    let with = |types: &[&str]| {
        let instances = types.iter().map(|t| GroupInstance::builder().instance_id("i-1").instance_type(*t).build());
        AutoScalingGroup::builder().auto_scaling_group_name("web").set_instances(Some(instances.collect())).build()
    };
    let running = Capacity { min: 1, max: 3, desired: 2 };
    let unit = units(&with(&["t3.small", "t3.small"]), running, None);
    assert_eq!((unit.type_name.as_str(), unit.count), ("t3.small", 2));
    assert_eq!(units(&with(&["t3.small", "m5.large"]), running, None).type_name, "unknown", "two types");
    let unit = units(&with(&[]), Capacity::ZERO, Some("min=1 max=3 desired=2"));
    assert_eq!((unit.type_name.as_str(), unit.count), ("unknown", 2), "stopped, it counts what a start brings back");
    assert_eq!(units(&with(&[]), Capacity::ZERO, None).count, 0);
}
