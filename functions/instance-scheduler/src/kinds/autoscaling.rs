//! Auto Scaling groups carrying the schedule tag: a stop saves the capacity in the saved-capacity tag,
//! suspends what would bring the group back (scheduled actions, alarm notifications) and sets min, max
//! and desired to 0; a start restores the capacity, resumes exactly what its stop suspended and removes
//! the tag. Listed with DescribeAutoScalingGroups (filtered on the tag key, 100 a page); marked with
//! CreateOrUpdateTags, one call per batch (each tag names its group).

use aws_sdk_autoscaling::types::{Filter as AsgFilter, Tag as AsgTag};
use futures_util::future::BoxFuture;
use stackhand::aws::{AwsError, AwsResultExt as _};
use tokio::time::Instant;

use super::kind::{chunked, tag, Act, Acted, Detail, Kind, Marked, Resource, State, Unit};
use super::saved::{saved_desired, saved_suspended, saved_value, Capacity, ZERO_WITHOUT_SAVED};
use crate::call::{aws_call, by_halves, outcome, CallError, Outcome};
use crate::clients::Clients;
use crate::direction::Direction;
use crate::settings::{Settings, TagKeys};

/// The kind: `autoscaling-group/<name>`.
pub struct Groups;

impl Kind for Groups {
    fn label(&self) -> &'static str {
        "autoscaling-group"
    }

    fn listing(&self) -> (&'static str, &'static str) {
        ("autoscaling-groups", "DescribeAutoScalingGroups")
    }

    fn list<'a>(&'a self, clients: &'a Clients, keys: &'a TagKeys) -> BoxFuture<'a, Result<Vec<Resource>, AwsError>> {
        Box::pin(auto_scaling_groups(&clients.autoscaling, keys))
    }

    fn act<'a>(&'a self, act: Act<'a>, direction: Direction, batch: Vec<&'a Resource>) -> BoxFuture<'a, Acted> {
        Box::pin(async move {
            let (asg, key) = (&act.clients.autoscaling, &act.settings.keys.saved_capacity);
            let mut acted = Vec::new();
            for group in batch {
                let outcome = match direction {
                    Direction::Start => {
                        start_group(asg, group, key, act.settings.max_restored_capacity, act.cutoff).await
                    }
                    Direction::Stop => stop_group(asg, group, key, act.cutoff).await,
                };
                acted.push((group.name(), outcome));
            }
            acted
        })
    }

    fn alarm_dimensions(&self, resource: &Resource) -> Vec<(&'static str, String)> {
        vec![("AutoScalingGroupName", resource.id.clone())]
    }

    fn mark_batches<'r>(
        &self,
        marks: Vec<(&'r Resource, String)>,
        settings: &Settings,
    ) -> Vec<Vec<(&'r Resource, String)>> {
        chunked(marks, settings)
    }

    fn mark<'a>(&'a self, act: Act<'a>, key: &'a str, batch: Vec<(&'a Resource, String)>) -> BoxFuture<'a, Marked> {
        Box::pin(async move {
            let groups = batch.iter().map(|(r, value)| (r.id.clone(), value.clone())).collect();
            let written = tag_groups(&act.clients.autoscaling, key, groups, act.cutoff).await;
            written.into_iter().map(|(id, result)| (format!("{}/{id}", self.label()), result)).collect()
        })
    }
}

/// What a group's stop and start need, from the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    capacity: Capacity,
    /// Its suspended processes (ScheduledActions, AlarmNotification, …), as listed.
    suspended: Vec<String>,
}

/// Why stopping a group leaves instances running, if it does: those protected from scale in.
fn scale_in_protection(protected: &[String], protects_new: bool) -> Option<String> {
    if protected.is_empty() {
        return None;
    }
    let mut why = format!(
        "{} instance(s) protected from scale in keep running at capacity 0: {}; remove their protection \
         (SetInstanceProtection) or terminate them",
        protected.len(),
        protected.join(", ")
    );
    if protects_new {
        why.push_str(
            "; the group protects every instance it launches (NewInstancesProtectedFromScaleIn): turn that off, \
             or each start brings this back",
        );
    }
    Some(why)
}

/// What a group runs when it runs: its desired capacity (a stopped group's saved one), of the type its
/// mixed-instances policy prefers or its instances share. A group stopped with only a launch template
/// or configuration to say its type counts as unknown: reading those would be a call per template.
fn units(group: &aws_sdk_autoscaling::types::AutoScalingGroup, capacity: Capacity, saved: Option<&str>) -> Unit {
    let desired = if capacity == Capacity::ZERO { saved_desired(saved).unwrap_or(0) } else { capacity.desired };
    let preferred = group
        .mixed_instances_policy()
        .and_then(|p| p.launch_template())
        .and_then(|t| t.overrides().first())
        .and_then(|o| o.instance_type());
    let mut types = group.instances().iter().filter_map(|i| i.instance_type());
    let shared = types.next().filter(|first| types.all(|t| t == *first));
    Unit::new(preferred.or(shared), desired)
}

