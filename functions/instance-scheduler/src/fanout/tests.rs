//! The targets' messages: their form, their age, and SendMessageBatch's answers that moto gives only
//! in part (entries refused, a whole call refused).

use aws_sdk_sqs::operation::send_message_batch::{SendMessageBatchError, SendMessageBatchOutput};
use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchResultEntry};
use aws_smithy_mocks::mock;
use std::sync::{Arc, Mutex};

use super::*;
use crate::request::Action;
use crate::testing::{error_meta, interceptor};

fn sqs(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_sqs::Client {
    let config = testkit::mock_sdk_config();
    stackhand::client!(aws_sdk_sqs, &config, builder => builder.interceptor(interceptor(rules, &[])))
}

/// A call's entries: id and message group.
type Entries = Vec<(String, String)>;

const QUEUE: &str = "https://sqs.eu-west-1.amazonaws.com/111122223333/stackhand-targets.fifo";

fn request() -> Request {
    let at = DateTime::parse_from_rfc3339("2026-11-24T19:00:00Z").unwrap().with_timezone(&Utc);
    Request { action: Action::Reconcile, schedule: None, dry_run: false, at }
}

fn targets(n: usize) -> Vec<Target> {
    (0..n)
        .map(|i| Target { account: format!("{:012}", 100_000_000_000u64 + i as u64), region: "eu-west-1".into() })
        .collect()
}

fn record(body: &str, sent: DateTime<Utc>) -> Value {
    json!({
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": body,
        "attributes": {"SentTimestamp": sent.timestamp_millis().to_string(), "MessageGroupId": "111122223333/eu-west-1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:111122223333:stackhand-targets.fifo",
        "awsRegion": "eu-west-1",
    })
}

#[test]
fn a_message_carries_the_runs_request_and_reads_back_as_it() {
    let target = &targets(1)[0];
    let message = TargetMessage::new(&request(), target);
    let body = message.body();
    assert_eq!(serde_json::from_str::<TargetMessage>(&body).unwrap(), message);
    assert_eq!(message.request(request().at, TimeDelta::minutes(5)).unwrap(), request());
    assert_eq!(message.deduplication_id(), TargetMessage::new(&request(), target).deduplication_id(), "stable");
    assert_ne!(message.deduplication_id(), TargetMessage::new(&request(), &targets(2)[1]).deduplication_id());
    assert_eq!(message.deduplication_id().len(), 64, "SQS takes up to 128 characters");
}

#[test]
fn only_an_sqs_event_is_a_workers() {
    assert!(sqs_event(&json!({"detail-type": "Scheduled Event", "time": "2026-11-24T19:00:00Z"})).is_none());
    assert!(sqs_event(&json!({"action": "stop"})).is_none());
    assert!(sqs_event(&json!({"Records": []})).is_none());
    assert!(sqs_event(&json!({"Records": [{"eventSource": "aws:s3"}]})).is_none());
    let body = TargetMessage::new(&request(), &targets(1)[0]).body();
    assert_eq!(sqs_event(&json!({"Records": [record(&body, request().at)]})).unwrap().records.len(), 1);
}

#[test]
fn a_message_older_than_one_interval_is_stale_and_a_foreign_one_is_bad() {
    let body = TargetMessage::new(&request(), &targets(1)[0]).body();
    let read_at = |body: &str, sent: DateTime<Utc>, now: DateTime<Utc>| {
        let event = sqs_event(&json!({"Records": [record(body, sent)]})).unwrap();
        receive(event, now, TimeDelta::minutes(5)).pop().unwrap()
    };
    let sent = request().at;
    let fresh = read_at(&body, sent, sent + TimeDelta::minutes(4));
    assert_eq!(
        (fresh.id.as_str(), fresh.group.as_str(), fresh.receipt.as_deref()),
        ("m-1", "111122223333/eu-west-1", Some("r-1"))
    );
    assert_eq!(fresh.work, Work::Run(targets(1)[0].clone(), request()));
    match read_at(&body, sent, sent + TimeDelta::minutes(6)).work {
        Work::Stale { age, .. } => assert_eq!(age, TimeDelta::minutes(6)),
        other => panic!("{other:?}"),
    }
    let foreign = body.replace(MESSAGE_KIND, "someone.else");
    assert!(matches!(read_at(&foreign, sent, sent).work, Work::Bad(MessageError::Body { .. })));
    assert!(matches!(read_at("not json", sent, sent).work, Work::Bad(MessageError::Body { .. })));
    let bad_action = body.replace("\"reconcile\"", "\"pause\"");
    match read_at(&bad_action, sent, sent).work {
        Work::Bad(MessageError::Request { error, .. }) => assert!(error.contains("action is \"pause\""), "{error}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn targets_go_ten_a_call_grouped_by_target_and_a_refused_entry_is_sent_once_more() {
    let calls: Arc<Mutex<Vec<Entries>>> = Arc::default();
    let seen = Arc::clone(&calls);
    // The first call's entry 3 is refused by SQS (InternalError), entry 4 for the sender's fault.
    let batch = mock!(aws_sdk_sqs::Client::send_message_batch).then_compute_output(move |r| {
        let entries: Vec<(String, String)> = r
            .entries()
            .iter()
            .map(|e| (e.id().to_owned(), e.message_group_id().unwrap_or_default().to_owned()))
            .collect();
        let first = seen.lock().unwrap().is_empty();
        seen.lock().unwrap().push(entries.clone());
        let refused = |id: &str, fault: bool| {
            BatchResultErrorEntry::builder().id(id).code("InternalError").sender_fault(fault).build().unwrap()
        };
        let mut out = SendMessageBatchOutput::builder().set_failed(Some(Vec::new())).set_successful(Some(Vec::new()));
        for (id, _) in &entries {
            match (first, id.as_str()) {
                (true, "3") => out = out.failed(refused("3", false)),
                (true, "4") => out = out.failed(refused("4", true)),
                _ => {
                    let ok = SendMessageBatchResultEntry::builder().id(id).message_id("x").md5_of_message_body("y");
                    out = out.successful(ok.build().unwrap());
                }
            }
        }
        out.build().unwrap()
    });
    let sqs = sqs(&[&batch]);
    let failed = dispatch(&sqs, QUEUE, &request(), &targets(23), 1).await;
    let calls = calls.lock().unwrap().clone();
    let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 1, 10, 3], "the refused entry alone again, then the next chunks");
    assert_eq!(calls[1][0].0, "3");
    assert_eq!(calls[0][0].1, "100000000000/eu-west-1", "grouped by target");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].resource, "100000000004/eu-west-1 (dispatch)");
    assert!(failed[0].error.contains("InternalError") && failed[0].error.contains("not sent"), "{failed:?}");
}

