//! CloudWatch metrics in Embedded Metric Format: one log line per target and run, which CloudWatch Logs
//! turns into the metrics `Started`, `Stopped`, `Skipped`, `Failed`, `Unchanged` and `Deferred` (namespace
//! `stackhand`, dimensions `function` and `target`, and `function` alone for the totals). No API call,
//! no permission: the function's log group is enough. A dry run emits nothing (it moved nothing).

use std::io::Write;

use serde_json::{json, Value};

use crate::summary::{Summary, TargetSummary};

pub const NAMESPACE: &str = "stackhand";
const METRICS: [&str; 6] = ["Started", "Stopped", "Skipped", "Failed", "Unchanged", "Deferred"];

/// Writes the run's EMF lines to `out` (stdout in the function: Lambda sends it to CloudWatch Logs).
pub fn emit(summary: &Summary, out: &mut impl Write) {
    if summary.dry_run {
        return;
    }
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "instance-scheduler".into());
    let now = chrono::Utc::now().timestamp_millis();
    for target in &summary.targets {
        // A log line that can't be written is no reason to fail the run.
        let _ = writeln!(out, "{}", line(&function, target, now));
    }
}

/// One target's EMF document.
pub fn line(function: &str, target: &TargetSummary, timestamp_ms: i64) -> Value {
    let metrics: Vec<Value> = METRICS.iter().map(|name| json!({"Name": name, "Unit": "Count"})).collect();
    let counts = [target.started, target.stopped, target.skipped, target.failed, target.unchanged, target.deferred];
    let mut doc = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["function", "target"], ["function"]],
                "Metrics": metrics,
            }],
        },
        "function": function,
        "target": format!("{}/{}", target.account, target.region),
    });
    for (name, count) in METRICS.iter().zip(counts) {
        doc[*name] = json!(count);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(started: usize, failed: usize) -> TargetSummary {
        TargetSummary {
            account: "111122223333".into(),
            region: "eu-west-1".into(),
            started,
            failed,
            ..Default::default()
        }
    }

    #[test]
    fn each_target_is_one_emf_line_with_its_counts_and_dimensions() {
        let summary = Summary { targets: vec![target(3, 1), target(0, 0)], ..Default::default() };
        let mut out = Vec::new();
        emit(&summary, &mut out);
        let lines: Vec<Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        let first = &lines[0];
        let directive = &first["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "stackhand");
        assert_eq!(directive["Dimensions"], json!([["function", "target"], ["function"]]));
        // Every metric the directive names is a number at the top level, as EMF requires.
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(first[name].is_u64(), "{name} missing in {first}");
            assert_eq!(metric["Unit"], "Count");
        }
        assert_eq!((first["Started"].as_u64(), first["Failed"].as_u64()), (Some(3), Some(1)));
        assert_eq!(first["target"], "111122223333/eu-west-1");
        assert!(first["function"].is_string());
        assert!(first["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    }

    #[test]
    fn a_dry_run_emits_nothing() {
        let summary = Summary { dry_run: true, targets: vec![target(3, 0)], ..Default::default() };
        let mut out = Vec::new();
        emit(&summary, &mut out);
        assert!(out.is_empty());
    }
}
