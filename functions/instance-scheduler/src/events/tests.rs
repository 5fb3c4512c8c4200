//! The run's events: which a run gives, how they are cut and grouped to PutEvents' limits, and what
//! becomes of EventBridge's partial failures (aws-smithy-mocks: moto never fails an entry).

use aws_sdk_eventbridge::operation::put_events::{PutEventsError, PutEventsOutput};
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};
use serde_json::json;
use tokio::time::{Duration, Instant};

use super::*;
use crate::request::Action;
use crate::summary::Failed;
use crate::testing::{error_meta, request};

fn target(account: &str) -> Target {
    Target { account: account.into(), region: "eu-west-1".into() }
}

fn stopped(names: impl IntoIterator<Item = String>) -> Summary {
    Summary { stopped: names.into_iter().collect(), unchanged: 4, ..Default::default() }
}

#[test]
fn a_target_that_moved_something_gives_one_action_each_failure_one_failed_and_a_quiet_one_none() {
    let mut failing = stopped(["ec2-instance/i-1".to_owned()]);
    failing.failed.push(Failed { resource: "rds-instance/db".into(), error: "InvalidDBInstanceState".into() });
    let runs: Vec<(Target, Result<Summary, String>)> = vec![
        (target("111111111111"), Ok(failing)),
        (target("222222222222"), Ok(Summary { unchanged: 7, ..Default::default() })),
        (target("333333333333"), Err("AccessDenied (role …)".into())),
    ];
    let events = of_runs(&request(Action::Reconcile), &runs);
    let kinds: Vec<&str> = events.iter().map(|e| e.detail_type).collect();
    assert_eq!(kinds, [SCHEDULING_ACTION, SCHEDULING_FAILED, SCHEDULING_FAILED]);
    let action = &events[0].detail;
    assert_eq!(action["account"], "111111111111");
    assert_eq!(action["region"], "eu-west-1");
    assert_eq!(action["action"], "reconcile");
    assert_eq!(action["stopped"], json!(["ec2-instance/i-1"]));
    assert_eq!(
        action["counts"],
        json!({"started": 0, "stopped": 1, "skipped": 0, "failed": 1, "unchanged": 4, "deferred": 0})
    );
    assert!(action.get("omitted").is_none());
    assert_eq!(events[1].detail["resource"], "rds-instance/db");
    assert_eq!(events[1].detail["error"], "InvalidDBInstanceState");
    assert_eq!(events[2].detail["account"], "333333333333");
    assert_eq!(events[2].detail["resource"], json!(null), "a whole target names no resource");
    assert_eq!(events[2].detail["error"], "AccessDenied (role …)");
}

#[test]
fn a_target_that_moved_more_than_an_entry_holds_is_cut_to_fit_and_says_how_many_were_left_out() {
    let names = (0..20_000).map(|i| format!("ec2-instance/i-{i:017x}"));
    let runs: Vec<(Target, Result<Summary, String>)> = vec![(target("111111111111"), Ok(stopped(names)))];
    let events = of_runs(&request(Action::Stop), &runs);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert!(event.size() <= MAX_REQUEST_BYTES, "{} bytes", event.size());
    let kept = event.detail["stopped"].as_array().unwrap().len();
    assert!(kept > 5_000, "as many as fit: {kept}");
    assert_eq!(event.detail["omitted"], json!(20_000 - kept));
    assert_eq!(event.detail["counts"]["stopped"], 20_000, "the counts are whole");
    // They are the first names, and one more would not have fitted.
    assert_eq!(event.detail["stopped"][kept - 1], format!("ec2-instance/i-{:017x}", kept - 1));
    let mut more = event.detail.clone();
    more["stopped"].as_array_mut().unwrap().push(json!(format!("ec2-instance/i-{kept:017x}")));
    more["omitted"] = json!(20_000 - kept - 1);
    assert!(Event::new(SCHEDULING_ACTION, more).size() > MAX_REQUEST_BYTES);
}

