//! CloudWatch alarms muted while their resource is stopped (opt-in: the resource's
//! `ScheduleMuteAlarms` tag = `true`, or `SCHEDULER_MUTE_ALARMS=true` for all). After a stop, the
//! metric alarms on the resource's own dimensions (each kind says which: `InstanceId`,
//! `DBInstanceIdentifier`, `ClusterName`+`ServiceName`, …) whose actions are enabled are first tagged
//! `stackhand:muted-by-schedule` = the resource's name, then their actions disabled; after a start,
//! those disabled and carrying that tag for this resource are enabled again and the tag removed. So a
//! start never enables an alarm someone else disabled. DescribeAlarms is read once per run and target,
//! only when an opted-in resource was moved.

use std::collections::HashMap;

use aws_sdk_cloudwatch::types::{AlarmType, MetricAlarm, Tag};
use stackhand::aws::AwsResultExt as _;

use crate::call::{aws_call, aws_output, CallError, Outcome};
use crate::direction::Direction;
use crate::kinds::{Act, Resource};
use crate::summary::{Failed, Note};

/// The tag on an alarm the scheduler muted: the resource (its name in the summary) it muted it for.
pub const MUTED_TAG: &str = "stackhand:muted-by-schedule";

/// Alarm names per DisableAlarmActions/EnableAlarmActions call (the API's limit).
const NAMES_PER_CALL: usize = 100;

/// What muting and unmuting reported: notes (what was muted, or a mute that failed: only noise) and
/// failures (an alarm left muted after a start: monitoring off).
#[derive(Debug, Default)]
pub struct Muted {
    pub notes: Vec<Note>,
    pub failed: Vec<Failed>,
}

/// Mutes the alarms of the opted-in resources this run stopped, and unmutes those of the ones it
/// started. `done` is what the run's jobs did (resource name, direction, outcome).
pub async fn apply(act: Act<'_>, resources: &[Resource], done: &[(String, Direction, Outcome)]) -> Muted {
    let by_name: HashMap<String, &Resource> = resources.iter().map(|r| (r.name(), r)).collect();
    let all = act.settings.mute_alarms;
    let moved: Vec<(&Resource, Direction)> = done
        .iter()
        .filter(|(_, _, outcome)| outcome.applied() || matches!(outcome, Outcome::Fallback(_)))
        .filter_map(|(name, direction, _)| by_name.get(name).map(|r| (*r, *direction)))
        .filter(|(r, _)| (all || r.mute_alarms) && !r.kind.alarm_dimensions(r).is_empty())
        .collect();
    let mut muted = Muted::default();
    if moved.is_empty() {
        return muted;
    }
    let alarms = match alarms(act).await {
        Ok(alarms) => alarms,
        Err(e) => {
            for (resource, direction) in moved {
                report(&mut muted, resource, direction, &[], &e);
            }
            return muted;
        }
    };
    for (resource, direction) in moved {
        let dimensions = resource.kind.alarm_dimensions(resource);
        let mine: Vec<&MetricAlarm> = alarms.iter().filter(|a| on(a, &dimensions)).collect();
        let result = match direction {
            Direction::Stop => mute(act, resource, &mine).await,
            Direction::Start => unmute(act, resource, &mine).await,
        };
        match result {
            Ok(names) if names.is_empty() => {}
            Ok(names) => muted.notes.push(Note {
                resource: resource.name(),
                note: match direction {
                    Direction::Stop => format!("muted while stopped (DisableAlarmActions): {}", names.join(", ")),
                    Direction::Start => format!("alarms muted while stopped enabled again: {}", names.join(", ")),
                },
            }),
            Err((names, e)) => report(&mut muted, resource, direction, &names, &e),
        }
    }
    muted
}

fn report(muted: &mut Muted, resource: &Resource, direction: Direction, names: &[String], e: &CallError) {
    let which = if names.is_empty() { "its alarms".to_owned() } else { names.join(", ") };
    match direction {
        Direction::Stop => muted.notes.push(Note {
            resource: resource.name(),
            note: format!("stopped, but {which} could not be muted ({e}): they may fire while it is stopped"),
        }),
        Direction::Start => muted.failed.push(Failed {
            resource: resource.name(),
            error: format!(
                "started, but {which} muted while it was stopped could not be enabled again ({e}): enable them \
                 (EnableAlarmActions) and remove their {MUTED_TAG} tag, or the next run tries again"
            ),
        }),
    }
}

