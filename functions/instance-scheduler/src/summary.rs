//! The run's result: returned to the caller and logged.

use serde::Serialize;
use serde_json::{json, Value};

use crate::direction::Direction;
use crate::fleet::Row;
use crate::targets::Target;

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
    /// EC2 instances not started or stopped because EC2's request or instance buckets would not admit
    /// the call before the run's cutoff: no failure, no marker; the next run does them.
    pub deferred: Vec<String>,
    /// What was started or stopped otherwise than asked, and why.
    pub notes: Vec<Note>,
    /// Targets sent to the queue, one message each, when the run fanned out: their workers' logs,
    /// metrics and events say what each did.
    #[serde(skip_serializing_if = "is_zero")]
    pub dispatched: usize,
    /// Per account and Region: the counts, and why the whole target failed when it did.
    pub targets: Vec<TargetSummary>,
    /// One target's run: what it manages and runs after the run, by kind and type (the savings
    /// metrics; in `targets` once merged).
    #[serde(skip)]
    pub fleet: Vec<Row>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetSummary {
    pub account: String,
    pub region: String,
    pub started: usize,
    pub stopped: usize,
    pub skipped: usize,
    pub failed: usize,
    pub unchanged: usize,
    pub deferred: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it manages and runs after the run, by kind and type (for the metrics, not the summary).
    #[serde(skip)]
    pub fleet: Vec<Row>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A log line holds at most this many entries per list (CloudWatch cuts events at 256 KB); the
/// returned summary is always whole.
const LOGGED_PER_LIST: usize = 500;

impl Summary {
    /// An empty summary of `request`.
    pub fn of(request: &crate::request::Request) -> Self {
        Summary {
            action: request.action.name().into(),
            at: request.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            dry_run: request.dry_run,
            ..Default::default()
        }
    }

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
        self.deferred.sort();
        self.notes.sort();
    }

    /// One summary from each target's: the totals, the lists (each name led by `<account>/<region>/`
    /// when `qualified`, i.e. with more than one target), and a `targets` entry each. A target that
    /// failed as a whole is one `failed` entry, `<account>/<region> (target)`.
    pub fn merge<E: std::fmt::Display>(
        mut total: Summary,
        runs: Vec<(Target, Result<Summary, E>)>,
        qualified: bool,
    ) -> Summary {
        let name = |target: &Target, name: String| if qualified { format!("{target}/{name}") } else { name };
        for (target, run) in runs {
            let mut entry =
                TargetSummary { account: target.account.clone(), region: target.region.clone(), ..Default::default() };
            match run {
                Ok(run) => {
                    entry.started = run.started.len();
                    entry.stopped = run.stopped.len();
                    entry.skipped = run.skipped.len();
                    entry.failed = run.failed.len();
                    entry.unchanged = run.unchanged;
                    entry.deferred = run.deferred.len();
                    entry.fleet = run.fleet;
                    total.unchanged += run.unchanged;
                    total.deferred.extend(run.deferred.into_iter().map(|r| name(&target, r)));
                    total.started.extend(run.started.into_iter().map(|r| name(&target, r)));
                    total.stopped.extend(run.stopped.into_iter().map(|r| name(&target, r)));
                    total.skipped.extend(
                        run.skipped
                            .into_iter()
                            .map(|s| Skipped { resource: name(&target, s.resource), reason: s.reason }),
                    );
                    total.failed.extend(
                        run.failed.into_iter().map(|f| Failed { resource: name(&target, f.resource), error: f.error }),
                    );
                    total.notes.extend(
                        run.notes.into_iter().map(|n| Note { resource: name(&target, n.resource), note: n.note }),
                    );
                }
                Err(error) => {
                    let error = error.to_string();
                    entry.failed = 1;
                    total.failed.push(Failed { resource: format!("{target} (target)"), error: error.clone() });
                    entry.error = Some(error);
                }
            }
            total.targets.push(entry);
        }
        total.targets.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        total.sort();
        total
    }

    /// What failed, in one line: the count and the first few, for the invocation's error.
    pub fn failure_line(&self) -> String {
        const NAMED: usize = 3;
        let first: Vec<String> =
            self.failed.iter().take(NAMED).map(|f| format!("{}: {}", f.resource, f.error)).collect();
        let more = self.failed.len().saturating_sub(NAMED);
        let more = if more > 0 { format!("; and {more} more in `failed`") } else { String::new() };
        format!("{} failed: {}{more}", self.failed.len(), first.join("; "))
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a summary serializes")
    }

    /// How many resources were started, stopped, skipped, failed, unchanged and deferred.
    pub fn counts(&self) -> Value {
        json!({
            "started": self.started.len(),
            "stopped": self.stopped.len(),
            "skipped": self.skipped.len(),
            "failed": self.failed.len(),
            "unchanged": self.unchanged,
            "deferred": self.deferred.len(),
        })
    }

    /// The summary for the log: counts, and each list cut to its first entries.
    pub fn for_log(&self) -> Value {
        let mut value = self.to_value();
        let mut truncated = false;
        for list in ["started", "stopped", "skipped", "failed", "deferred", "notes"] {
            if let Some(Value::Array(items)) = value.get_mut(list) {
                truncated |= items.len() > LOGGED_PER_LIST;
                items.truncate(LOGGED_PER_LIST);
            }
        }
        value["counts"] = self.counts();
        value["counts"]["notes"] = json!(self.notes.len());
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
