//! Alarms muted while stopped, against mocked CloudWatch: moto does not speak CloudWatch's CBOR
//! protocol, which the SDK uses.

use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::operation::disable_alarm_actions::DisableAlarmActionsOutput;
use aws_sdk_cloudwatch::operation::enable_alarm_actions::{EnableAlarmActionsError, EnableAlarmActionsOutput};
use aws_sdk_cloudwatch::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_cloudwatch::operation::tag_resource::TagResourceOutput;
use aws_sdk_cloudwatch::operation::untag_resource::UntagResourceOutput;
use aws_sdk_cloudwatch::types::{Dimension, MetricAlarm, Tag as AlarmTag};
use aws_sdk_ec2::operation::start_instances::StartInstancesOutput;
use aws_sdk_ec2::operation::stop_instances::StopInstancesOutput;
use aws_sdk_ec2::types::{InstanceStateName, Tag};
use aws_smithy_mocks::{mock, Rule};

use super::MUTED_TAG;
use crate::request::Action;
use crate::testing::fixtures::{ec2_listing, instance, run_with};
use crate::testing::{self, error_meta, Rules};

fn alarm(name: &str, instance: &str, enabled: bool) -> MetricAlarm {
    MetricAlarm::builder()
        .alarm_name(name)
        .alarm_arn(format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"))
        .actions_enabled(enabled)
        .dimensions(Dimension::builder().name("InstanceId").value(instance).build())
        .build()
}

fn describing(alarms: Vec<MetricAlarm>) -> Rule {
    mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .then_output(move || DescribeAlarmsOutput::builder().set_metric_alarms(Some(alarms.clone())).build())
}

/// An instance in `state` that opts in to muting when `muted`.
fn listing(state: InstanceStateName, muted: bool) -> Rule {
    let mut i = instance("i-1", state);
    if muted {
        i = i.tags(Tag::builder().key("ScheduleMuteAlarms").value("true").build());
    }
    ec2_listing(vec![i.build()])
}

#[tokio::test]
async fn a_stop_tags_then_mutes_only_the_enabled_alarms_on_the_instance_and_says_so() {
    let list = listing(InstanceStateName::Running, true);
    let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
    let alarms = describing(vec![
        alarm("cpu-i-1", "i-1", true),
        alarm("disk-i-1", "i-1", false), // disabled by someone: not ours to touch
        alarm("cpu-i-2", "i-2", true),
    ]);
    let tag = mock!(aws_sdk_cloudwatch::Client::tag_resource)
        .match_requests(|r| {
            r.resource_arn() == Some("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:cpu-i-1")
                && r.tags().iter().any(|t| t.key() == Some(MUTED_TAG) && t.value() == Some("ec2-instance/i-1"))
        })
        .then_output(|| TagResourceOutput::builder().build());
    let disable = mock!(aws_sdk_cloudwatch::Client::disable_alarm_actions)
        .match_requests(|r| r.alarm_names() == ["cpu-i-1"])
        .then_output(|| DisableAlarmActionsOutput::builder().build());
    let clients = testing::clients(Rules {
        ec2: vec![&list, &stop],
        cloudwatch: vec![&alarms, &tag, &disable],
        ..Default::default()
    });
    let summary = run_with(&clients, Action::Stop).await;
    assert_eq!(summary.stopped, ["ec2-instance/i-1"], "{summary:?}");
    assert_eq!((alarms.num_calls(), tag.num_calls(), disable.num_calls()), (1, 1, 1));
    let note = summary.notes.iter().find(|n| n.resource == "ec2-instance/i-1").expect("a note");
    assert_eq!(note.note, "muted while stopped (DisableAlarmActions): cpu-i-1");
}

#[tokio::test]
async fn a_start_enables_only_the_alarms_it_muted_never_one_someone_else_disabled() {
    let list = listing(InstanceStateName::Stopped, true);
    let start = mock!(aws_sdk_ec2::Client::start_instances).then_output(|| StartInstancesOutput::builder().build());
    let alarms = describing(vec![alarm("cpu-i-1", "i-1", false), alarm("disk-i-1", "i-1", false)]);
    let tags = mock!(aws_sdk_cloudwatch::Client::list_tags_for_resource).then_compute_output(|r| {
        let out = ListTagsForResourceOutput::builder();
        if r.resource_arn().is_some_and(|a| a.ends_with(":cpu-i-1")) {
            return out.tags(AlarmTag::builder().key(MUTED_TAG).value("ec2-instance/i-1").build()).build();
        }
        out.build()
    });
    let enable = mock!(aws_sdk_cloudwatch::Client::enable_alarm_actions)
        .match_requests(|r| r.alarm_names() == ["cpu-i-1"])
        .then_output(|| EnableAlarmActionsOutput::builder().build());
    let untag = mock!(aws_sdk_cloudwatch::Client::untag_resource)
        .match_requests(|r| r.tag_keys() == [MUTED_TAG] && r.resource_arn().is_some_and(|a| a.ends_with(":cpu-i-1")))
        .then_output(|| UntagResourceOutput::builder().build());
    let clients = testing::clients(Rules {
        ec2: vec![&list, &start],
        cloudwatch: vec![&alarms, &tags, &enable, &untag],
        ..Default::default()
    });
    let summary = run_with(&clients, Action::Start).await;
    assert_eq!(summary.started, ["ec2-instance/i-1"], "{summary:?}");
    assert_eq!((tags.num_calls(), enable.num_calls(), untag.num_calls()), (2, 1, 1));
    assert!(summary.failed.is_empty(), "{summary:?}");
}

#[tokio::test]
async fn alarms_left_muted_after_a_start_are_a_failure_naming_them() {
    let list = listing(InstanceStateName::Stopped, true);
    let start = mock!(aws_sdk_ec2::Client::start_instances).then_output(|| StartInstancesOutput::builder().build());
    let alarms = describing(vec![alarm("cpu-i-1", "i-1", false)]);
    let tags = mock!(aws_sdk_cloudwatch::Client::list_tags_for_resource).then_output(|| {
        ListTagsForResourceOutput::builder()
            .tags(AlarmTag::builder().key(MUTED_TAG).value("ec2-instance/i-1").build())
            .build()
    });
    let refused = mock!(aws_sdk_cloudwatch::Client::enable_alarm_actions)
        .then_error(|| EnableAlarmActionsError::generic(error_meta("AccessDenied", "not authorized")));
    let clients = testing::clients(Rules {
        ec2: vec![&list, &start],
        cloudwatch: vec![&alarms, &tags, &refused],
        ..Default::default()
    });
    let summary = run_with(&clients, Action::Start).await;
    assert_eq!(summary.started, ["ec2-instance/i-1"], "the start stands: {summary:?}");
    let failed = summary.failed.iter().find(|f| f.resource == "ec2-instance/i-1").expect("a failure");
    assert!(
        failed.error.starts_with("started, but cpu-i-1 muted while it was stopped could not be enabled"),
        "{failed:?}"
    );
    assert!(failed.error.contains("AccessDenied"), "{failed:?}");
}

#[tokio::test]
async fn without_the_tag_or_the_setting_no_alarm_is_read() {
    let list = listing(InstanceStateName::Running, false);
    let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
    let alarms = describing(vec![alarm("cpu-i-1", "i-1", true)]);
    let clients = testing::clients(Rules { ec2: vec![&list, &stop], cloudwatch: vec![&alarms], ..Default::default() });
    let summary = run_with(&clients, Action::Stop).await;
    assert_eq!(summary.stopped, ["ec2-instance/i-1"], "{summary:?}");
    assert_eq!(alarms.num_calls(), 0, "DescribeAlarms only when something opted in was moved");
    assert!(summary.notes.is_empty(), "{summary:?}");
}