/// Every metric alarm of the target, paginated.
async fn alarms(act: Act<'_>) -> Result<Vec<MetricAlarm>, CallError> {
    let mut pages = act
        .clients
        .cloudwatch
        .describe_alarms()
        .alarm_types(AlarmType::MetricAlarm)
        .max_records(100)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        found.extend(page.op("DescribeAlarms").map_err(CallError::from)?.metric_alarms().iter().cloned());
    }
    Ok(found)
}

/// Whether `alarm` watches a metric with every one of `dimensions` (its own metric, or one of its
/// metric-math queries').
fn on(alarm: &MetricAlarm, dimensions: &[(&str, String)]) -> bool {
    let has = |dims: &[aws_sdk_cloudwatch::types::Dimension]| {
        dimensions.iter().all(|(name, value)| dims.iter().any(|d| d.name() == Some(name) && d.value() == Some(value)))
    };
    has(alarm.dimensions())
        || alarm.metrics().iter().filter_map(|q| q.metric_stat().and_then(|s| s.metric())).any(|m| has(m.dimensions()))
}

/// Tags, then disables, the resource's alarms whose actions are enabled: a tag written and a disable
/// refused leaves an enabled alarm that a start "enables" again, harmless; the other order could
/// leave an alarm disabled that no start would know of.
async fn mute(
    act: Act<'_>,
    resource: &Resource,
    alarms: &[&MetricAlarm],
) -> Result<Vec<String>, (Vec<String>, CallError)> {
    let enabled: Vec<&MetricAlarm> = alarms.iter().copied().filter(|a| a.actions_enabled() != Some(false)).collect();
    let names: Vec<String> = enabled.iter().filter_map(|a| a.alarm_name().map(Into::into)).collect();
    for alarm in &enabled {
        let Some(arn) = alarm.alarm_arn() else { continue };
        let tag = Tag::builder().key(MUTED_TAG).value(resource.name()).build();
        let request = act.clients.cloudwatch.tag_resource().resource_arn(arn).tags(tag);
        aws_call(act.cutoff, "TagResource", request.send()).await.map_err(|e| (names.clone(), e))?;
    }
    for chunk in names.chunks(NAMES_PER_CALL) {
        let request = act.clients.cloudwatch.disable_alarm_actions().set_alarm_names(Some(chunk.to_vec()));
        aws_call(act.cutoff, "DisableAlarmActions", request.send()).await.map_err(|e| (names.clone(), e))?;
    }
    Ok(names)
}

/// Enables the resource's alarms that are disabled and carry the mute tag for it, then removes the tag.
async fn unmute(
    act: Act<'_>,
    resource: &Resource,
    alarms: &[&MetricAlarm],
) -> Result<Vec<String>, (Vec<String>, CallError)> {
    let name = resource.name();
    let mut ours = Vec::new();
    for alarm in alarms.iter().filter(|a| a.actions_enabled() == Some(false)) {
        let (Some(arn), Some(alarm_name)) = (alarm.alarm_arn(), alarm.alarm_name()) else { continue };
        let request = act.clients.cloudwatch.list_tags_for_resource().resource_arn(arn);
        let tags = aws_output(act.cutoff, "ListTagsForResource", request.send()).await.map_err(|e| (Vec::new(), e))?;
        if tags.tags().iter().any(|t| t.key() == Some(MUTED_TAG) && t.value() == Some(name.as_str())) {
            ours.push((alarm_name.to_owned(), arn.to_owned()));
        }
    }
    let names: Vec<String> = ours.iter().map(|(n, _)| n.clone()).collect();
    for chunk in names.chunks(NAMES_PER_CALL) {
        let request = act.clients.cloudwatch.enable_alarm_actions().set_alarm_names(Some(chunk.to_vec()));
        aws_call(act.cutoff, "EnableAlarmActions", request.send()).await.map_err(|e| (names.clone(), e))?;
    }
    for (_, arn) in &ours {
        let request = act.clients.cloudwatch.untag_resource().resource_arn(arn).tag_keys(MUTED_TAG);
        aws_call(act.cutoff, "UntagResource", request.send()).await.map_err(|e| (names.clone(), e))?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests;
