//! ECS services (EC2 or Fargate), scheduled like Auto Scaling groups: a stop saves the desired task
//! count (and, when Application Auto Scaling manages the service, its scalable target's minimum and
//! maximum) in the saved-capacity tag, then sets the target to 0..0 and the desired count to 0; a
//! start restores them and removes the tag.
//!
//! Listing: ListClusters, ListServices per cluster, DescribeServices 10 at a time with their tags,
//! and (only when a service is tagged) DescribeScalableTargets for the ECS namespace, all paginated.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace, SuspendedState};
use aws_sdk_ecs::types::{SchedulingStrategy, ServiceField, Tag};
use stackhand::aws::{AwsError, AwsResultExt as _};
use tokio::time::Instant;

use futures_util::future::BoxFuture;

use super::kind::{tag, Act, Acted, Detail, Kind, Marked, Resource, State, Unit};
use super::saved::{
    saved_desired, saved_suspended, saved_value, within_bound, SavedError, SavedFields, ZERO_WITHOUT_SAVED,
};
use crate::call::{aws_call, outcome, CallError, Outcome};
use crate::clients::Clients;
use crate::direction::Direction;
use crate::settings::TagKeys;

/// The kind: `ecs-service/<cluster>/<service>`.
pub struct Services;

impl Kind for Services {
    fn label(&self) -> &'static str {
        "ecs-service"
    }

    fn listing(&self) -> (&'static str, &'static str) {
        ("ecs-services", "ListServices")
    }

    fn list<'a>(&'a self, clients: &'a Clients, keys: &'a TagKeys) -> BoxFuture<'a, Result<Vec<Resource>, AwsError>> {
        Box::pin(services(&clients.ecs, &clients.applicationautoscaling, keys))
    }

    fn act<'a>(&'a self, act: Act<'a>, direction: Direction, batch: Vec<&'a Resource>) -> BoxFuture<'a, Acted> {
        Box::pin(async move {
            let (ecs, aas) = (&act.clients.ecs, &act.clients.applicationautoscaling);
            let key = &act.settings.keys.saved_capacity;
            let mut acted = Vec::new();
            for resource in batch {
                let outcome = match direction {
                    Direction::Start => {
                        start(ecs, aas, resource, key, act.settings.max_restored_capacity, act.cutoff).await
                    }
                    Direction::Stop => stop(ecs, aas, resource, key, act.cutoff).await,
                };
                acted.push((resource.name(), outcome));
            }
            acted
        })
    }

    /// Its alarms: those on both its `ClusterName` and its `ServiceName` (ECS's and Container
    /// Insights' service metrics).
    fn alarm_dimensions(&self, resource: &Resource) -> Vec<(&'static str, String)> {
        match resource.detail::<Service>() {
            Some(service) => vec![("ClusterName", service.cluster.clone()), ("ServiceName", service.name.clone())],
            None => Vec::new(),
        }
    }

    /// One service's marker: `ecs:TagResource` takes one ARN per call.
    fn mark<'a>(&'a self, act: Act<'a>, key: &'a str, batch: Vec<(&'a Resource, String)>) -> BoxFuture<'a, Marked> {
        Box::pin(async move {
            let mut marked = Vec::new();
            for (resource, value) in batch {
                let result = match &resource.arn {
                    Some(arn) => {
                        let tag = Tag::builder().key(key).value(value).build();
                        let request = act.clients.ecs.tag_resource().resource_arn(arn).tags(tag);
                        aws_call(act.cutoff, "TagResource", request.send()).await
                    }
                    None => Err(CallError::other("its listing gave no ARN to tag")),
                };
                marked.push((resource.name(), result));
            }
            marked
        })
    }
}

/// Services per DescribeServices call (the API's limit).
const DESCRIBE_BATCH: usize = 10;

/// What stopping and starting a service needs, from the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// For TagResource/UntagResource.
    pub arn: String,
    pub cluster: String,
    pub name: String,
    pub count: TaskCount,
    /// Its scalable target's suspended flags (`in`, `out`, `scheduled`: dynamic scale-in, scale-out,
    /// scheduled scaling), as listed.
    pub suspended: Vec<String>,
}

/// A scalable target's SuspendedState flags, by the names the saved-capacity tag records.
const TARGET_FLAGS: [&str; 3] = ["in", "out", "scheduled"];

fn suspended_state(flags: &[String]) -> SuspendedState {
    let on = |f: &str| flags.iter().any(|x| x == f);
    SuspendedState::builder()
        .dynamic_scaling_in_suspended(on("in"))
        .dynamic_scaling_out_suspended(on("out"))
        .scheduled_scaling_suspended(on("scheduled"))
        .build()
}

