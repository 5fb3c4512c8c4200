//! Runs against mocked answers: a call that never answers, the cutoff, pacing, and the marker.

use crate::request::Action;
use crate::testing::{self, error_meta, Rules, KEY};
use aws_sdk_ec2::operation::create_tags::{CreateTagsError, CreateTagsOutput};
use aws_sdk_ec2::operation::start_instances::StartInstancesOutput;
use aws_sdk_ec2::operation::stop_instances::{StopInstancesError, StopInstancesOutput};
use aws_sdk_ec2::types::{DeviceType, Instance, InstanceState, InstanceStateName, Tag};
use aws_smithy_mocks::{mock, Rule};
use tokio::time::{Duration, Instant};

use crate::clients::Clients;
use crate::direction::Direction;
use crate::run::run;
use crate::settings::SCHEDULE_APPLIED_TAG;
use crate::summary::Summary;
use crate::testing::fixtures::*;

/// A run of `{"action": "stop"}` over one running instance, whose `hanging` calls never answer,
/// with a cutoff 10 s on; the summary and how long past the cutoff it came.
async fn stop_with_hanging(hanging: &'static [&'static str]) -> (Summary, Duration) {
    let config = testing::config_with(testing::hanging_on(hanging));
    let listing = ec2_listing(vec![instance("i-hangs", InstanceStateName::Running).build()]);
    // The answer the HTTP client never delivers when StopInstances hangs.
    let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
    let clients = testing::clients_on(&config, Rules { ec2: vec![&listing, &stop], ..Default::default() });
    let cutoff = Instant::now() + Duration::from_secs(10);
    let (settings, request) = (testing::settings(), testing::request(Action::Stop));
    let definer = testing::no_definitions();
    let run = run(&clients, &definer, &settings, &request, cutoff);
    let summary = stackhand::aws::within(cutoff, run).await.expect("a summary");
    (summary, Instant::now().saturating_duration_since(cutoff))
}

// Item 16: an attempt that hangs (up to the 60 s attempt timeout) ends at the run's cutoff, and
// the run still answers with its summary.
#[tokio::test(start_paused = true)]
async fn a_call_that_hangs_ends_at_the_cutoff_and_the_run_still_sums_up() {
    let (summary, late) = stop_with_hanging(&["StopInstances"]).await;
    assert_eq!(late, Duration::ZERO, "ended past the cutoff");
    let why = reason(&summary, "ec2-instance/i-hangs");
    assert!(why.starts_with("StopInstances had no answer by the run's cutoff"), "{why}");
    assert_eq!(summary.failed.len(), 1, "{summary:?}");
}

#[tokio::test(start_paused = true)]
async fn a_listing_that_hangs_ends_at_the_cutoff_and_the_run_still_sums_up() {
    let (summary, late) = stop_with_hanging(&["DescribeDBInstances"]).await;
    assert_eq!(late, Duration::ZERO, "ended past the cutoff");
    let why = reason(&summary, "rds-instances (listing)");
    assert!(why.starts_with("DescribeDBInstances had no complete answer by the run's cutoff"), "{why}");
    // The listing took the run's time: what was found is reported, not attempted.
    assert!(reason(&summary, "ec2-instance/i-hangs").starts_with("not attempted"), "{summary:?}");
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sent_after_the_cutoff() {
    let listing = ec2_listing(vec![instance("i-late", InstanceStateName::Running).build()]);
    let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
    let clients = testing::clients(Rules { ec2: vec![&listing, &stop], ..Default::default() });
    let outcomes =
        crate::kinds::ec2::ec2_batch(&clients.ec2, Direction::Stop, vec!["i-late".into()], Instant::now()).await;
    assert!(matches!(&outcomes[0].1, crate::call::Outcome::Failed(m) if m.contains("not attempted")));
    assert_eq!(stop.num_calls(), 0);
}

/// An instance on `Mon-Fri 08:00-19:00 UTC`, with the marker `applied` if given.
fn scheduled(id: &str, state: InstanceStateName, applied: Option<&str>) -> Instance {
    let mut instance = Instance::builder()
        .instance_id(id)
        .state(InstanceState::builder().name(state).build())
        .root_device_type(DeviceType::Ebs)
        .tags(Tag::builder().key(KEY).value("Mon-Fri 08:00-19:00 UTC").build());
    if let Some(applied) = applied {
        instance = instance.tags(Tag::builder().key(SCHEDULE_APPLIED_TAG).value(applied).build());
    }
    instance.build()
}

/// A reconcile at Monday 2026-11-23 21:00 UTC, two hours after the 19:00 stop.
/// EC2's StartInstances metering (the API throttling guide): a request bucket of 5 refilled at
/// 2/s and a resource bucket of 1,000 instances refilled at 2/s, on Tokio's (paused) clock. A call
/// either bucket can't cover is answered RequestLimitExceeded, as EC2 does.
struct MeteredStarts {
    state: std::sync::Mutex<(f64, f64, Instant)>,
    throttled: std::sync::atomic::AtomicUsize,
    started: std::sync::atomic::AtomicUsize,
}

impl MeteredStarts {
    fn new() -> Self {
        Self {
            state: std::sync::Mutex::new((5.0, 1000.0, Instant::now())),
            throttled: Default::default(),
            started: Default::default(),
        }
    }

    fn call(&self, instances: usize) -> bool {
        let mut state = self.state.lock().unwrap();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.2).as_secs_f64();
        state.0 = (state.0 + 2.0 * elapsed).min(5.0);
        state.1 = (state.1 + 2.0 * elapsed).min(1000.0);
        state.2 = now;
        // A little slack for float rounding between two clocks read a moment apart.
        if state.0 < 1.0 - 1e-6 || state.1 < instances as f64 - 1e-6 {
            self.throttled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return false;
        }
        state.0 -= 1.0;
        state.1 -= instances as f64;
        self.started.fetch_add(instances, std::sync::atomic::Ordering::SeqCst);
        true
    }
}

