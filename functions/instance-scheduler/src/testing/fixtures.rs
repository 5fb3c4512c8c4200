//! What the mocked runs share: listings, answers, and reading the summary.

use crate::request::Action;
use crate::testing::{self, KEY, SAVED};
use aws_sdk_autoscaling::operation::create_or_update_tags::CreateOrUpdateTagsOutput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::operation::update_auto_scaling_group::UpdateAutoScalingGroupOutput;
use aws_sdk_autoscaling::types::{AutoScalingGroup, TagDescription};
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::types::{DeviceType, Instance, InstanceState, InstanceStateName, Reservation, Tag};
use aws_smithy_mocks::{mock, Rule};
use tokio::time::{Duration, Instant};

use crate::clients::Clients;
use crate::run::run;
use crate::summary::Summary;

pub fn later() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

pub fn instance(id: &str, state: InstanceStateName) -> aws_sdk_ec2::types::builders::InstanceBuilder {
    Instance::builder()
        .instance_id(id)
        .state(InstanceState::builder().name(state).build())
        .root_device_type(DeviceType::Ebs)
        .tags(Tag::builder().key(KEY).value("office").build())
}

pub fn ec2_listing(instances: Vec<Instance>) -> Rule {
    mock!(aws_sdk_ec2::Client::describe_instances).then_output(move || {
        let reservation = Reservation::builder().set_instances(Some(instances.clone())).build();
        DescribeInstancesOutput::builder().reservations(reservation).build()
    })
}

pub fn group(name: &str, (min, max, desired): (i32, i32, i32), saved: Option<&str>) -> AutoScalingGroup {
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

pub fn groups_listing(groups: Vec<AutoScalingGroup>) -> Rule {
    mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(move || {
        DescribeAutoScalingGroupsOutput::builder().set_auto_scaling_groups(Some(groups.clone())).build()
    })
}

/// UpdateAutoScalingGroup to 0/0/0, answered.
pub fn zeroing() -> Rule {
    mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
        .match_requests(|r| (r.min_size(), r.max_size(), r.desired_capacity()) == (Some(0), Some(0), Some(0)))
        .then_output(|| UpdateAutoScalingGroupOutput::builder().build())
}

pub fn tagging() -> Rule {
    mock!(aws_sdk_autoscaling::Client::create_or_update_tags)
        .then_output(|| CreateOrUpdateTagsOutput::builder().build())
}

pub fn suspending() -> Rule {
    mock!(aws_sdk_autoscaling::Client::suspend_processes)
        .match_requests(|r| r.scaling_processes() == ["ScheduledActions", "AlarmNotification"])
        .then_output(|| aws_sdk_autoscaling::operation::suspend_processes::SuspendProcessesOutput::builder().build())
}

pub async fn run_with(clients: &Clients, action: Action) -> Summary {
    let definer = testing::no_definitions();
    run(clients, &definer, &testing::settings(), &testing::request(action), later()).await.expect("a summary")
}

pub fn reasons(summary: &Summary) -> Vec<(String, String)> {
    let skipped = summary.skipped.iter().map(|s| (s.resource.clone(), s.reason.clone()));
    let failed = summary.failed.iter().map(|f| (f.resource.clone(), f.error.clone()));
    skipped.chain(failed).collect()
}

pub fn reason<'a>(summary: &'a Summary, resource: &str) -> &'a str {
    let skipped = summary.skipped.iter().find(|s| s.resource == resource).map(|s| s.reason.as_str());
    let failed = summary.failed.iter().find(|f| f.resource == resource).map(|f| f.error.as_str());
    skipped.or(failed).unwrap_or_else(|| panic!("{resource} in {summary:?}"))
}
