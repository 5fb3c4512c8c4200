//! CloudWatch metrics in Embedded Metric Format (EMF): log lines that CloudWatch Logs turns into
//! metrics in the namespace `stackhand`. No API call, no permission: the function's log group is enough.
//! A dry run emits nothing (it moved nothing). Per run:
//!
//! - per target, one line: `Started`, `Stopped`, `Skipped`, `Failed`, `Unchanged`, `Deferred`
//!   (dimensions `function` + `target`, and `function` alone for the totals);
//! - per target, kind and type, one line: `Managed`, `Running`, `Stopped` units after the run, and on
//!   a reconcile run `StoppedMinutes` (stopped units × the reconcile interval: summed over a week, the
//!   minutes of running the schedules saved). Dimensions `function` + `kind` + `type`, and `function` +
//!   `kind`; the target is a property of the line, not a dimension, so the number of custom metrics
//!   grows with the kinds and types in use, not with the accounts and Regions;
//! - one line: `RunDuration` (milliseconds), dimension `function`. Its sample count is the number of
//!   runs, by which the dashboard divides sums to show what one run saw.
//!
//! [`NAMES`] is every metric name emitted; the dashboard in template.yaml is checked against it.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};

use crate::fleet::Row;
use crate::summary::{Summary, TargetSummary};

pub const NAMESPACE: &str = "stackhand";
const TARGET_METRICS: [&str; 6] = ["Started", "Stopped", "Skipped", "Failed", "Unchanged", "Deferred"];
const FLEET_METRICS: [&str; 3] = ["Managed", "Running", "Stopped"];
const STOPPED_MINUTES: &str = "StoppedMinutes";
const RUN_DURATION: &str = "RunDuration";

/// Every metric name [`emit`] can write.
pub const NAMES: [&str; 10] = [
    "Started",
    "Stopped",
    "Skipped",
    "Failed",
    "Unchanged",
    "Deferred",
    "Managed",
    "Running",
    STOPPED_MINUTES,
    RUN_DURATION,
];

/// What the metrics need to know of the run besides its summary.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts {
    /// How long the run took, from the event to the summary: the run's own line. None for a worker's
    /// target (its run's line is the hub's, so that the sample count of `RunDuration` counts runs).
    pub duration: Option<Duration>,
    /// The reconcile interval, on a reconcile run: what each stopped unit counts in `StoppedMinutes`.
    /// None on a start or stop run, which is not one of a regular series.
    pub interval_minutes: Option<u64>,
}

/// Writes the run's EMF lines to `out` (stdout in the function: Lambda sends it to CloudWatch Logs).
pub fn emit(summary: &Summary, facts: RunFacts, out: &mut impl Write) {
    if summary.dry_run {
        return;
    }
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "instance-scheduler".into());
    let now = chrono::Utc::now().timestamp_millis();
    let mut lines = Vec::new();
    for target in &summary.targets {
        lines.push(line(&function, target, now));
        let name = format!("{}/{}", target.account, target.region);
        lines.extend(target.fleet.iter().map(|row| fleet_line(&function, &name, row, facts.interval_minutes, now)));
    }
    lines.extend(facts.duration.map(|duration| run_line(&function, duration, now)));
    for line in lines {
        // A log line that can't be written is no reason to fail the run.
        let _ = writeln!(out, "{line}");
    }
}

/// An EMF document: the directive for `metrics` (each with its unit) over `dimensions`, and the
/// properties (dimension values, metric values and context) at the top level, as EMF requires.
fn document(timestamp_ms: i64, dimensions: Value, metrics: &[(&str, &str)], properties: Value) -> Value {
    let metrics: Vec<Value> = metrics.iter().map(|(name, unit)| json!({"Name": name, "Unit": unit})).collect();
    let mut doc = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": dimensions, "Metrics": metrics}],
        },
    });
    if let (Some(doc), Value::Object(properties)) = (doc.as_object_mut(), properties) {
        doc.extend(properties);
    }
    doc
}

/// One target's counts.
pub fn line(function: &str, target: &TargetSummary, timestamp_ms: i64) -> Value {
    let counts = [target.started, target.stopped, target.skipped, target.failed, target.unchanged, target.deferred];
    let mut properties = json!({"function": function, "target": format!("{}/{}", target.account, target.region)});
    for (name, count) in TARGET_METRICS.iter().zip(counts) {
        properties[*name] = json!(count);
    }
    let metrics: Vec<(&str, &str)> = TARGET_METRICS.iter().map(|name| (*name, "Count")).collect();
    document(timestamp_ms, json!([["function", "target"], ["function"]]), &metrics, properties)
}

/// One target's units of one kind and type.
fn fleet_line(function: &str, target: &str, row: &Row, interval_minutes: Option<u64>, timestamp_ms: i64) -> Value {
    let mut metrics: Vec<(&str, &str)> = FLEET_METRICS.iter().map(|name| (*name, "Count")).collect();
    let mut properties = json!({
        "function": function,
        "kind": row.kind,
        "type": row.type_name,
        "target": target,
        "Managed": row.managed,
        "Running": row.running,
        "Stopped": row.stopped,
    });
    if let Some(minutes) = interval_minutes {
        metrics.push((STOPPED_MINUTES, "None"));
        properties[STOPPED_MINUTES] = json!(row.stopped * minutes);
    }
    document(timestamp_ms, json!([["function", "kind", "type"], ["function", "kind"]]), &metrics, properties)
}

/// The run's duration.
fn run_line(function: &str, duration: Duration, timestamp_ms: i64) -> Value {
    let properties = json!({"function": function, RUN_DURATION: duration.as_millis() as u64});
    document(timestamp_ms, json!([["function"]]), &[(RUN_DURATION, "Milliseconds")], properties)
}

#[cfg(test)]
mod dashboard_tests;
#[cfg(test)]
mod tests;