impl Service {
    /// Its scalable target's ResourceId in Application Auto Scaling.
    fn target_id(&self) -> String {
        format!("service/{}/{}", self.cluster, self.name)
    }
}

/// A service's desired task count and, when it has a scalable target, that target's bounds: what the
/// saved-capacity tag holds (`min=1 max=4 desired=2`, or `desired=2` without a target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskCount {
    pub desired: i32,
    /// The scalable target's (minimum, maximum).
    pub target: Option<(i32, i32)>,
}

impl TaskCount {
    /// Reads the saved-capacity tag value written by `Display`.
    pub fn parse(value: &str) -> Result<Self, SavedError> {
        let SavedFields { min, max, desired, unknown, .. } = SavedFields::read(value);
        let form = || SavedError::TaskCount(value.to_owned());
        match (!unknown, min, max, desired) {
            (true, None, None, Some(Some(desired))) => Ok(TaskCount { desired, target: None }),
            (true, Some(Some(min)), Some(Some(max)), Some(Some(desired))) => {
                Ok(TaskCount { desired, target: Some((min, max)) })
            }
            _ => Err(form()),
        }
    }
}

impl TaskCount {
    /// No task, and no room for one: desired 0 and a scalable target (if any) of 0..0.
    pub fn is_zero(&self) -> bool {
        self.desired == 0 && self.target.is_none_or(|t| t == (0, 0))
    }

    /// This count, if a start may restore it: a target's min ≤ max, and everything within `bound`.
    pub fn restorable(self, bound: i32) -> Result<Self, SavedError> {
        let max = match self.target {
            Some((min, max)) if min > max => {
                return Err(SavedError::Range(self.to_string()));
            }
            Some((_, max)) => max,
            None => 0,
        };
        within_bound(&self, max, self.desired, bound).map(|()| self)
    }
}

impl fmt::Display for TaskCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((min, max)) = self.target {
            write!(f, "min={min} max={max} ")?;
        }
        write!(f, "desired={}", self.desired)
    }
}

/// The last part of an ARN's resource path (`…:cluster/<name>` → `<name>`).
fn last_part(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Every ECS service carrying the schedule tag, in every cluster of the Region.
async fn services(
    ecs: &aws_sdk_ecs::Client,
    aas: &aws_sdk_applicationautoscaling::Client,
    keys: &TagKeys,
) -> Result<Vec<Resource>, AwsError> {
    let mut clusters = Vec::new();
    let mut pages = ecs.list_clusters().max_results(100).into_paginator().send();
    while let Some(page) = pages.next().await {
        clusters.extend(page.op("ListClusters")?.cluster_arns().iter().cloned());
    }
    let mut found: Vec<(Resource, Service)> = Vec::new();
    for cluster in &clusters {
        let mut arns = Vec::new();
        let mut pages = ecs.list_services().cluster(cluster).max_results(100).into_paginator().send();
        while let Some(page) = pages.next().await {
            arns.extend(page.op("ListServices")?.service_arns().iter().cloned());
        }
        for chunk in arns.chunks(DESCRIBE_BATCH) {
            let out = ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(chunk.to_vec()))
                .include(ServiceField::Tags)
                .send()
                .await
                .op("DescribeServices")?;
            found.extend(out.services().iter().filter_map(|service| resource(service, keys)));
        }
    }
    if !found.is_empty() {
        let targets = scalable_targets(aas).await?;
        for (resource, service) in &mut found {
            let target = targets.get(&service.target_id());
            service.count.target = target.map(|(bounds, _)| *bounds);
            service.suspended = target.map(|(_, flags)| flags.clone()).unwrap_or_default();
            // Stopped only when every part of a stop is done: the tag alone may be a stop whose
            // UpdateService failed, and such a service is stopped again (keeping the tag).
            let zero = service.count.is_zero();
            if zero {
                resource.state = State::Stopped;
                if resource.saved.is_none() {
                    resource.hold = Some(ZERO_WITHOUT_SAVED.into());
                }
            }
        }
    }
    Ok(found.into_iter().map(|(resource, service)| Resource { detail: Detail::new(service), ..resource }).collect())
}