#[test]
fn requests_hold_at_most_ten_entries_and_256_kib() {
    let small: Vec<Event> = (0..23).map(|i| Event::new(SCHEDULING_FAILED, json!({"n": i}))).collect();
    let sizes: Vec<usize> = requests(&small).iter().map(|r| r.len()).collect();
    assert_eq!(sizes, [10, 10, 3]);
    let big = |kib: usize| Event::new(SCHEDULING_ACTION, json!({"pad": "x".repeat(kib * 1024)}));
    let events = vec![big(100), big(100), big(100), big(10)];
    let grouped = requests(&events);
    assert_eq!(grouped.iter().map(|r| r.len()).collect::<Vec<_>>(), [2, 2]);
    for request in &grouped {
        assert!(request.iter().map(Event::size).sum::<usize>() <= MAX_REQUEST_BYTES);
    }
    assert!(requests(&[]).is_empty());
}

fn events(n: usize) -> Vec<Event> {
    (0..n).map(|i| Event::new(SCHEDULING_FAILED, json!({"resource": format!("ec2-instance/i-{i}")}))).collect()
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// An EventBridge client answered by `rules`.
fn eventbridge(mode: RuleMode, rules: &[&Rule]) -> aws_sdk_eventbridge::Client {
    let interceptor = rules.iter().fold(MockResponseInterceptor::new(), |i, r| i.with_rule(r)).rule_mode(mode);
    stackhand::client!(aws_sdk_eventbridge, &testkit::mock_sdk_config(), builder => builder.interceptor(interceptor))
}

fn entry_result(code: Option<&str>) -> PutEventsResultEntry {
    match code {
        Some(code) => PutEventsResultEntry::builder().error_code(code).error_message("no").build(),
        None => PutEventsResultEntry::builder().event_id("e").build(),
    }
}

#[tokio::test]
async fn entries_eventbridge_throttled_are_sent_once_more_and_then_nothing_is_failed() {
    let first = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| r.entries().len() == 3 && r.entries().iter().all(|e| e.event_bus_name() == Some("ops")))
        .then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(entry_result(None))
                .entries(entry_result(Some("ThrottlingException")))
                .entries(entry_result(None))
                .build()
        });
    let retry = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| {
            r.entries().len() == 1 && r.entries()[0].detail().is_some_and(|d| d.contains("ec2-instance/i-1\""))
        })
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).entries(entry_result(None)).build());
    let client = eventbridge(RuleMode::Sequential, &[&first, &retry]);
    let failed = put(&client, "ops", &events(3), later()).await;
    assert_eq!(failed, []);
    assert_eq!((first.num_calls(), retry.num_calls()), (1, 1));
}

#[tokio::test]
async fn entries_still_failing_or_refused_are_one_failure_naming_the_bus_and_the_permission() {
    let throttled = || {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(entry_result(Some("ThrottlingException")))
            .entries(entry_result(None))
            .build()
    };
    let first = mock!(aws_sdk_eventbridge::Client::put_events).then_output(throttled);
    let again = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
        PutEventsOutput::builder().failed_entry_count(1).entries(entry_result(Some("ThrottlingException"))).build()
    });
    let client = eventbridge(RuleMode::Sequential, &[&first, &again]);
    let failed = put(&client, "default", &events(2), later()).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].resource, "events/default");
    assert!(
        failed[0].error.starts_with("1 of 2 event(s) not put on event bus default: ThrottlingException"),
        "{:?}",
        failed
    );
    assert!(failed[0].error.contains("events:PutEvents"), "{:?}", failed);

    // An entry error that another try won't mend is not retried.
    let denied = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
        PutEventsOutput::builder().failed_entry_count(1).entries(entry_result(Some("AccessDeniedException"))).build()
    });
    let client = eventbridge(RuleMode::Sequential, &[&denied]);
    let failed = put(&client, "default", &events(1), later()).await;
    assert_eq!((denied.num_calls(), failed.len()), (1, 1));

    // The whole call refused (no such bus, or no permission): every entry of it.
    let missing = mock!(aws_sdk_eventbridge::Client::put_events).then_error(|| {
        PutEventsError::generic(error_meta("ResourceNotFoundException", "Event bus ops does not exist."))
    });
    let client = eventbridge(RuleMode::MatchAny, &[&missing]);
    let failed = put(&client, "ops", &events(12), later()).await;
    assert_eq!(failed.len(), 2, "one per request: {failed:?}");
    assert!(failed[0].error.starts_with("10 of 10 event(s) not put on event bus ops: "), "{failed:?}");
    assert!(failed[0].error.contains("does not exist"), "{failed:?}");
    assert!(failed[1].error.starts_with("2 of 2 "), "{failed:?}");
}
