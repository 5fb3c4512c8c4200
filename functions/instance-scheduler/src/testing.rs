//! Test doubles: the scheduler's clients answered by aws-smithy-mocks rules (for answers moto can't
//! give: `ResourceContention`, a StateReason, stop protection, global databases …), and an HTTP client
//! that never answers chosen operations.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_sdk_applicationautoscaling::operation::describe_scalable_targets::DescribeScalableTargetsOutput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ecs::operation::list_clusters::ListClustersOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::error::ErrorMetadata;

use crate::clients::{Clients, Place};
use crate::named::Definer;
use crate::request::{Action, Request};
use crate::settings::{Settings, TagKeys};

pub mod fixtures;

pub const KEY: &str = "Schedule";

pub fn settings() -> Settings {
    let mut settings = Settings::from_lookup(|_| None).expect("the defaults");
    settings.keys = keys();
    settings
}

pub fn keys() -> TagKeys {
    TagKeys {
        schedule: KEY.into(),
        override_until: "ScheduleOverride".into(),
        saved_capacity: SAVED.into(),
        hibernate: HIBERNATE.into(),
        applied: crate::settings::SCHEDULE_APPLIED_TAG.into(),
        mute_alarms: crate::settings::DEFAULT_MUTE_ALARMS_TAG.into(),
    }
}

pub const SAVED: &str = crate::settings::SAVED_CAPACITY_TAG;
pub const HIBERNATE: &str = crate::settings::DEFAULT_HIBERNATE_TAG;

pub fn request(action: Action) -> Request {
    Request { action, schedule: None, dry_run: false, at: "2026-11-23T12:00:00Z".parse().unwrap() }
}

/// No named schedules.
pub fn no_definitions() -> Definer {
    Definer::with_client(None, &settings())
}

/// A modeled error with `code`, for any operation's error type.
pub fn error_meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// Rules for each client; every listing not given answers empty.
#[derive(Default)]
pub struct Rules<'a> {
    pub ec2: Vec<&'a Rule>,
    pub rds: Vec<&'a Rule>,
    pub autoscaling: Vec<&'a Rule>,
    pub ecs: Vec<&'a Rule>,
    pub applicationautoscaling: Vec<&'a Rule>,
    pub redshift: Vec<&'a Rule>,
    pub eks: Vec<&'a Rule>,
    pub sagemaker: Vec<&'a Rule>,
    pub cloudwatch: Vec<&'a Rule>,
}

/// Answers from `rules`, then from `defaults`, whichever matches.
pub fn interceptor(rules: &[&Rule], defaults: &[Rule]) -> MockResponseInterceptor {
    let with = rules.iter().copied().chain(defaults).fold(MockResponseInterceptor::new(), |i, r| i.with_rule(r));
    with.rule_mode(RuleMode::MatchAny)
}

/// The shared test configuration with another HTTP client and the function's attempt timeout.
pub fn config_with(http: SharedHttpClient) -> SdkConfig {
    testkit::mock_sdk_config()
        .into_builder()
        .http_client(http)
        .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(60)).build())
        .build()
}

pub fn clients(rules: Rules<'_>) -> Clients {
    clients_on(&testkit::mock_sdk_config(), rules)
}

pub fn clients_on(config: &SdkConfig, rules: Rules<'_>) -> Clients {
    let ec2 =
        [mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| DescribeInstancesOutput::builder().build())];
    let rds = [
        mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| DescribeDbInstancesOutput::builder().build()),
        mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| DescribeDbClustersOutput::builder().build()),
    ];
    let asg = [mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .then_output(|| DescribeAutoScalingGroupsOutput::builder().build())];
    let ecs = [mock!(aws_sdk_ecs::Client::list_clusters).then_output(|| ListClustersOutput::builder().build())];
    let aas = [mock!(aws_sdk_applicationautoscaling::Client::describe_scalable_targets)
        .then_output(|| DescribeScalableTargetsOutput::builder().build())];
    let redshift = [mock!(aws_sdk_redshift::Client::describe_clusters)
        .then_output(|| aws_sdk_redshift::operation::describe_clusters::DescribeClustersOutput::builder().build())];
    let eks = [mock!(aws_sdk_eks::Client::list_clusters)
        .then_output(|| aws_sdk_eks::operation::list_clusters::ListClustersOutput::builder().build())];
    let sagemaker = [mock!(aws_sdk_sagemaker::Client::list_notebook_instances).then_output(|| {
        aws_sdk_sagemaker::operation::list_notebook_instances::ListNotebookInstancesOutput::builder().build()
    })];
    let cloudwatch = [mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .then_output(|| aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput::builder().build())];
    let (redshift, eks) = (interceptor(&rules.redshift, &redshift), interceptor(&rules.eks, &eks));
    let (sagemaker, cloudwatch) =
        (interceptor(&rules.sagemaker, &sagemaker), interceptor(&rules.cloudwatch, &cloudwatch));
    let (ec2, rds, asg, ecs, aas) = (
        interceptor(&rules.ec2, &ec2),
        interceptor(&rules.rds, &rds),
        interceptor(&rules.autoscaling, &asg),
        interceptor(&rules.ecs, &ecs),
        interceptor(&rules.applicationautoscaling, &aas),
    );
    Clients {
        ec2: stackhand::client!(aws_sdk_ec2, config, builder => builder.interceptor(ec2)),
        rds: stackhand::client!(aws_sdk_rds, config, builder => builder.interceptor(rds)),
        autoscaling: stackhand::client!(aws_sdk_autoscaling, config, builder => builder.interceptor(asg)),
        ecs: stackhand::client!(aws_sdk_ecs, config, builder => builder.interceptor(ecs)),
        applicationautoscaling: stackhand::client!(aws_sdk_applicationautoscaling, config, builder => builder.interceptor(aas)),
        redshift: stackhand::client!(aws_sdk_redshift, config, builder => builder.interceptor(redshift)),
        eks: stackhand::client!(aws_sdk_eks, config, builder => builder.interceptor(eks)),
        sagemaker: stackhand::client!(aws_sdk_sagemaker, config, builder => builder.interceptor(sagemaker)),
        cloudwatch: stackhand::client!(aws_sdk_cloudwatch, config, builder => builder.interceptor(cloudwatch)),
        pacer: crate::pace::Pacer::default(),
        place: Place { partition: "aws".into(), region: "eu-west-1".into(), account: "123456789012".into() },
    }
}

/// aws-smithy-mocks' HTTP client, except that a request for one of `actions` (query protocol:
/// `Action=<name>` in the body) is never answered: a hanging AWS endpoint.
pub fn hanging_on(actions: &'static [&'static str]) -> SharedHttpClient {
    #[derive(Debug)]
    struct Hanging {
        actions: &'static [&'static str],
        inner: SharedHttpConnector,
    }
    impl HttpConnector for Hanging {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
            if self.actions.iter().any(|a| body.split('&').any(|p| p == format!("Action={a}"))) {
                return HttpConnectorFuture::new(std::future::pending());
            }
            self.inner.call(request)
        }
    }
    let mocks = aws_smithy_mocks::create_mock_http_client();
    http_client_fn(move |settings, components| {
        use aws_smithy_runtime_api::client::http::HttpClient;
        SharedHttpConnector::new(Hanging { actions, inner: mocks.http_connector(settings, components) })
    })
}
