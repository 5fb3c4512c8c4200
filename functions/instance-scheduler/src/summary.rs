//! The run's result: returned to the caller and logged.

use serde::Serialize;
use serde_json::{json, Value};

use crate::direction::Direction;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Skipped {
    pub resource: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Failed {
    pub resource: String,
    pub error: String,
}

/// Something done, but not quite as asked (a hibernation that fell back to a normal stop): the
/// resource is also in `started`/`stopped`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Note {
    pub resource: String,
    pub note: String,
}

/// `started`/`stopped` hold what was (or, in a dry run, would be) started and stopped; `unchanged`
/// counts resources already in the right state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub action: String,
    pub at: String,
    pub dry_run: bool,
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Failed>,
    pub unchanged: usize,
    /// What was started or stopped otherwise than asked, and why.
    pub notes: Vec<Note>,
}

/// A log line holds at most this many entries per list (CloudWatch cuts events at 256 KB); the
/// returned summary is always whole.
const LOGGED_PER_LIST: usize = 500;

impl Summary {
    /// The list of what was (or would be) moved in `direction`: `started` or `stopped`.
    pub fn moved(&mut self, direction: Direction) -> &mut Vec<String> {
        match direction {
            Direction::Start => &mut self.started,
            Direction::Stop => &mut self.stopped,
        }
    }

    /// Sorted, so that runs over the same world compare equal.
    pub fn sort(&mut self) {
        self.started.sort();
        self.stopped.sort();
        self.skipped.sort();
        self.failed.sort();
        self.notes.sort();
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a summary serializes")
    }

    /// The summary for the log: counts, and each list cut to its first entries.
    pub fn for_log(&self) -> Value {
        let mut value = self.to_value();
        let mut truncated = false;
        for list in ["started", "stopped", "skipped", "failed", "notes"] {
            if let Some(Value::Array(items)) = value.get_mut(list) {
                truncated |= items.len() > LOGGED_PER_LIST;
                items.truncate(LOGGED_PER_LIST);
            }
        }
        value["counts"] = json!({
            "started": self.started.len(),
            "stopped": self.stopped.len(),
            "skipped": self.skipped.len(),
            "failed": self.failed.len(),
            "unchanged": self.unchanged,
            "notes": self.notes.len(),
        });
        if truncated {
            value["truncated"] =
                json!(format!("lists cut to {LOGGED_PER_LIST} entries; the invocation result has all"));
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_form_counts_everything_and_cuts_long_lists() {
        let mut s = Summary { action: "stop".into(), at: "2026-11-23T19:00:00Z".into(), ..Default::default() };
        s.stopped = (0..1200).map(|i| format!("ec2-instance/i-{i:017x}")).collect();
        s.skipped.push(Skipped { resource: "rds-instance/m1".into(), reason: "member".into() });
        let log = s.for_log();
        assert_eq!(log["counts"]["stopped"], 1200);
        assert_eq!(log["counts"]["skipped"], 1);
        assert_eq!(log["stopped"].as_array().unwrap().len(), LOGGED_PER_LIST);
        assert_eq!(log["skipped"][0]["reason"], "member");
        assert!(log["truncated"].is_string());
        assert!(log.to_string().len() < 256 * 1024);
        assert_eq!(s.to_value()["stopped"].as_array().unwrap().len(), 1200, "the result is whole");
        let small = Summary::default().for_log();
        assert!(small.get("truncated").is_none());
    }
}
