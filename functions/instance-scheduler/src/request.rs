//! What an invocation asks for. Two shapes:
//! - an action event, `{"action": "start" | "stop" | "reconcile", "schedule"?, "dry_run"?, "time"?}` —
//!   what an EventBridge Scheduler schedule or rule sends as its input, or `cargo lambda invoke`;
//! - an EventBridge Scheduled Event (a `rate(…)`/`cron(…)` rule with no input): reconcile at its `time`.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start every selected resource.
    Start,
    /// Stop every selected resource.
    Stop,
    /// Start or stop each selected resource as its schedule says for `Request::at`.
    Reconcile,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Reconcile => "reconcile",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub action: Action,
    /// Only resources whose schedule tag has exactly this value.
    pub schedule: Option<String>,
    /// Report what would change; change nothing.
    pub dry_run: bool,
    /// The instant schedules and overrides are evaluated at.
    pub at: DateTime<Utc>,
}

/// An event this function cannot act on; the message names the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(String);

const FIELDS: [&str; 4] = ["action", "schedule", "dry_run", "time"];

/// Reads an invocation event; `now` stands in for a missing `time`, and for the `time` of a Scheduled
/// Event more than `interval` (the reconcile rule's) away from now: Lambda retries an asynchronous event
/// and keeps a throttled one queued for hours, each time with its original `time`, and evaluating the
/// schedules at that past instant would undo what the runs since then did.
pub fn parse(event: &Value, now: DateTime<Utc>, interval: TimeDelta) -> Result<Request, EventError> {
    let fail = |message: String| Err(EventError(message));
    let Some(object) = event.as_object() else {
        return fail(format!("expected a JSON object such as {{\"action\": \"stop\"}}, got {}", preview(event)));
    };
    if object.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        let mut at = instant(object.get("time"), "time", now)?;
        if (now - at).abs() > interval {
            tracing::warn!(
                time = %at.to_rfc3339(),
                "a Scheduled Event further than one interval from now (retried or long queued): evaluating at now"
            );
            at = now;
        }
        return Ok(Request { action: Action::Reconcile, schedule: None, dry_run: false, at });
    }
    let Some(action) = object.get("action") else {
        return fail(format!(
            "expected {{\"action\": \"start\" | \"stop\" | \"reconcile\"}} or an EventBridge Scheduled Event, got {}",
            preview(event)
        ));
    };
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return fail(format!("unknown field \"{unknown}\": the fields are action, schedule, dry_run and time"));
    }
    let action = match action.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("start") => Action::Start,
        Some("stop") => Action::Stop,
        Some("reconcile") => Action::Reconcile,
        _ => return fail(format!("action is {action}: use \"start\", \"stop\" or \"reconcile\"")),
    };
    let schedule = match object.get("schedule") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(other) => {
            return fail(format!(
                "schedule is {other}: give the tag value to act on as a non-empty string, or leave it out to act on every tagged resource"
            ))
        }
    };
    let dry_run = match object.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return fail(format!("dry_run is {other}: use true or false")),
    };
    let at = instant(object.get("time"), "time", now)?;
    Ok(Request { action, schedule, dry_run, at })
}

fn instant(value: Option<&Value>, field: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, EventError> {
    match value {
        None | Some(Value::Null) => Ok(now),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| {
            EventError(format!("{field} is \"{s}\": use an RFC 3339 instant such as 2026-11-23T19:00:00Z"))
        }),
        Some(other) => {
            Err(EventError(format!("{field} is {other}: use an RFC 3339 instant such as 2026-11-23T19:00:00Z")))
        }
    }
}