#[tokio::test]
async fn a_call_refused_as_a_whole_fails_its_targets_and_names_the_queue_error() {
    let denied = mock!(aws_sdk_sqs::Client::send_message_batch).then_error(|| {
        SendMessageBatchError::generic(error_meta("AccessDenied", "not authorized to perform sqs:sendmessage"))
    });
    let sqs = sqs(&[&denied]);
    let failed = dispatch(&sqs, QUEUE, &request(), &targets(3), 8).await;
    assert_eq!(failed.len(), 3);
    assert!(failed[0].error.starts_with("SendMessageBatch failed: AccessDenied"), "{failed:?}");
}

#[test]
fn the_sample_worker_event_is_read_as_lambda_delivers_it() {
    let sample: Value =
        serde_json::from_str(include_str!("../../../../events/instance-scheduler/worker-sqs.json")).unwrap();
    let event = sqs_event(&sample).expect("events/instance-scheduler/worker-sqs.json is an SQS event");
    let sent = DateTime::from_timestamp_millis(1_763_924_400_000).unwrap();
    let mut read = receive(event.clone(), sent + TimeDelta::seconds(5), TimeDelta::minutes(5));
    match read.pop().unwrap().work {
        Work::Run(target, request) => {
            assert_eq!((target.to_string(), request.dry_run), ("123456789012/eu-west-1".into(), true))
        }
        other => panic!("{other:?}"),
    }
    // Invoked today, it is long stale: the worker drops it and says so.
    assert!(matches!(receive(event, Utc::now(), TimeDelta::minutes(5)).pop().unwrap().work, Work::Stale { .. }));
}
