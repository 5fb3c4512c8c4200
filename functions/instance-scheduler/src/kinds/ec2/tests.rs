//! EC2 instances against mocked answers: batches split by halves, hibernation refused, stop protection,
//! Spot Instances, a start that fell back to stopped.

use crate::request::Action;
use crate::testing::{self, error_meta, Rules};
use aws_sdk_ec2::operation::describe_spot_instance_requests::DescribeSpotInstanceRequestsOutput;
use aws_sdk_ec2::operation::start_instances::StartInstancesOutput;
use aws_sdk_ec2::operation::stop_instances::{StopInstancesError, StopInstancesOutput};
use aws_sdk_ec2::types::{
    DeviceType, InstanceLifecycleType, InstanceStateName, SpotInstanceRequest, SpotInstanceType, StateReason,
};
use aws_smithy_mocks::mock;
use tokio::time::Instant;

use crate::direction::Direction;
use crate::testing::fixtures::*;

use super::*;
use aws_smithy_mocks::{MockResponse, RuleMode};
use aws_smithy_types::error::ErrorMetadata;

/// A cutoff no test reaches.
fn later() -> Instant {
    Instant::now() + std::time::Duration::from_secs(3600)
}

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
    let out = ec2_batch(&ec2, Direction::Start, ids(100), later()).await;
    assert_eq!(out.len(), 100);
    assert!(out.iter().all(|(_, o)| *o == Outcome::Done));
    assert_eq!(ok.num_calls(), 1);
}

#[tokio::test]
async fn one_bad_instance_is_isolated_by_halving_and_the_rest_stop() {
    let mut batch = ids(64);
    batch[37] = "i-bad00000000000000".into();
    let (ec2, refuse) = ec2_refusing("i-bad00000000000000", "UnsupportedOperation");
    let out = ec2_batch(&ec2, Direction::Stop, batch, later()).await;
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
    let out = ec2_batch(&ec2, Direction::Stop, ids(2), later()).await;
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
    let out = ec2_batch(&ec2, Direction::Stop, ids(8), later()).await;
    assert!(out.iter().all(|(_, o)| matches!(o, Outcome::Failed(m) if m.contains("RequestLimitExceeded"))));
    let sizes = sizes.lock().unwrap();
    assert!(!sizes.is_empty() && sizes.iter().all(|n| *n == 8), "never split into more throttled calls: {sizes:?}");
}

type Calls = std::sync::Arc<std::sync::Mutex<Vec<(bool, usize)>>>;

/// A mock EC2 whose StopInstances refuses with `code` to hibernate a batch holding one of `unable`
/// (its message naming that instance when `named`); each StopInstances call's (hibernate, size) kept.
fn ec2_hibernating(unable: &'static [&'static str], code: &'static str, named: bool) -> (aws_sdk_ec2::Client, Calls) {
    let calls = Calls::default();
    let seen = std::sync::Arc::clone(&calls);
    let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_compute_response(move |r| {
        let hibernate = r.hibernate() == Some(true);
        seen.lock().unwrap().push((hibernate, r.instance_ids().len()));
        match r.instance_ids().iter().find(|id| unable.contains(&id.as_str())) {
            Some(id) if hibernate => {
                let message = if named {
                    format!("Instance {id} is not ready to hibernate yet, please try again later.")
                } else {
                    "The instance configuration does not support hibernation.".to_owned()
                };
                let meta = ErrorMetadata::builder().code(code).message(message).build();
                MockResponse::Error(StopInstancesError::generic(meta))
            }
            _ => MockResponse::Output(StopInstancesOutput::builder().build()),
        }
    });
    (testkit::mock_ec2_with(RuleMode::MatchAny, &[&stop]), calls)
}

