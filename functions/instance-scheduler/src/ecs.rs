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

use crate::actions::{aws_call, outcome, CallError, Outcome};
use crate::inventory::{saved_suspended, saved_value, tag, within_bound, Kind, Resource, SavedFields, State, TagKeys};

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
    pub fn parse(value: &str) -> Result<Self, String> {
        let SavedFields { min, max, desired, unknown, .. } = SavedFields::read(value);
        let form = || {
            format!(
                "\"{value}\" is not a saved task count: expected \"desired=<n>\" or \"min=<n> max=<n> desired=<n>\""
            )
        };
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
    pub fn restorable(self, bound: i32) -> Result<Self, String> {
        let max = match self.target {
            Some((min, max)) if min > max => {
                return Err(format!("\"{self}\" is not a scalable target's range (min <= max)"));
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
pub async fn services(
    ecs: &aws_sdk_ecs::Client,
    aas: &aws_sdk_applicationautoscaling::Client,
    keys: &TagKeys,
) -> Result<Vec<Resource>, AwsError> {
    let mut clusters = Vec::new();
    let mut pages = ecs.list_clusters().max_results(100).into_paginator().send();
    while let Some(page) = pages.next().await {
        clusters.extend(page.op("ListClusters")?.cluster_arns().iter().cloned());
    }
    let mut found = Vec::new();
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
        for resource in &mut found {
            let service = resource.service.as_mut().expect("an ECS service");
            let target = targets.get(&service.target_id());
            service.count.target = target.map(|(bounds, _)| *bounds);
            service.suspended = target.map(|(_, flags)| flags.clone()).unwrap_or_default();
            // Stopped only when every part of a stop is done: the tag alone may be a stop whose
            // UpdateService failed, and such a service is stopped again (keeping the tag).
            let zero = service.count.is_zero();
            if zero {
                resource.state = State::Stopped;
                if resource.saved.is_none() {
                    resource.hold = Some(crate::inventory::ZERO_WITHOUT_SAVED.into());
                }
            }
        }
    }
    Ok(found)
}

/// A described service as a resource (running until its scalable target is known), if it is tagged.
fn resource(service: &aws_sdk_ecs::types::Service, keys: &TagKeys) -> Option<Resource> {
    let tags = || service.tags().iter().map(|t| (t.key(), t.value()));
    let schedule = tag(tags(), &keys.schedule)?;
    let (arn, name, cluster) = (service.service_arn()?, service.service_name()?, service.cluster_arn()?);
    let cluster = last_part(cluster);
    let mut resource = Resource::new(Kind::EcsService, &format!("{cluster}/{name}"), State::Running, schedule);
    resource.tag_count = service.tags().len();
    resource.override_until = tag(tags(), &keys.override_until).map(Into::into);
    resource.saved = tag(tags(), &keys.saved_capacity).map(Into::into);
    resource.applied = tag(tags(), &keys.applied).map(Into::into);
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
    resource.service = Some(Service {
        arn: arn.to_owned(),
        cluster: cluster.to_owned(),
        name: name.to_owned(),
        count,
        suspended: Vec::new(),
    });
    Some(resource)
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
pub async fn stop(
    ecs: &aws_sdk_ecs::Client,
    aas: &aws_sdk_applicationautoscaling::Client,
    resource: &Resource,
    saved_key: &str,
    cutoff: Instant,
) -> Outcome {
    let Some(service) = &resource.service else { return Outcome::Failed("not an ECS service".into()) };
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
pub async fn start(
    ecs: &aws_sdk_ecs::Client,
    aas: &aws_sdk_applicationautoscaling::Client,
    resource: &Resource,
    saved_key: &str,
    bound: i32,
    cutoff: Instant,
) -> Outcome {
    let Some(service) = &resource.service else { return Outcome::Failed("not an ECS service".into()) };
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
mod mocked {
    use super::*;
    use crate::request::Action;
    use crate::scheduler::run;
    use crate::summary::Summary;
    use crate::testing::{self, error_meta, Rules, KEY, SAVED};
    use aws_sdk_applicationautoscaling::operation::describe_scalable_targets::{
        DescribeScalableTargetsError, DescribeScalableTargetsOutput,
    };
    use aws_sdk_applicationautoscaling::operation::register_scalable_target::RegisterScalableTargetOutput;
    use aws_sdk_applicationautoscaling::types::ScalableTarget;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::list_clusters::ListClustersOutput;
    use aws_sdk_ecs::operation::list_services::ListServicesOutput;
    use aws_sdk_ecs::operation::tag_resource::TagResourceOutput;
    use aws_sdk_ecs::operation::untag_resource::UntagResourceOutput;
    use aws_sdk_ecs::operation::update_service::{UpdateServiceError, UpdateServiceOutput};
    use aws_sdk_ecs::types::Service as EcsService;
    use aws_smithy_mocks::{mock, Rule};
    use tokio::time::Duration;

    const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/dev";

    fn arn(name: &str) -> String {
        format!("arn:aws:ecs:eu-west-1:123456789012:service/dev/{name}")
    }

    /// A service in cluster `dev` with the schedule tag, `desired` tasks and, if given, a saved count.
    fn service(name: &str, desired: i32, saved: Option<&str>) -> EcsService {
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let mut service = EcsService::builder()
            .service_arn(arn(name))
            .service_name(name)
            .cluster_arn(CLUSTER)
            .status("ACTIVE")
            .desired_count(desired)
            .tags(tag(KEY, "office"));
        if let Some(saved) = saved {
            service = service.tags(tag(SAVED, saved));
        }
        service.build()
    }

    /// ListClusters (one cluster), ListServices and DescribeServices (answering for the services asked).
    fn listing(services: Vec<EcsService>) -> [Rule; 3] {
        let arns: Vec<String> = services.iter().filter_map(|s| s.service_arn().map(Into::into)).collect();
        [
            mock!(aws_sdk_ecs::Client::list_clusters)
                .then_output(|| ListClustersOutput::builder().cluster_arns(CLUSTER).build()),
            mock!(aws_sdk_ecs::Client::list_services)
                .then_output(move || ListServicesOutput::builder().set_service_arns(Some(arns.clone())).build()),
            mock!(aws_sdk_ecs::Client::describe_services).then_compute_output(move |input| {
                let asked: Vec<EcsService> = services
                    .iter()
                    .filter(|s| input.services().iter().any(|a| Some(a.as_str()) == s.service_arn()))
                    .cloned()
                    .collect();
                DescribeServicesOutput::builder().set_services(Some(asked)).build()
            }),
        ]
    }

    /// DescribeScalableTargets with these (service, min, max).
    fn targets(targets: &[(&str, i32, i32)]) -> Rule {
        let targets: Vec<ScalableTarget> = targets
            .iter()
            .map(|(name, min, max)| {
                ScalableTarget::builder()
                    .service_namespace(ServiceNamespace::Ecs)
                    .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                    .resource_id(format!("service/dev/{name}"))
                    .min_capacity(*min)
                    .max_capacity(*max)
                    .role_arn("arn:aws:iam::123456789012:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService")
                    .creation_time(aws_smithy_types::DateTime::from_secs(0))
                    .build()
                    .unwrap()
            })
            .collect();
        mock!(aws_sdk_applicationautoscaling::Client::describe_scalable_targets).then_output(move || {
            DescribeScalableTargetsOutput::builder().set_scalable_targets(Some(targets.clone())).build()
        })
    }

    fn register(bounds: (i32, i32)) -> Rule {
        mock!(aws_sdk_applicationautoscaling::Client::register_scalable_target)
            .match_requests(move |r| {
                (r.min_capacity(), r.max_capacity()) == (Some(bounds.0), Some(bounds.1))
                    && r.resource_id() == Some("service/dev/web")
            })
            .then_output(|| RegisterScalableTargetOutput::builder().build())
    }

    fn updating(desired: i32) -> Rule {
        mock!(aws_sdk_ecs::Client::update_service)
            .match_requests(move |r| {
                r.desired_count() == Some(desired) && r.cluster() == Some("dev") && r.service() == Some("web")
            })
            .then_output(|| UpdateServiceOutput::builder().build())
    }

    fn tagging(value: &'static str) -> Rule {
        mock!(aws_sdk_ecs::Client::tag_resource)
            .match_requests(move |r| {
                r.resource_arn() == Some(arn("web").as_str())
                    && r.tags().iter().any(|t| t.key() == Some(SAVED) && t.value() == Some(value))
            })
            .then_output(|| TagResourceOutput::builder().build())
    }

    async fn run_with(rules: Rules<'_>, action: Action, dry_run: bool) -> Summary {
        let clients = testing::clients(rules);
        let mut request = testing::request(action);
        request.dry_run = dry_run;
        let cutoff = Instant::now() + Duration::from_secs(600);
        run(&clients, &testing::no_definitions(), &testing::settings(), &request, cutoff).await.expect("a summary")
    }

    fn failed<'a>(summary: &'a Summary, resource: &str) -> &'a str {
        let found = summary.failed.iter().find(|f| f.resource == resource);
        found.map(|f| f.error.as_str()).unwrap_or_else(|| panic!("{resource} failed in {summary:?}"))
    }

    // UpdateService failing after the tag was written and the target set to 0..0 leaves the service
    // running with its saved count: the next run stops it again keeping that count, and a start
    // restores it.
    #[tokio::test]
    async fn a_stop_whose_update_service_failed_is_finished_by_the_next_run_keeping_the_saved_count() {
        let list = listing(vec![service("web", 2, None)]);
        // The stop suspends the target's scaling (issue 20 item 6) and records what it suspended.
        let (target, tag, zero) =
            (targets(&[("web", 1, 4)]), tagging("min=1 max=4 desired=2 suspended=in,out,scheduled"), register((0, 0)));
        let refused = mock!(aws_sdk_ecs::Client::update_service).then_error(|| {
            UpdateServiceError::generic(error_meta("ServerException", "the service could not be updated"))
        });
        let [a, b, c] = &list;
        let rules = Rules {
            ecs: vec![a, b, c, &tag, &refused],
            applicationautoscaling: vec![&target, &zero],
            ..Default::default()
        };
        let first = run_with(rules, Action::Stop, false).await;
        let why = failed(&first, "ecs-service/dev/web");
        assert!(why.contains("UpdateService") && why.contains("ServerException"), "{why}");
        assert_eq!((tag.num_calls(), zero.num_calls(), refused.num_calls()), (1, 1, 1));

        // What the next run lists: the tag, the target at 0..0, the count unchanged.
        let list = listing(vec![service("web", 2, Some("min=1 max=4 desired=2"))]);
        let (target, tag, zero, update) =
            (targets(&[("web", 0, 0)]), tagging("min=0 max=0 desired=2"), register((0, 0)), updating(0));
        let [a, b, c] = &list;
        let rules = Rules {
            ecs: vec![a, b, c, &tag, &update],
            applicationautoscaling: vec![&target, &zero],
            ..Default::default()
        };
        let second = run_with(rules, Action::Stop, false).await;
        assert_eq!(second.stopped, ["ecs-service/dev/web"], "{second:?}");
        assert_eq!(second.unchanged, 0);
        assert_eq!(tag.num_calls(), 0, "the saved count is kept, not overwritten");
        assert_eq!((zero.num_calls(), update.num_calls()), (1, 1));

        // Stopped: the tag, desired 0, the target at 0..0. A start restores the target, then the count.
        let list = listing(vec![service("web", 0, Some("min=1 max=4 desired=2"))]);
        let (target, bounds, update) = (targets(&[("web", 0, 0)]), register((1, 4)), updating(2));
        let untag = mock!(aws_sdk_ecs::Client::untag_resource)
            .match_requests(|r| r.tag_keys() == [SAVED])
            .then_output(|| UntagResourceOutput::builder().build());
        let [a, b, c] = &list;
        let rules = Rules {
            ecs: vec![a, b, c, &update, &untag],
            applicationautoscaling: vec![&target, &bounds],
            ..Default::default()
        };
        let started = run_with(rules, Action::Start, false).await;
        assert_eq!(started.started, ["ecs-service/dev/web"], "{started:?}");
        assert_eq!((bounds.num_calls(), update.num_calls(), untag.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn services_are_described_ten_at_a_time_and_what_cant_be_stopped_is_skipped() {
        let mut services: Vec<EcsService> = (0..21).map(|i| service(&format!("svc-{i:02}"), 1, None)).collect();
        let mut daemon = service("agent", 1, None);
        daemon.scheduling_strategy = Some(SchedulingStrategy::Daemon);
        let mut draining = service("old", 1, None);
        draining.status = Some("DRAINING".into());
        let mut untagged = service("other", 1, None);
        untagged.tags = None;
        services.extend([daemon, draining, untagged]);
        let list = listing(services);
        let [a, b, c] = &list;
        let summary = run_with(Rules { ecs: vec![a, b, c], ..Default::default() }, Action::Stop, true).await;
        assert_eq!(summary.stopped.len(), 21, "{summary:?}");
        assert_eq!(c.num_calls(), 3, "24 services: 10 + 10 + 4");
        let skipped: Vec<(&str, &str)> =
            summary.skipped.iter().map(|s| (s.resource.as_str(), s.reason.as_str())).collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].0 == "ecs-service/dev/agent" && skipped[0].1.contains("DAEMON"), "{skipped:?}");
        assert_eq!(skipped[1], ("ecs-service/dev/old", "has status \"DRAINING\""));
    }

    #[tokio::test]
    async fn a_failed_scalable_target_listing_is_reported_like_the_other_listings() {
        let list = listing(vec![service("web", 2, None)]);
        let broken = mock!(aws_sdk_applicationautoscaling::Client::describe_scalable_targets).then_error(|| {
            DescribeScalableTargetsError::generic(error_meta("AccessDeniedException", "not authorized"))
        });
        let [a, b, c] = &list;
        let rules = Rules { ecs: vec![a, b, c], applicationautoscaling: vec![&broken], ..Default::default() };
        let summary = run_with(rules, Action::Stop, false).await;
        let why = failed(&summary, "ecs-services (listing)");
        assert!(why.contains("DescribeScalableTargets") && why.contains("AccessDeniedException"), "{why}");
        assert!(summary.stopped.is_empty(), "a service's bounds unknown, it is not touched: {summary:?}");
    }
}
