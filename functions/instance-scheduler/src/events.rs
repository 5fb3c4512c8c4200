//! EventBridge events of a run, on the bus `SCHEDULER_EVENT_BUS` (the account's `default` bus unless
//! set; `none`: no events): one `Scheduling Action` per target in which something was started, stopped
//! or deferred, with its counts and those resources, and one `Scheduling Failed` per failure (a
//! resource, or a whole target). Source `stackhand.instance-scheduler`. A dry run puts none (it moved
//! nothing). Put from the hub's own account and Region, whatever the target.
//!
//! PutEvents takes at most 10 entries and 256 KiB a request, an entry's size counted as AWS counts it
//! (the UTF-8 bytes of Source, DetailType and Detail; no Time or Resources are sent): a target's lists
//! are cut to fit one entry, and how many were left out is said in it. Entries EventBridge answers
//! with a throttling or internal error are sent once more; what is still not put is a failure of the
//! run, so the alarm says so.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::call::aws_output;
use crate::request::Request;
use crate::summary::{Failed, Summary};
use crate::targets::Target;

pub const SOURCE: &str = "stackhand.instance-scheduler";
pub const SCHEDULING_ACTION: &str = "Scheduling Action";
pub const SCHEDULING_FAILED: &str = "Scheduling Failed";

/// PutEvents' limits: entries a call, and bytes a call (all its entries together).
const MAX_ENTRIES: usize = 10;
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Entry error codes worth one more try.
const RETRIED: [&str; 2] = ["ThrottlingException", "InternalFailure"];

/// One entry to put.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub detail_type: &'static str,
    pub detail: Value,
    /// Its serialized detail, as sent.
    text: String,
}

impl Event {
    fn new(detail_type: &'static str, detail: Value) -> Self {
        let text = detail.to_string();
        Self { detail_type, detail, text }
    }

    /// Its size as PutEvents counts it.
    pub fn size(&self) -> usize {
        SOURCE.len() + self.detail_type.len() + self.text.len()
    }
}

/// The run's events, from each target's summary (before they are merged).
pub fn of_runs<E: std::fmt::Display>(request: &Request, runs: &[(Target, Result<Summary, E>)]) -> Vec<Event> {
    let at = request.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let base = |target: &Target| json!({"account": target.account, "region": target.region, "action": request.action.name(), "at": at});
    let mut events = Vec::new();
    for (target, run) in runs {
        match run {
            Ok(run) => {
                if !(run.started.is_empty() && run.stopped.is_empty() && run.deferred.is_empty()) {
                    events.push(action(base(target), run));
                }
                for failed in &run.failed {
                    let mut detail = base(target);
                    detail["resource"] = json!(failed.resource);
                    detail["error"] = json!(failed.error);
                    events.push(Event::new(SCHEDULING_FAILED, detail));
                }
            }
            Err(error) => {
                let mut detail = base(target);
                detail["resource"] = Value::Null;
                detail["error"] = json!(error.to_string());
                events.push(Event::new(SCHEDULING_FAILED, detail));
            }
        }
    }
    events
}

/// A target's `Scheduling Action`: its counts, and the resources it started, stopped and deferred,
/// the lists cut (the same number from each) until the entry fits a request by itself.
fn action(mut detail: Value, run: &Summary) -> Event {
    detail["counts"] = run.counts();
    let lists = [("started", &run.started), ("stopped", &run.stopped), ("deferred", &run.deferred)];
    let with = |keep: usize| {
        let mut detail = detail.clone();
        let mut omitted = 0;
        for (name, list) in lists {
            detail[name] = json!(list.iter().take(keep).collect::<Vec<_>>());
            omitted += list.len().saturating_sub(keep);
        }
        if omitted > 0 {
            detail["omitted"] = json!(omitted);
        }
        Event::new(SCHEDULING_ACTION, detail)
    };
    let longest = lists.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
    let whole = with(longest);
    if whole.size() <= MAX_REQUEST_BYTES {
        return whole;
    }
    // The largest count kept from each list that fits: the size grows with it.
    let (mut fits, mut too_many) = (0, longest);
    while too_many - fits > 1 {
        let mid = fits + (too_many - fits) / 2;
        if with(mid).size() <= MAX_REQUEST_BYTES {
            fits = mid;
        } else {
            too_many = mid;
        }
    }
    with(fits)
}

/// The events in PutEvents calls: at most 10 entries and 256 KiB each, in order.
pub fn requests(events: &[Event]) -> Vec<&[Event]> {
    let mut requests = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, event) in events.iter().enumerate() {
        if i > start && (i - start == MAX_ENTRIES || bytes + event.size() > MAX_REQUEST_BYTES) {
            requests.push(&events[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += event.size();
    }
    if start < events.len() {
        requests.push(&events[start..]);
    }
    requests
}

/// Puts the events on `bus`; what could not be put comes back as failures (`events/<bus>`).
pub async fn put(client: &aws_sdk_eventbridge::Client, bus: &str, events: &[Event], cutoff: Instant) -> Vec<Failed> {
    let mut failed = Vec::new();
    for request in requests(events) {
        let mut pending: Vec<&Event> = request.iter().collect();
        let mut errors = Vec::new();
        for _attempt in 0..2 {
            let entries = pending.iter().map(|e| entry(bus, e)).collect();
            match aws_output(cutoff, "PutEvents", client.put_events().set_entries(Some(entries)).send()).await {
                Err(e) => {
                    errors = vec![e.message];
                    break;
                }
                Ok(out) if out.failed_entry_count() == 0 => {
                    pending.clear();
                    break;
                }
                Ok(out) => {
                    // The answer's entries are in the request's order; a failed one has an error code.
                    let answered: Vec<(&Event, Option<&str>, Option<&str>)> = pending
                        .iter()
                        .zip(out.entries())
                        .map(|(event, result)| (*event, result.error_code(), result.error_message()))
                        .collect();
                    errors = answered
                        .iter()
                        .filter_map(|(_, code, message)| code.map(|c| format!("{c}: {}", message.unwrap_or_default())))
                        .collect();
                    let retry = answered.iter().all(|(_, code, _)| code.is_none_or(|c| RETRIED.contains(&c)));
                    pending = answered.into_iter().filter(|(_, code, _)| code.is_some()).map(|(e, _, _)| e).collect();
                    if !retry {
                        break;
                    }
                }
            }
        }
        if !pending.is_empty() {
            errors.sort();
            errors.dedup();
            failed.push(Failed {
                resource: format!("events/{bus}"),
                error: format!(
                    "{} of {} event(s) not put on event bus {bus}: {}; check SCHEDULER_EVENT_BUS and the \
                     function's events:PutEvents permission on that bus",
                    pending.len(),
                    request.len(),
                    errors.join("; ")
                ),
            });
        }
    }
    failed
}

fn entry(bus: &str, event: &Event) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(SOURCE)
        .detail_type(event.detail_type)
        .detail(&event.text)
        .build()
}

#[cfg(test)]
mod tests;