/// A described service as a resource (running until its scalable target is known), if it is tagged.
fn resource(service: &aws_sdk_ecs::types::Service, keys: &TagKeys) -> Option<(Resource, Service)> {
    let tags = || service.tags().iter().map(|t| (t.key(), t.value()));
    let schedule = tag(tags(), &keys.schedule)?;
    let (arn, name, cluster) = (service.service_arn()?, service.service_name()?, service.cluster_arn()?);
    let cluster = last_part(cluster);
    let id = format!("{cluster}/{name}");
    let mut resource = Resource::new(&Services, &id, State::Running, schedule).with_tags(tags(), keys);
    resource.saved = tag(tags(), &keys.saved_capacity).map(Into::into);
    resource.arn = Some(arn.to_owned());
    if service.scheduling_strategy() == Some(&SchedulingStrategy::Daemon) {
        resource.unstoppable = Some(
            "uses the DAEMON scheduling strategy, which has no desired count: schedule its container instances \
             (their Auto Scaling group) instead"
                .into(),
        );
    }
    if let Some(status) = service.status().filter(|s| *s != "ACTIVE") {
        resource.hold = Some(format!("has status \"{status}\""));
    }
    let count = TaskCount { desired: service.desired_count(), target: None };
    // Tasks by launch type (or capacity provider); a stopped service by the count it saved.
    let tasks = match service.desired_count() {
        0 => saved_desired(resource.saved.as_deref()).unwrap_or(0),
        n => n,
    };
    let provider = service.capacity_provider_strategy().first().map(|s| s.capacity_provider());
    let launch = service.launch_type().map(|t| t.as_str()).or(provider);
    resource.units = vec![Unit::new(launch, tasks)];
    let service = Service {
        arn: arn.to_owned(),
        cluster: cluster.to_owned(),
        name: name.to_owned(),
        count,
        suspended: Vec::new(),
    };
    Some((resource, service))
}

/// The (minimum, maximum) of every ECS service's scalable target, by ResourceId.
/// Each ECS scalable target's (min, max) and suspended flags, by ResourceId.
async fn scalable_targets(
    aas: &aws_sdk_applicationautoscaling::Client,
) -> Result<HashMap<String, ((i32, i32), Vec<String>)>, AwsError> {
    let mut pages = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .max_results(50)
        .into_paginator()
        .send();
    let mut targets = HashMap::new();
    while let Some(page) = pages.next().await {
        for target in page.op("DescribeScalableTargets")?.scalable_targets() {
            let state = target.suspended_state();
            let flags = [
                state.and_then(|s| s.dynamic_scaling_in_suspended()),
                state.and_then(|s| s.dynamic_scaling_out_suspended()),
                state.and_then(|s| s.scheduled_scaling_suspended()),
            ];
            let flags = TARGET_FLAGS.iter().zip(flags).filter(|(_, on)| *on == Some(true)).map(|(f, _)| f.to_string());
            targets.insert(
                target.resource_id().to_owned(),
                ((target.min_capacity(), target.max_capacity()), flags.collect()),
            );
        }
    }
    Ok(targets)
}

/// Stopping a service: its task count saved in the tag first (so nothing is lost if a later call
/// fails), then its scalable target set to 0..0 (else Application Auto Scaling would bring it back to
/// its minimum), then its desired count to 0. A service that already has a valid saved count (a stop
/// half done) keeps it: only the rest is done again.
async fn stop(
    ecs: &aws_sdk_ecs::Client,
    aas: &aws_sdk_applicationautoscaling::Client,
    resource: &Resource,
    saved_key: &str,
    cutoff: Instant,
) -> Outcome {
    let Some(service) = resource.detail::<Service>() else { return Outcome::Failed("not an ECS service".into()) };
    let keeps_saved = resource.saved.as_deref().is_some_and(|saved| TaskCount::parse(saved).is_ok());
    let zero = service.count.is_zero();
    // Application Auto Scaling's scheduled actions and scaling policies would bring a service at 0/0
    // back: the stop suspends them (recorded in the tag), the start resumes exactly those.
    let suspend: Vec<String> = match resource.saved.as_deref() {
        Some(saved) if keeps_saved => saved_suspended(saved),
        _ if service.count.target.is_some() => {
            TARGET_FLAGS.iter().map(|f| f.to_string()).filter(|f| !service.suspended.contains(f)).collect()
        }
        _ => Vec::new(),
    };
    // An all-zero count is never saved: it would overwrite what an overlapping stop saved.
    if !keeps_saved && !zero {
        let tag = Tag::builder().key(saved_key).value(saved_value(&service.count, &suspend)).build();
        if let Err(e) =
            aws_call(cutoff, "TagResource", ecs.tag_resource().resource_arn(&service.arn).tags(tag).send()).await
        {
            return outcome(e);
        }
    }
    if service.count.target.is_some() {
        let mut flags = service.suspended.clone();
        flags.extend(suspend.iter().cloned());
        if let Err(e) = set_target(aas, service, (0, 0), &flags, cutoff).await {
            return outcome(e);
        }
    }
    match set_desired(ecs, service, 0, cutoff).await {
        Ok(()) => Outcome::Done,
        Err(e) => outcome(e),
    }
}