/// The event, cut short for an error message.
fn preview(event: &Value) -> String {
    let text = event.to_string();
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    fn five() -> TimeDelta {
        TimeDelta::minutes(5)
    }

    fn err(event: Value) -> String {
        parse(&event, now(), five()).unwrap_err().to_string()
    }

    #[test]
    fn the_seed_contract_start_and_stop() {
        let r = parse(&json!({"action": "stop"}), now(), five()).unwrap();
        assert_eq!(r, Request { action: Action::Stop, schedule: None, dry_run: false, at: now() });
        assert_eq!(parse(&json!({"action": "START"}), now(), five()).unwrap().action, Action::Start);
    }

    #[test]
    fn optional_fields() {
        let r = parse(
            &json!({"action": "reconcile", "schedule": " office-hours ", "dry_run": true, "time": "2026-03-29T00:30:00+01:00"}),
            now(),
            five(),
        )
        .unwrap();
        assert_eq!(r.action, Action::Reconcile);
        assert_eq!(r.schedule.as_deref(), Some("office-hours"));
        assert!(r.dry_run);
        assert_eq!(r.at, "2026-03-28T23:30:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn a_scheduled_event_reconciles_at_its_time() {
        let event = json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-22T11:55:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/reconcile"], "detail": {}
        });
        let r = parse(&event, now(), five()).unwrap();
        assert_eq!(r.action, Action::Reconcile);
        assert_eq!(r.at, "2026-11-22T11:55:00Z".parse::<DateTime<Utc>>().unwrap());
        let mut no_time = event;
        no_time.as_object_mut().unwrap().remove("time");
        assert_eq!(parse(&no_time, now(), five()).unwrap().at, now(), "falls back to now");
    }

    #[test]
    fn a_retried_or_long_queued_scheduled_event_is_evaluated_at_now() {
        let at = |time: &str, interval: TimeDelta| {
            let event = json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": time, "detail": {}});
            parse(&event, now(), interval).unwrap().at
        };
        let instant = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
        // Within one interval of now (either side: clocks differ): its own time.
        assert_eq!(at("2026-11-22T11:55:00Z", five()), instant("2026-11-22T11:55:00Z"));
        assert_eq!(at("2026-11-22T12:04:00Z", five()), instant("2026-11-22T12:04:00Z"));
        // A retry 6 minutes on, or an event queued for hours: now.
        assert_eq!(at("2026-11-22T11:54:00Z", five()), now());
        assert_eq!(at("2026-11-22T06:00:00Z", five()), now());
        assert_eq!(at("2026-11-22T12:06:00Z", five()), now());
        // At 60-minute runs, 6 minutes late is still its own run.
        assert_eq!(at("2026-11-22T11:54:00Z", TimeDelta::minutes(60)), instant("2026-11-22T11:54:00Z"));
        // An explicit action event's time is what the caller asked for, however far.
        let explicit = parse(&json!({"action": "reconcile", "time": "2026-03-30T07:30:00Z"}), now(), five()).unwrap();
        assert_eq!(explicit.at, instant("2026-03-30T07:30:00Z"));
    }

    #[test]
    fn bad_events_name_the_field_and_the_fix() {
        assert_eq!(err(json!({"action": "halt"})), "action is \"halt\": use \"start\", \"stop\" or \"reconcile\"");
        assert_eq!(err(json!({"action": 1})), "action is 1: use \"start\", \"stop\" or \"reconcile\"");
        assert_eq!(
            err(json!({"action": "stop", "dryrun": true})),
            "unknown field \"dryrun\": the fields are action, schedule, dry_run and time"
        );
        assert_eq!(err(json!({"action": "stop", "dry_run": "yes"})), "dry_run is \"yes\": use true or false");
        assert!(err(json!({"action": "stop", "schedule": ""})).starts_with("schedule is \"\": give the tag value"));
        assert_eq!(
            err(json!({"action": "reconcile", "time": "tomorrow"})),
            "time is \"tomorrow\": use an RFC 3339 instant such as 2026-11-23T19:00:00Z"
        );
        assert!(err(json!({"detail-type": "EC2 Instance State-change Notification"})).starts_with(
            "expected {\"action\": \"start\" | \"stop\" | \"reconcile\"} or an EventBridge Scheduled Event"
        ));
        assert!(err(json!([1, 2])).starts_with("expected a JSON object"));
        let long = err(json!({"x": "y".repeat(500)}));
        assert!(long.ends_with('…') && long.len() < 300, "{long}");
    }

    #[test]
    fn every_sample_event_parses() {
        let dir = testkit::checkout_path("events/instance-scheduler");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            if event.get("Records").is_some() {
                // A fan-out worker's SQS event: read by fanout (its test), not as a request.
                continue;
            }
            let request = parse(&event, now(), five()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path.file_stem().unwrap().to_str().unwrap();
            let expected = match name {
                "start" => Action::Start,
                "stop" | "stop-dry-run" => Action::Stop,
                _ => Action::Reconcile,
            };
            assert_eq!(request.action, expected, "{name}");
            assert_eq!(request.dry_run, name.contains("dry-run"), "{name}");
            seen += 1;
        }
        assert_eq!(seen, 5);
    }
}
