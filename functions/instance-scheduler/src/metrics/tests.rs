use std::collections::BTreeSet;

use super::*;

fn target(started: usize, failed: usize) -> TargetSummary {
    TargetSummary { account: "111122223333".into(), region: "eu-west-1".into(), started, failed, ..Default::default() }
}

fn row(kind: &'static str, type_name: &str, running: u64, stopped: u64) -> Row {
    Row { kind, type_name: type_name.into(), managed: running + stopped, running, stopped }
}

const RECONCILE: RunFacts = RunFacts { duration: Some(Duration::from_millis(1234)), interval_minutes: Some(5) };

fn emitted(summary: &Summary, facts: RunFacts) -> Vec<Value> {
    let mut out = Vec::new();
    emit(summary, facts, &mut out);
    String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The directive of an EMF line, after checking what EMF requires of the line: every metric it names
/// is a number at the top level, and every dimension a string there.
fn directive(line: &Value) -> &Value {
    let directive = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "stackhand");
    for metric in directive["Metrics"].as_array().unwrap() {
        let name = metric["Name"].as_str().unwrap();
        assert!(line[name].is_u64(), "{name} missing in {line}");
        assert!(["Count", "None", "Milliseconds"].contains(&metric["Unit"].as_str().unwrap()), "{metric}");
    }
    for set in directive["Dimensions"].as_array().unwrap() {
        for dimension in set.as_array().unwrap() {
            assert!(line[dimension.as_str().unwrap()].is_string(), "{dimension} missing in {line}");
        }
    }
    assert!(line["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    directive
}

fn names(line: &Value) -> Vec<&str> {
    directive(line)["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect()
}

#[test]
fn each_target_is_one_emf_line_with_its_counts_and_dimensions() {
    let summary = Summary { targets: vec![target(3, 1), target(0, 0)], ..Default::default() };
    let lines = emitted(&summary, RECONCILE);
    assert_eq!(lines.len(), 3, "two targets and the run: {lines:?}");
    let first = &lines[0];
    assert_eq!(directive(first)["Dimensions"], json!([["function", "target"], ["function"]]));
    assert_eq!(names(first), TARGET_METRICS);
    assert_eq!((first["Started"].as_u64(), first["Failed"].as_u64()), (Some(3), Some(1)));
    assert_eq!(first["target"], "111122223333/eu-west-1");
}

#[test]
fn each_kind_and_type_of_a_target_is_a_line_of_units_with_the_minutes_stopped() {
    let mut one = target(0, 0);
    one.fleet = vec![row("ec2-instance", "t3.micro", 2, 3), row("rds-cluster", "db.r6g.large", 0, 2)];
    let summary = Summary { targets: vec![one], ..Default::default() };
    let lines = emitted(&summary, RECONCILE);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let ec2 = &lines[1];
    assert_eq!(directive(ec2)["Dimensions"], json!([["function", "kind", "type"], ["function", "kind"]]));
    assert_eq!(names(ec2), ["Managed", "Running", "Stopped", "StoppedMinutes"]);
    assert_eq!((ec2["kind"].as_str(), ec2["type"].as_str()), (Some("ec2-instance"), Some("t3.micro")));
    assert_eq!([&ec2["Managed"], &ec2["Running"], &ec2["Stopped"]], [&json!(5), &json!(2), &json!(3)]);
    assert_eq!(ec2["StoppedMinutes"], 15, "3 stopped for a 5-minute interval");
    assert_eq!(ec2["target"], "111122223333/eu-west-1", "the target is a property, not a dimension");
    assert_eq!(lines[2]["StoppedMinutes"], 10);
    let run = &lines[3];
    assert_eq!(directive(run)["Dimensions"], json!([["function"]]));
    assert_eq!((names(run), &run["RunDuration"]), (vec!["RunDuration"], &json!(1234)));
}

#[test]
fn a_start_or_stop_run_counts_units_but_no_minutes() {
    let mut one = target(0, 0);
    one.fleet = vec![row("ec2-instance", "t3.micro", 0, 4)];
    let summary = Summary { targets: vec![one], ..Default::default() };
    let lines = emitted(&summary, RunFacts { interval_minutes: None, ..RECONCILE });
    assert_eq!(names(&lines[1]), ["Managed", "Running", "Stopped"]);
    assert!(lines[1].get("StoppedMinutes").is_none());
}

#[test]
fn every_name_emitted_is_in_names_and_every_name_is_emitted() {
    let mut one = target(1, 0);
    one.fleet = vec![row("ec2-instance", "t3.micro", 1, 1)];
    let summary = Summary { targets: vec![one], ..Default::default() };
    let emitted: BTreeSet<String> =
        emitted(&summary, RECONCILE).iter().flat_map(|l| names(l).into_iter().map(str::to_owned)).collect();
    let known: BTreeSet<String> = NAMES.iter().map(|n| n.to_string()).collect();
    assert_eq!(emitted, known);
}

#[test]
fn a_workers_target_has_its_lines_but_not_the_runs() {
    let mut one = target(0, 0);
    one.fleet = vec![row("ec2-instance", "t3.micro", 0, 4)];
    let summary = Summary { targets: vec![one], ..Default::default() };
    let lines = emitted(&summary, RunFacts { duration: None, ..RECONCILE });
    assert_eq!(lines.len(), 2, "its counts and its units: {lines:?}");
    assert!(lines.iter().all(|l| l.get("RunDuration").is_none()));
}

#[test]
fn a_dry_run_emits_nothing() {
    let summary = Summary { dry_run: true, targets: vec![target(3, 0)], ..Default::default() };
    assert!(emitted(&summary, RECONCILE).is_empty());
}