/// Starting a service: its scalable target's bounds restored (when it still has one), then its desired
/// count, then the tag removed.
async fn start(
    ecs: &aws_sdk_ecs::Client,
    aas: &aws_sdk_applicationautoscaling::Client,
    resource: &Resource,
    saved_key: &str,
    bound: i32,
    cutoff: Instant,
) -> Outcome {
    let Some(service) = resource.detail::<Service>() else { return Outcome::Failed("not an ECS service".into()) };
    let saved = resource.saved.as_deref().unwrap_or_default();
    let count = match TaskCount::parse(saved).and_then(|c| c.restorable(bound)) {
        Ok(count) => count,
        Err(e) => {
            return Outcome::Failed(format!(
            "{saved_key} tag: {e}; set it to the task count to restore, or delete it if the service is already running"
        ))
        }
    };
    if let (Some(bounds), Some(_)) = (count.target, service.count.target) {
        // Resumed: what the stop suspended; what was suspended before it stays so.
        let resume = saved_suspended(saved);
        let flags: Vec<String> = service.suspended.iter().filter(|f| !resume.contains(f)).cloned().collect();
        if let Err(e) = set_target(aas, service, bounds, &flags, cutoff).await {
            return outcome(e);
        }
    }
    if let Err(e) = set_desired(ecs, service, count.desired, cutoff).await {
        return outcome(e);
    }
    let untag = ecs.untag_resource().resource_arn(&service.arn).tag_keys(saved_key);
    match aws_call(cutoff, "UntagResource", untag.send()).await {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(format!(
            "task count restored to {count}, but {}; the tag stays (the next stop keeps the count it holds)",
            e.message
        )),
    }
}

async fn set_target(
    aas: &aws_sdk_applicationautoscaling::Client,
    service: &Service,
    (min, max): (i32, i32),
    suspended: &[String],
    cutoff: Instant,
) -> Result<(), CallError> {
    let request = aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(service.target_id())
        .min_capacity(min)
        .max_capacity(max)
        .suspended_state(suspended_state(suspended));
    aws_call(cutoff, "RegisterScalableTarget", request.send()).await
}

async fn set_desired(
    ecs: &aws_sdk_ecs::Client,
    service: &Service,
    desired: i32,
    cutoff: Instant,
) -> Result<(), CallError> {
    let request = ecs.update_service().cluster(&service.cluster).service(&service.name).desired_count(desired);
    aws_call(cutoff, "UpdateService", request.send()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_task_count_round_trips_with_and_without_a_target_and_bad_values_say_the_form() {
        for count in [TaskCount { desired: 2, target: Some((1, 4)) }, TaskCount { desired: 3, target: None }] {
            assert_eq!(TaskCount::parse(&count.to_string()), Ok(count));
        }
        assert_eq!(TaskCount { desired: 2, target: Some((1, 4)) }.to_string(), "min=1 max=4 desired=2");
        assert_eq!(TaskCount { desired: 2, target: None }.to_string(), "desired=2");
        // An Auto Scaling group's saved capacity reads the same.
        assert_eq!(TaskCount::parse(" desired=0 min=0 max=0"), Ok(TaskCount { desired: 0, target: Some((0, 0)) }));
        for bad in ["", "min=1 desired=2", "max=4 desired=2", "desired=-1", "desired=two", "desired=2 size=3", "2"] {
            let e = TaskCount::parse(bad).unwrap_err();
            assert!(e.contains("expected \"desired=<n>\" or \"min=<n> max=<n> desired=<n>\""), "{bad}: {e}");
        }
    }

    #[test]
    fn a_saved_task_count_is_restored_only_within_the_owners_bound() {
        let count = TaskCount { desired: 2, target: Some((1, 4)) };
        assert_eq!(count.restorable(4), Ok(count));
        assert!(TaskCount { desired: 2, target: Some((1, 400)) }
            .restorable(100)
            .unwrap_err()
            .contains("larger than the 100"));
        assert!(TaskCount { desired: 300, target: None }.restorable(100).unwrap_err().contains("nothing was started"));
        assert!(TaskCount { desired: 2, target: Some((5, 4)) }.restorable(100).unwrap_err().contains("min <= max"));
    }

    #[test]
    fn a_cluster_name_is_the_last_part_of_its_arn() {
        assert_eq!(last_part("arn:aws:ecs:eu-west-1:123456789012:cluster/dev"), "dev");
        assert_eq!(last_part("dev"), "dev");
    }
}

/// Runs against mocked ECS and Application Auto Scaling answers: the failures moto can't produce.
#[cfg(test)]
mod mocked;
