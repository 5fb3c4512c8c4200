//! Fan-out: a run of many targets sent as one SQS message per target, which Lambda delivers back to
//! this function (its workers) through an event source mapping.
//!
//! - The queue is FIFO, each message grouped by its target (`<account>/<region>`): SQS hands a group's
//!   messages to one worker at a time, in order, so two runs never work on one target at once (what
//!   `ReservedConcurrentExecutions: 1` guarantees an inline run). Its deduplication id is a hash of the
//!   message, so a hub invocation that Lambda delivers twice sends each target once.
//! - [`dispatch`] sends them with SendMessageBatch, 10 a call; an entry SQS refused for its own
//!   reasons is sent once more, and what still fails is a failure of the run.
//! - A worker reads [`TargetMessage`]s from the SQS event: one older than one interval is dropped (the
//!   next run supersedes it); one whose target failed as a whole is handed back to SQS
//!   (`ReportBatchItemFailures`) and made visible again at once, so it is tried once more in this run,
//!   then moved to the dead-letter queue (maxReceiveCount 2).

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use stackhand::aws::AwsResultExt as _;

use crate::request::{self, Request};
use crate::summary::Failed;
use crate::targets::Target;

/// What a message of ours says it is (`kind`), so that another producer's message on the queue is
/// refused by name rather than misread.
pub const MESSAGE_KIND: &str = "stackhand.instance-scheduler.target";
/// SendMessageBatch takes at most 10 entries.
const BATCH: usize = 10;

/// One target's share of a run: the run's request, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetMessage {
    pub kind: String,
    pub account: String,
    pub region: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    pub dry_run: bool,
    /// The run's instant (RFC 3339): every target is evaluated at the same one.
    pub time: String,
}

/// A message the worker can't act on: its body, or its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message {id}: its body is not a target message of instance-scheduler ({error}); was something else sent to SCHEDULER_QUEUE_URL?")]
    Body { id: String, error: String },
    #[error("message {id}: {error}")]
    Request { id: String, error: String },
}