async fn auto_scaling_groups(asg: &aws_sdk_autoscaling::Client, keys: &TagKeys) -> Result<Vec<Resource>, AwsError> {
    let mut pages = asg
        .describe_auto_scaling_groups()
        .filters(AsgFilter::builder().name("tag-key").values(&keys.schedule).build())
        .max_records(100)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.op("DescribeAutoScalingGroups")?;
        for group in page.auto_scaling_groups() {
            let tags = || group.tags().iter().map(|t| (t.key(), t.value()));
            let (Some(id), Some(schedule)) = (group.auto_scaling_group_name(), tag(tags(), &keys.schedule)) else {
                continue;
            };
            let saved = tag(tags(), &keys.saved_capacity);
            let capacity = Capacity {
                min: group.min_size().unwrap_or_default(),
                max: group.max_size().unwrap_or_default(),
                desired: group.desired_capacity().unwrap_or_default(),
            };
            // Stopped only when both halves of a stop are done: the tag alone may be a stop whose
            // UpdateAutoScalingGroup failed, and such a group is stopped again (keeping the tag).
            let state = if capacity == Capacity::ZERO { State::Stopped } else { State::Running };
            let mut resource = Resource::new(&Groups, id, state, schedule).with_tags(tags(), keys);
            let suspended =
                group.suspended_processes().iter().filter_map(|p| p.process_name()).map(Into::into).collect();
            if capacity == Capacity::ZERO && saved.is_none() {
                resource.hold = Some(ZERO_WITHOUT_SAVED.into());
            }
            resource.saved = saved.map(Into::into);
            resource.units = vec![units(group, capacity, saved)];
            resource.detail = Detail::new(Group { capacity, suspended });
            let protects_new = group.new_instances_protected_from_scale_in() == Some(true);
            let protected: Vec<String> = group
                .instances()
                .iter()
                .filter(|i| i.protected_from_scale_in() == Some(true))
                .filter(|i| {
                    let state = i.lifecycle_state().map(|s| s.as_str()).unwrap_or_default();
                    !(state.starts_with("Terminat") || state.starts_with("Detach"))
                })
                .filter_map(|i| i.instance_id().map(Into::into))
                .collect();
            resource.left_running = scale_in_protection(&protected, protects_new);
            if let Some(status) = group.status() {
                resource.hold = Some(format!("has status \"{status}\""));
            }
            // An EKS managed node group's own group: EKS sets its size; scheduled as the node group.
            if let Some(nodegroup) = tag(tags(), "eks:nodegroup-name") {
                resource.hold = Some(format!(
                    "belongs to EKS managed node group {nodegroup}, which sets its size: tag the node group to \
                     schedule it"
                ));
            }
            found.push(resource);
        }
    }
    Ok(found)
}

/// Stopping a group: its capacity is saved in a tag first (so nothing is lost if the next call
/// fails), then minimum, maximum and desired are set to 0. A group that already has a valid saved
/// capacity (a stop whose second call failed, or a group someone scaled up by hand meanwhile) keeps
/// it: only the capacity is set to 0 again. Instances protected from scale in survive capacity 0:
/// such a stop is reported as failed, with them.
async fn stop_group(asg: &aws_sdk_autoscaling::Client, group: &Resource, saved_key: &str, cutoff: Instant) -> Outcome {
    let Some(Group { capacity, suspended }) = group.detail::<Group>() else {
        return Outcome::Failed("not an Auto Scaling group".into());
    };
    let keeps_saved = group.saved.as_deref().is_some_and(|saved| Capacity::parse(saved).is_ok());
    let capacity = *capacity;
    // What brings a group at 0 back: its scheduled actions, and alarms (scaling policies). Suspended by
    // the stop, recorded in the tag, and resumed by the start: those the stop suspended, no others.
    let suspend: Vec<String> = match group.saved.as_deref() {
        Some(saved) if keeps_saved => saved_suspended(saved),
        _ => GROUP_PROCESSES.iter().map(|p| p.to_string()).filter(|p| !suspended.contains(p)).collect(),
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
    let not_yet: Vec<String> = suspend.iter().filter(|p| !suspended.contains(p)).cloned().collect();
    if !not_yet.is_empty() {
        let request = asg.suspend_processes().auto_scaling_group_name(&group.id).set_scaling_processes(Some(not_yet));
        if let Err(e) = aws_call(cutoff, "SuspendProcesses", request.send()).await {
            return outcome(e);
        }
    }
    if let Err(e) = set_capacity(asg, &group.id, Capacity::ZERO, cutoff).await {
        return outcome(e);
    }
    match &group.left_running {
        Some(why) => Outcome::Failed(format!("capacity set to 0, but {why}")),
        None => Outcome::Done,
    }
}

/// The scaling processes a stop suspends: scheduled actions (which would set a capacity at their
/// time) and alarm notifications (scaling policies raising it).
const GROUP_PROCESSES: [&str; 2] = ["ScheduledActions", "AlarmNotification"];

/// Starting a group: the saved capacity is restored, the processes its stop suspended resumed, then
/// the tag removed. A saved capacity that does
/// not parse, is inconsistent, or is larger than `bound` (the owner's SCHEDULER_MAX_RESTORED_CAPACITY)
/// starts nothing: whoever can write the tag must not choose the size.
async fn start_group(
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

/// Writes the tag `key` on Auto Scaling groups, each `(group, value)` its own value, in one
/// CreateOrUpdateTags call, split by halves if refused. Not propagated to the groups' instances.
async fn tag_groups(
    asg: &aws_sdk_autoscaling::Client,
    key: &str,
    groups: Vec<(String, String)>,
    cutoff: Instant,
) -> Vec<(String, Result<(), CallError>)> {
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

#[cfg(test)]
mod tests;
