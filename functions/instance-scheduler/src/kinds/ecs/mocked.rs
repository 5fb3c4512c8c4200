//! Runs against mocked ECS and Application Auto Scaling answers: the failures moto can't produce.
use super::*;
use crate::request::Action;
use crate::run::run;
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
    let refused = mock!(aws_sdk_ecs::Client::update_service)
        .then_error(|| UpdateServiceError::generic(error_meta("ServerException", "the service could not be updated")));
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
    let rules =
        Rules { ecs: vec![a, b, c, &tag, &update], applicationautoscaling: vec![&target, &zero], ..Default::default() };
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
    let skipped: Vec<(&str, &str)> = summary.skipped.iter().map(|s| (s.resource.as_str(), s.reason.as_str())).collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped[0].0 == "ecs-service/dev/agent" && skipped[0].1.contains("DAEMON"), "{skipped:?}");
    assert_eq!(skipped[1], ("ecs-service/dev/old", "has status \"DRAINING\""));
}

#[tokio::test]
async fn a_failed_scalable_target_listing_is_reported_like_the_other_listings() {
    let list = listing(vec![service("web", 2, None)]);
    let broken = mock!(aws_sdk_applicationautoscaling::Client::describe_scalable_targets)
        .then_error(|| DescribeScalableTargetsError::generic(error_meta("AccessDeniedException", "not authorized")));
    let [a, b, c] = &list;
    let rules = Rules { ecs: vec![a, b, c], applicationautoscaling: vec![&broken], ..Default::default() };
    let summary = run_with(rules, Action::Stop, false).await;
    let why = failed(&summary, "ecs-services (listing)");
    assert!(why.contains("DescribeScalableTargets") && why.contains("AccessDeniedException"), "{why}");
    assert!(summary.stopped.is_empty(), "a service's bounds unknown, it is not touched: {summary:?}");
}