impl TargetMessage {
    pub fn new(request: &Request, target: &Target) -> Self {
        Self {
            kind: MESSAGE_KIND.into(),
            account: target.account.clone(),
            region: target.region.clone(),
            action: request.action.name().into(),
            schedule: request.schedule.clone(),
            dry_run: request.dry_run,
            time: request.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    pub fn target(&self) -> Target {
        Target { account: self.account.clone(), region: self.region.clone() }
    }

    /// The request it carries, read as an invocation's would be.
    fn request(&self, now: DateTime<Utc>, interval: TimeDelta) -> Result<Request, request::EventError> {
        let event =
            json!({"action": self.action, "schedule": self.schedule, "dry_run": self.dry_run, "time": self.time});
        request::parse(&event, now, interval)
    }

    fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The same message, the same id: SQS drops a copy sent within 5 minutes of the first.
    fn deduplication_id(&self) -> String {
        Sha256::digest(self.body().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Sends one message per target, `concurrency` calls at a time; what could not be sent, per target.
pub async fn dispatch(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    request: &Request,
    targets: &[Target],
    concurrency: usize,
) -> Vec<Failed> {
    let sent = stream::iter(targets.chunks(BATCH)).map(|chunk| send_batch(sqs, queue, request, chunk));
    let failed: Vec<Vec<Failed>> = sent.buffer_unordered(concurrency.max(1)).collect().await;
    failed.concat()
}

/// Up to 10 targets' messages in one SendMessageBatch (and one more for what SQS refused for reasons of
/// its own); what could not be sent.
async fn send_batch(sqs: &aws_sdk_sqs::Client, queue: &str, request: &Request, chunk: &[Target]) -> Vec<Failed> {
    let mut failed = Vec::new();
    let messages: Vec<TargetMessage> = chunk.iter().map(|t| TargetMessage::new(request, t)).collect();
    let mut pending: Vec<usize> = (0..messages.len()).collect();
    // The first send, and one more for the entries SQS refused for reasons of its own.
    for attempt in 0..2 {
        let entries = pending.iter().map(|&i| {
            let message = &messages[i];
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(message.body())
                .message_group_id(message.target().to_string())
                .message_deduplication_id(message.deduplication_id())
                .build()
        });
        let entries: Result<Vec<_>, _> = entries.collect();
        let sent = match entries {
            Ok(entries) => {
                sqs.send_message_batch().queue_url(queue).set_entries(Some(entries)).send().await.op("SendMessageBatch")
            }
            Err(e) => {
                let error = format!("its SendMessageBatch entry could not be built: {e}");
                failed.extend(pending.iter().map(|&i| unsent(&messages[i], &error)));
                break;
            }
        };
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                failed.extend(pending.iter().map(|&i| unsent(&messages[i], &e.to_string())));
                pending.clear();
                break;
            }
        };
        let mut retry = Vec::new();
        for entry in out.failed() {
            let Some(index) = entry.id().parse::<usize>().ok().filter(|i| *i < messages.len()) else { continue };
            let error = format!("SendMessageBatch failed: {}: {}", entry.code(), entry.message().unwrap_or_default());
            if entry.sender_fault() || attempt == 1 {
                failed.push(unsent(&messages[index], &error));
            } else {
                retry.push(index);
            }
        }
        pending = retry;
        if pending.is_empty() {
            break;
        }
    }
    failed
}

fn unsent(message: &TargetMessage, error: &str) -> Failed {
    Failed {
        resource: format!("{} (dispatch)", message.target()),
        error: format!("{error}; its message was not sent, so this run leaves the target as it is"),
    }
}

/// The SQS event Lambda delivers from the queue, if `event` is one.
pub fn sqs_event(event: &Value) -> Option<SqsEvent> {
    let records = event.get("Records")?.as_array()?;
    if records.is_empty() || !records.iter().all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs")) {
        return None;
    }
    serde_json::from_value(event.clone()).ok()
}

/// What a worker does with one SQS message.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Run this target for this request.
    Run(Target, Request),
    /// Older than one interval: the next run supersedes it.
    Stale { target: Target, age: TimeDelta },
    /// Can't be acted on.
    Bad(MessageError),
}

/// A message's id, its FIFO group, and what to do with it.
pub struct Received {
    pub id: String,
    pub group: String,
    pub receipt: Option<String>,
    pub work: Work,
}

/// Each message of `event`, read: its age from SQS's `SentTimestamp`.
pub fn receive(event: SqsEvent, now: DateTime<Utc>, interval: TimeDelta) -> Vec<Received> {
    event.records.into_iter().map(|record| read(record, now, interval)).collect()
}

fn read(record: SqsMessage, now: DateTime<Utc>, interval: TimeDelta) -> Received {
    let id = record.message_id.clone().unwrap_or_default();
    let group = record.attributes.get("MessageGroupId").cloned().unwrap_or_else(|| id.clone());
    let receipt = record.receipt_handle.clone();
    let body = record.body.as_deref().unwrap_or_default();
    let work = match serde_json::from_str::<TargetMessage>(body) {
        Err(e) => Work::Bad(MessageError::Body { id: id.clone(), error: e.to_string() }),
        Ok(message) if message.kind != MESSAGE_KIND => {
            Work::Bad(MessageError::Body { id: id.clone(), error: format!("kind \"{}\"", message.kind) })
        }
        Ok(message) => {
            let sent = sent_at(&record.attributes);
            let age = sent.map(|sent| now - sent).unwrap_or_default();
            if age > interval {
                Work::Stale { target: message.target(), age }
            } else {
                match message.request(now, interval) {
                    Ok(request) => Work::Run(message.target(), request),
                    Err(e) => Work::Bad(MessageError::Request { id: id.clone(), error: e.to_string() }),
                }
            }
        }
    };
    Received { id, group, receipt, work }
}

/// When SQS accepted the message (`SentTimestamp`, milliseconds since the epoch).
fn sent_at(attributes: &HashMap<String, String>) -> Option<DateTime<Utc>> {
    let millis = attributes.get("SentTimestamp")?.parse::<i64>().ok()?;
    DateTime::from_timestamp_millis(millis)
}

/// Makes the messages of `receipts` visible again at once, so that SQS hands them to a worker now
/// rather than after the visibility timeout (when they would be older than one interval). A message
/// SQS has handed out twice goes to the dead-letter queue instead.
pub async fn retry_now(sqs: &aws_sdk_sqs::Client, queue: &str, receipts: &[String]) {
    for receipt in receipts {
        let changed = sqs.change_message_visibility().queue_url(queue).receipt_handle(receipt).visibility_timeout(0);
        if let Err(e) = changed.send().await.op("ChangeMessageVisibility") {
            // It comes back after the visibility timeout instead, and is then dropped as stale.
            tracing::warn!(error = %e, "a failed target's message could not be made visible again");
        }
    }
}

#[cfg(test)]
mod tests;