// Issue 20 item 4: 2,000 stopped instances to start, 8 batches of 100 at a time, 297 s to do it in.
// Unpaced, the 1,000-instance bucket empties at once and everything after is throttled through the
// timeout and reported failed; paced, nothing is throttled, what the buckets admit in time starts,
// and the rest is deferred (no failure, no marker) to the next run.
#[tokio::test(start_paused = true)]
async fn starts_are_paced_to_ec2s_buckets_and_what_does_not_fit_is_deferred_not_failed() {
    let instances: Vec<Instance> =
        (0..2000).map(|i| instance(&format!("i-{i:017x}"), InstanceStateName::Stopped).build()).collect();
    let listing = ec2_listing(instances);
    let meter = std::sync::Arc::new(MeteredStarts::new());
    let seen = std::sync::Arc::clone(&meter);
    let start = mock!(aws_sdk_ec2::Client::start_instances).then_compute_response(move |r| {
        if seen.call(r.instance_ids().len()) {
            aws_smithy_mocks::MockResponse::Output(StartInstancesOutput::builder().build())
        } else {
            let meta = error_meta("RequestLimitExceeded", "Request limit exceeded.");
            aws_smithy_mocks::MockResponse::Error(
                aws_sdk_ec2::operation::start_instances::StartInstancesError::generic(meta),
            )
        }
    });
    let clients = testing::clients(Rules { ec2: vec![&listing, &start], ..Default::default() });
    let cutoff = Instant::now() + Duration::from_secs(297);
    let summary =
        run(&clients, &testing::no_definitions(), &testing::settings(), &testing::request(Action::Start), cutoff)
            .await
            .expect("a summary");
    assert_eq!(meter.throttled.load(std::sync::atomic::Ordering::SeqCst), 0, "never throttled");
    assert!(summary.failed.is_empty(), "{:?}", summary.failed.first());
    // 1,000 at once, then 100 per 50 s of refill: at 50, 100, 150, 200 and 250 s.
    assert_eq!(summary.started.len(), 1500);
    assert_eq!(meter.started.load(std::sync::atomic::Ordering::SeqCst), 1500);
    assert_eq!(summary.deferred.len(), 500);
    assert_eq!(summary.started.len() + summary.deferred.len(), 2000);
    assert!(Instant::now() < cutoff, "the run ended before its cutoff");
}

async fn reconcile_evening(clients: &Clients, dry_run: bool) -> Summary {
    let mut request = testing::request(Action::Reconcile);
    request.at = "2026-11-23T21:00:00Z".parse().unwrap();
    request.dry_run = dry_run;
    run(clients, &testing::no_definitions(), &testing::settings(), &request, later()).await.expect("a summary")
}

/// Each CreateTags request's instance ids and `key=value`.
type Sent = std::sync::Arc<std::sync::Mutex<Vec<(Vec<String>, String)>>>;

/// CreateTags, refused with `code` for any batch holding `bad`; every request's ids and value kept.
fn tagging_instances(bad: &'static str, code: &'static str) -> (Rule, Rule, Sent) {
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&sent);
    let refuse = mock!(aws_sdk_ec2::Client::create_tags)
        .match_requests(move |r| {
            let value = r.tags().iter().map(|t| format!("{}={}", t.key().unwrap(), t.value().unwrap())).collect();
            seen.lock().unwrap().push((r.resources().to_vec(), value));
            r.resources().iter().any(|id| id == bad)
        })
        .then_error(move || CreateTagsError::generic(error_meta(code, "not on this one")));
    let accept = mock!(aws_sdk_ec2::Client::create_tags).then_output(|| CreateTagsOutput::builder().build());
    (refuse, accept, sent)
}