fn fallbacks(out: &[(String, Outcome)]) -> Vec<(&str, &str)> {
    let mut found: Vec<_> = out
        .iter()
        .filter_map(|(id, o)| match o {
            Outcome::Fallback(why) => Some((id.as_str(), why.as_str())),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn instances_refused_hibernation_by_name_are_taken_out_and_stopped_together_normally() {
    let unable = &["i-00000000000000002", "i-00000000000000005"];
    let (ec2, calls) = ec2_hibernating(unable, "UnsupportedHibernationConfiguration", true);
    let out = hibernate_batch(&ec2, ids(8), later()).await;
    assert_eq!(out.len(), 8, "every instance has an outcome");
    assert_eq!(out.iter().filter(|(_, o)| *o == Outcome::Done).count(), 6, "{out:?}");
    let fell_back = fallbacks(&out);
    assert_eq!(fell_back.iter().map(|(id, _)| *id).collect::<Vec<_>>(), unable);
    assert!(
        fell_back[0].1.starts_with("not hibernated (StopInstances failed: UnsupportedHibernationConfiguration: ")
            && fell_back[0].1.ends_with("); stopped normally instead"),
        "{fell_back:?}"
    );
    // The hibernate batch is sent again whole without each refused instance; the two go in one stop.
    assert_eq!(*calls.lock().unwrap(), [(true, 8), (true, 7), (true, 6), (false, 2)]);
}

#[tokio::test]
async fn a_hibernation_refusal_that_names_no_instance_is_found_by_halving() {
    let (ec2, calls) = ec2_hibernating(&["i-00000000000000005"], "UnsupportedOperation", false);
    let out = hibernate_batch(&ec2, ids(8), later()).await;
    assert_eq!(out.iter().filter(|(_, o)| *o == Outcome::Done).count(), 7, "{out:?}");
    let fell_back = fallbacks(&out);
    assert_eq!(fell_back.len(), 1);
    assert_eq!(fell_back[0].0, "i-00000000000000005");
    assert!(fell_back[0].1.contains("UnsupportedOperation"), "{fell_back:?}");
    // 8 → 0..4 (good) + 4..8 → 4..6 → 4 (good) + 5 (refused), and 6..8 (good); then the normal stop.
    let calls = calls.lock().unwrap();
    assert_eq!(*calls, [(true, 8), (true, 4), (true, 4), (true, 2), (true, 1), (true, 1), (true, 2), (false, 1)]);
}

#[tokio::test]
async fn an_error_that_is_not_about_hibernation_is_no_fallback() {
    let (ec2, calls) = ec2_hibernating(&["i-00000000000000001"], "IncorrectInstanceState", true);
    let out = hibernate_batch(&ec2, ids(2), later()).await;
    assert!(fallbacks(&out).is_empty(), "{out:?}");
    assert!(matches!(&out[1].1, Outcome::Skipped(m) if m.contains("IncorrectInstanceState")), "{out:?}");
    assert!(calls.lock().unwrap().iter().all(|(hibernate, _)| *hibernate), "never stopped without hibernation");
}

// A run over instances that ask for hibernation: those able to go in a hibernate batch of their own,
// the one not launched with it enabled in the normal batch, reported in notes.
#[tokio::test]
async fn a_stop_hibernates_the_tagged_instances_that_can_and_notes_the_others() {
    use crate::request::Action;
    use crate::testing::{self, Rules, HIBERNATE, KEY};
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::types::{
        DeviceType, HibernationOptions, Instance, InstanceState, InstanceStateName, Reservation, Tag,
    };
    let instance = |id: &str, hibernate: Option<&str>, configured: bool| {
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let mut instance = Instance::builder()
            .instance_id(id)
            .state(InstanceState::builder().name(InstanceStateName::Running).build())
            .root_device_type(DeviceType::Ebs)
            .hibernation_options(HibernationOptions::builder().configured(configured).build())
            .tags(tag(KEY, "office"));
        if let Some(value) = hibernate {
            instance = instance.tags(tag(HIBERNATE, value));
        }
        instance.build()
    };
    // Issue 20 item 12: a Spot Instance, though tagged and configured, is stopped normally and noted.
    let mut spot = instance("i-spot", Some("true"), true);
    spot.instance_lifecycle = Some(aws_sdk_ec2::types::InstanceLifecycleType::Spot);
    spot.spot_instance_request_id = Some("sir-persistent".into());
    let instances = vec![
        instance("i-sleeps", Some("true"), true),
        instance("i-also", Some(" TRUE "), true),
        instance("i-unable", Some("true"), false),
        instance("i-plain", None, true),
        instance("i-no", Some("false"), true),
        spot,
    ];
    let requests = mock!(aws_sdk_ec2::Client::describe_spot_instance_requests).then_output(|| {
        use aws_sdk_ec2::operation::describe_spot_instance_requests::DescribeSpotInstanceRequestsOutput;
        use aws_sdk_ec2::types::{SpotInstanceRequest, SpotInstanceType};
        let request = SpotInstanceRequest::builder()
            .spot_instance_request_id("sir-persistent")
            .r#type(SpotInstanceType::Persistent)
            .build();
        DescribeSpotInstanceRequestsOutput::builder().spot_instance_requests(request).build()
    });
    let listing = mock!(aws_sdk_ec2::Client::describe_instances).then_output(move || {
        let reservation = Reservation::builder().set_instances(Some(instances.clone())).build();
        DescribeInstancesOutput::builder().reservations(reservation).build()
    });
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&sent);
    let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_compute_output(move |r| {
        let mut ids = r.instance_ids().to_vec();
        ids.sort();
        seen.lock().unwrap().push((r.hibernate() == Some(true), ids));
        StopInstancesOutput::builder().build()
    });
    let clients = testing::clients(Rules { ec2: vec![&listing, &requests, &stop], ..Default::default() });
    let cutoff = later();
    let summary = crate::run::run(
        &clients,
        &testing::no_definitions(),
        &testing::settings(),
        &testing::request(Action::Stop),
        cutoff,
    )
    .await
    .expect("a summary");
    assert_eq!(summary.stopped.len(), 6, "{summary:?}");
    let mut notes: Vec<_> = summary.notes.iter().map(|n| (n.resource.as_str(), n.note.as_str())).collect();
    notes.sort();
    assert_eq!(notes.len(), 2, "{summary:?}");
    assert_eq!(notes[0].0, "ec2-instance/i-spot");
    assert!(notes[0].1.starts_with("not hibernated: a Spot Instance"), "{summary:?}");
    assert_eq!(notes[1].0, "ec2-instance/i-unable");
    assert!(notes[1].1.contains("HibernationOptions.Configured"), "{summary:?}");
    let mut sent = sent.lock().unwrap().clone();
    sent.sort();
    let strings = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        sent,
        [(false, strings(&["i-no", "i-plain", "i-spot", "i-unable"])), (true, strings(&["i-also", "i-sleeps"]))]
    );
}

// Item 14: a start that fell back to stopped (no kms:CreateGrant: Client.InternalError) must not be
// reported as started run after run.
#[tokio::test]
async fn a_start_that_fell_back_to_stopped_is_reported_failed_with_its_state_reason() {
    let reason_ =
        StateReason::builder().code("Client.InternalError").message("Client.InternalError: Client error on launch");
    let listing = ec2_listing(vec![
        instance("i-kms", InstanceStateName::Stopped).state_reason(reason_.build()).build(),
        instance("i-fine", InstanceStateName::Stopped)
            .state_reason(StateReason::builder().code("Client.UserInitiatedShutdown").build())
            .build(),
    ]);
    let start = mock!(aws_sdk_ec2::Client::start_instances).then_output(|| StartInstancesOutput::builder().build());
    let clients = testing::clients(Rules { ec2: vec![&listing, &start], ..Default::default() });
    let summary = run_with(&clients, Action::Start).await;
    assert_eq!(summary.started, ["ec2-instance/i-fine"], "{summary:?}");
    let why = reason(&summary, "ec2-instance/i-kms");
    assert!(why.starts_with("its last start fell back to stopped (Client.InternalError: "), "{why}");
    assert!(why.contains("SchedulerKmsKeyArns") && why.ends_with("; started again"), "{why}");
    assert_eq!(start.num_calls(), 1, "tried again: a fixed key grant lets it start");
}

// Item 15: what AWS won't stop is known from the listing and skipped with the reason; nothing is
// sent for it, and no batch is split over it.
#[tokio::test]
async fn instances_aws_cannot_stop_are_skipped_with_the_reason_without_splitting_batches() {
    let spot = |id: &str, request: &str| {
        instance(id, InstanceStateName::Running)
            .instance_lifecycle(InstanceLifecycleType::Spot)
            .spot_instance_request_id(request)
            .build()
    };
    let listing = ec2_listing(vec![
        instance("i-plain", InstanceStateName::Running).build(),
        instance("i-store", InstanceStateName::Running).root_device_type(DeviceType::InstanceStore).build(),
        spot("i-oneshot", "sir-once"),
        spot("i-persist", "sir-keep"),
        instance("i-fleet", InstanceStateName::Running).instance_lifecycle(InstanceLifecycleType::Spot).build(),
        instance("i-guarded", InstanceStateName::Running).build(),
    ]);
    let requests = mock!(aws_sdk_ec2::Client::describe_spot_instance_requests).then_output(|| {
        let request = |id: &str, kind| SpotInstanceRequest::builder().spot_instance_request_id(id).r#type(kind).build();
        DescribeSpotInstanceRequestsOutput::builder()
            .spot_instance_requests(request("sir-once", SpotInstanceType::OneTime))
            .spot_instance_requests(request("sir-keep", SpotInstanceType::Persistent))
            .build()
    });
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&sent);
    let guarded = mock!(aws_sdk_ec2::Client::stop_instances)
        .match_requests(move |r| {
            seen.lock().unwrap().push(r.instance_ids().to_vec());
            r.instance_ids().iter().any(|id| id == "i-guarded")
        })
        .then_error(|| {
            StopInstancesError::generic(error_meta(
                "OperationNotPermitted",
                "The instance 'i-guarded' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.",
            ))
        });
    let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
    let clients = testing::clients(Rules { ec2: vec![&listing, &requests, &guarded, &stop], ..Default::default() });
    let summary = run_with(&clients, Action::Stop).await;
    assert_eq!(summary.stopped, ["ec2-instance/i-persist", "ec2-instance/i-plain"], "{summary:?}");
    assert!(summary.failed.is_empty(), "{summary:?}");
    assert!(reason(&summary, "ec2-instance/i-store").contains("instance-store root volume"));
    assert!(reason(&summary, "ec2-instance/i-oneshot").contains("one-time Spot Instance"));
    assert!(reason(&summary, "ec2-instance/i-fleet").contains("one-time Spot Instance"));
    assert!(reason(&summary, "ec2-instance/i-guarded").contains("stop protection (DisableApiStop)"));
    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 2, "the protected instance taken out, the rest sent again whole: {sent:?}");
    assert_eq!(sent[0].len(), 3, "{sent:?}");
    assert_eq!(sent[1].len(), 2, "{sent:?}");
}
