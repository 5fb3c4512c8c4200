//! The report: rows comparing our medians with a peer's, the table printed and docs/benchmarks.md.

use std::fmt::Write as _;
use std::time::Duration;

/// One line of the table: our figure and the peer's, in `unit`; `note` (if any) goes below the table.
pub struct Row {
    pub scenario: String,
    pub unit: &'static str,
    pub ours: f64,
    pub peer_name: &'static str,
    pub peer: f64,
    pub note: String,
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A row comparing the medians of one figure `f` over our runs and the peer's.
pub fn paired<T>(
    scenario: String,
    unit: &'static str,
    ours: &[T],
    peer_name: &'static str,
    peer: &[T],
    f: fn(&T) -> f64,
) -> Row {
    let median = |runs: &[T]| median_f(runs.iter().map(f).collect());
    Row { scenario, unit, ours: median(ours), peer_name, peer: median(peer), note: String::new() }
}

/// `template` with each `{name}` replaced by its value. The prose lives in constants; only the
/// figures of a run are filled in.
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut filled = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').unwrap_or_else(|| panic!("an unclosed {{ in {template:?}"));
        let name = &rest[open + 1..close];
        let value = values.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no value for {{{name}}}"));
        filled.push_str(&rest[..open]);
        filled.push_str(&value.1);
        rest = &rest[close + 1..];
    }
    filled.push_str(rest);
    filled
}

/// The header of docs/benchmarks.md: `{runs}`, `{machine}`, then the table and the notes.
const DOCUMENT: &str = "# Benchmarks\n\n\
     Produced by `make bench` (bench/: the stackhand-bench crate); do not edit by hand.\n\n\
     Each row measures a stackhand function (release build, driven through the Lambda Runtime API as Lambda \
     drives it) and a peer doing the same job, in the same run, on the same machine and the same local stack \
     (moto and MariaDB on 127.0.0.1). Times and memory are medians of {runs} interleaved runs, each a fresh \
     process where it says so; the last column is the ratio (below 1: stackhand is faster, smaller or makes \
     fewer calls). Absolute figures are this machine's; the ratio is the one to compare. The Python peers \
     are in bench/peers/, each in the shape it is commonly published in, and run under the AWS Lambda Runtime \
     Interface Client (awslambdaric) against the same Runtime API. Package sizes (arm64 zips) are in \
     [package-sizes.md](package-sizes.md), from `make package`.\n\n\
     The fleet rows (fleet-N) have no peer: they measure the scheduler alone on fleets moto can't list in \
     time, against a local server replaying EC2's XML shapes (bench/src/replay.rs).\n\n\
     Run it all: `make bench` (about 25 minutes on 2 cores, most of it the scheduler fleets). One group: \
     `STACKHAND_BENCH_ONLY=eip make bench` (floor, nlb, eip, schema, scheduler, fleet, targets, fanout, cli; comma-separated) prints its \
     rows without rewriting this file.\n\n\
     Machine: {machine}.\n\n";

/// The markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut table = String::from("| scenario | stackhand | peer | peer | stackhand / peer |\n|---|---|---|---|---|\n");
    for r in rows {
        let ratio = r.ours / r.peer;
        let (ours, peer, unit) = (r.ours, r.peer, r.unit);
        let places = if ours.abs() < 10.0 && unit == "USD" { 3 } else { 1 };
        if ours.is_nan() {
            writeln!(table, "| {} | not measured | {} | not measured | |", r.scenario, r.peer_name).unwrap();
            continue;
        }
        if peer.is_nan() {
            writeln!(table, "| {} | {ours:.places$} {unit} | {} | — | |", r.scenario, r.peer_name).unwrap();
            continue;
        }
        writeln!(
            table,
            "| {} | {ours:.places$} {unit} | {} | {peer:.places$} {unit} | {ratio:.2} |",
            r.scenario, r.peer_name
        )
        .unwrap();
    }
    table
}

/// docs/benchmarks.md: the header, `table` (of `rows`) and the rows' notes.
pub fn document(rows: &[Row], table: &str, runs: usize) -> String {
    let notes: String = rows
        .iter()
        .filter(|r| !r.note.is_empty())
        .map(|r| format!("- {}: {}\n", r.scenario.split(':').next().unwrap(), r.note))
        .collect();
    let header = fill(DOCUMENT, &[("runs", runs.to_string()), ("machine", machine())]);
    format!("{header}{table}\n{notes}")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} cores, {cpu}")
}