#[tokio::test]
async fn a_marker_that_cannot_be_written_is_reported_with_its_resource_and_the_stop_stands() {
    let listing = ec2_listing(vec![
        scheduled("i-ok", InstanceStateName::Running, None),
        scheduled("i-locked", InstanceStateName::Running, Some("2026-11-23T08:00:00Z")),
        scheduled("i-asleep", InstanceStateName::Stopped, None),
        scheduled("i-refused", InstanceStateName::Running, None),
    ]);
    let refuse_stop = mock!(aws_sdk_ec2::Client::stop_instances)
        .match_requests(|r| r.instance_ids().iter().any(|id| id == "i-refused"))
        .then_error(|| StopInstancesError::generic(error_meta("UnsupportedOperation", "no")));
    let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
    let (refuse_tags, tags, sent) = tagging_instances("i-locked", "UnauthorizedOperation");
    let clients =
        testing::clients(Rules { ec2: vec![&listing, &refuse_stop, &stop, &refuse_tags, &tags], ..Default::default() });
    let summary = reconcile_evening(&clients, false).await;
    assert_eq!(summary.stopped, ["ec2-instance/i-locked", "ec2-instance/i-ok"], "{summary:?}");
    assert_eq!(summary.unchanged, 1, "{summary:?}");
    let why = reason(&summary, "ec2-instance/i-locked");
    assert!(why.starts_with("CreateTags failed: UnauthorizedOperation"), "{why}");
    assert!(
        why.ends_with(
            "its stackhand:schedule-applied tag was not written, so the next run applies the schedule to it again"
        ),
        "{why}"
    );
    assert!(reason(&summary, "ec2-instance/i-refused").contains("UnsupportedOperation"), "{summary:?}");
    assert_eq!(summary.failed.len(), 2, "{summary:?}");
    let sent = sent.lock().unwrap();
    // One call for the three done (the stopped two and the one already stopped), then by halves.
    assert_eq!(sent[0].0.len(), 3, "{sent:?}");
    assert!(sent.iter().all(|(_, tag)| tag == "stackhand:schedule-applied=2026-11-23T19:00:00Z stop"), "{sent:?}");
    let tagged: std::collections::BTreeSet<&str> = sent
        .iter()
        .filter(|(ids, _)| !ids.contains(&"i-locked".to_owned()))
        .flat_map(|(ids, _)| ids.iter().map(String::as_str))
        .collect();
    assert_eq!(tagged, ["i-asleep", "i-ok"].into(), "a failed stop is not marked: {sent:?}");
}

// Issue 20 item 7: a marker refused for the 50-tag limit is a note, not a failed run.
#[tokio::test]
async fn a_marker_refused_for_the_tag_limit_is_a_note_and_the_run_does_not_fail() {
    let listing = ec2_listing(vec![
        scheduled("i-ok", InstanceStateName::Running, None),
        scheduled("i-full", InstanceStateName::Running, None),
    ]);
    let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
    let (refuse_tags, tags, _) = tagging_instances("i-full", "TagLimitExceeded");
    let clients = testing::clients(Rules { ec2: vec![&listing, &stop, &refuse_tags, &tags], ..Default::default() });
    let summary = reconcile_evening(&clients, false).await;
    assert_eq!(summary.stopped, ["ec2-instance/i-full", "ec2-instance/i-ok"], "{summary:?}");
    assert!(summary.failed.is_empty(), "{summary:?}");
    let note = summary.notes.iter().find(|n| n.resource == "ec2-instance/i-full").expect("a note");
    assert!(note.note.contains("it has 50 tags, AWS's limit"), "{summary:?}");
}

#[tokio::test]
async fn a_dry_run_writes_no_marker() {
    let listing = ec2_listing(vec![
        scheduled("i-up", InstanceStateName::Running, None),
        scheduled("i-down", InstanceStateName::Stopped, None),
    ]);
    let (refuse_tags, tags, _) = tagging_instances("i-none", "UnauthorizedOperation");
    let stop = mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| StopInstancesOutput::builder().build());
    let clients = testing::clients(Rules { ec2: vec![&listing, &stop, &refuse_tags, &tags], ..Default::default() });
    let summary = reconcile_evening(&clients, true).await;
    assert_eq!(summary.stopped, ["ec2-instance/i-up"], "{summary:?}");
    assert_eq!((stop.num_calls(), refuse_tags.num_calls(), tags.num_calls()), (0, 0, 0));
    // The same run for real writes it on both.
    let summary = reconcile_evening(&clients, false).await;
    assert_eq!(summary.stopped, ["ec2-instance/i-up"], "{summary:?}");
    assert_eq!(tags.num_calls(), 1);
}
