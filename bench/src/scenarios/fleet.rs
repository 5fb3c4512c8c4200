//! instance-scheduler at fleet scale (5,000 to 50,000 instances) against the EC2 replay server
//! (src/replay.rs), not moto: moto lists in time that grows with the square of the fleet, the replay
//! server answers a page from XML built in advance, so the figures are the scheduler's own cost — wall
//! time, calls, CPU time and peak RSS of one reconcile that stops the whole fleet — and say whether
//! the largest fleet fits the function's 128 MB and 300 s.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::local::aws_env_in;
use testkit::{Answer, FunctionProcess, RuntimeApi};

use super::until_first_poll;
use crate::cost::VCPU_MB;
use crate::replay::Ec2Replay;
use crate::report::{fill, median_f, millis, Row};

/// The fleets measured (STACKHAND_BENCH_FLEET_SIZES=5000,20000 to choose), and runs of each
/// (STACKHAND_BENCH_FLEET_RUNS).
pub const SIZES: [usize; 3] = [5_000, 20_000, 50_000];
const FLEET_RUNS: usize = 3;

fn sizes() -> Vec<usize> {
    match std::env::var("STACKHAND_BENCH_FLEET_SIZES") {
        Ok(list) => list.split(',').map(|n| n.trim().parse().expect("STACKHAND_BENCH_FLEET_SIZES: numbers")).collect(),
        Err(_) => SIZES.to_vec(),
    }
}

fn fleet_runs() -> usize {
    std::env::var("STACKHAND_BENCH_FLEET_RUNS").map_or(FLEET_RUNS, |n| n.parse().expect("STACKHAND_BENCH_FLEET_RUNS"))
}
const REGION: &str = "eu-west-1";
/// Monday 20:00 in London: every instance of the fleet should be stopped.
const NIGHT: &str = "2026-11-23T20:00:00Z";
/// The template's MemorySize and the scheduler's Timeout.
const MEMORY_MB: f64 = 128.0;
const TIMEOUT: Duration = Duration::from_secs(300);

const NO_PEER: &str = "no peer: the scheduler's own cost";

const WALL_NOTE: &str = "median of {runs} runs, each a fresh release process (through the Runtime API, given the \
     template's 300 s timeout) reconciling a fleet that should all be stopped, against a local server replaying \
     EC2's XML shapes from pages built in advance (bench/src/replay.rs: DescribeInstances pages of 1,000 at about \
     4.7 KB per instance, StopInstances answers; the other kinds' listings empty), not moto, whose listing \
     time grows with the square of the fleet. The wall time is bounded by the scheduler's own pacing to EC2's \
     StopInstances buckets (src/pace.rs: 1,000 instances, refilled at 20 a second; 5 calls, at 2 a second): \
     about 200 s for 5,000 instances, and what cannot begin before the cutoff is deferred to the next run \
     ({deferred} deferred here). The CPU row is the work itself";

/// The note of the other fleets' first row.
const WALL_NOTE_AGAIN: &str =
    "as fleet-{first}: median of {runs} runs against the EC2 replay server ({deferred} deferred to the next run)";

const CALLS_NOTE: &str = "{calls}";

const CPU_NOTE: &str = "user + system from /proc/<pid>/stat (10 ms ticks) over the invocation; at 128 MB Lambda \
     gives the function {share}% of a vCPU (one vCPU at {vcpu_mb} MB), so this work alone would take at least \
     {floor} s there";

const RSS_NOTE: &str = "VmHWM from /proc/<pid>/status after the invocation, before the process ends. Worst of \
     the runs: {verdict}";

/// One fresh process, one reconcile.
struct FleetRun {
    deferred: usize,
    wall_ms: f64,
    cpu_ms: f64,
    rss_mib: f64,
    calls: BTreeMap<String, usize>,
}

async fn fleet_run(binary: &str, replay: &Ec2Replay, instances: usize) -> FleetRun {
    replay.reset();
    let mut env = aws_env_in(&replay.url(), REGION);
    env.push(("AWS_DEFAULT_REGION".into(), REGION.into()));
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    let api = RuntimeApi::start().await;
    let process = FunctionProcess::spawn(binary, &api.address(), &env);
    until_first_poll(&api, &process).await;
    let cpu = || process.cpu_time().expect("the process's CPU time from /proc");
    let cpu_before = cpu();
    let started = Instant::now();
    let answer = api.invoke_json(&json!({"action": "reconcile", "time": NIGHT}), TIMEOUT).await.answer;
    let wall_ms = millis(started.elapsed());
    let cpu_ms = millis(cpu() - cpu_before);
    let rss_mib = process.peak_rss_kib().expect("VmHWM from /proc") as f64 / 1024.0;
    let Answer::Response(summary) = &answer else { panic!("{answer:?}\n{}", process.output()) };
    let count = |list: &str| summary[list].as_array().map_or(0, Vec::len);
    let (stopped, deferred) = (count("stopped"), count("deferred"));
    assert_eq!(
        (stopped + deferred, count("failed")),
        (instances, 0),
        "the reconcile did not stop or defer the whole fleet: {}\n{}",
        summary["failed"],
        process.output()
    );
    assert_eq!(replay.running(), deferred, "the replay server's running instances are not those deferred");
    FleetRun { deferred, wall_ms, cpu_ms, rss_mib, calls: replay.calls() }
}

/// `DescribeInstances 50 + StopInstances 500 + …`, the calls of the run with the median count.
fn calls_in_words(runs: &[FleetRun]) -> String {
    let mut by_total: Vec<&FleetRun> = runs.iter().collect();
    by_total.sort_by_key(|r| r.calls.values().sum::<usize>());
    let calls = &by_total[by_total.len() / 2].calls;
    let list: Vec<String> = calls.iter().map(|(action, n)| format!("{n} {action}")).collect();
    list.join(" + ")
}

/// Whether a fleet fits the function's memory and timeout (from its worst run), in words.
fn verdict(instances: usize, rss_mib: f64, wall_ms: f64, cpu_ms: f64) -> String {
    let cpu_floor_s = cpu_ms / 1000.0 * VCPU_MB / MEMORY_MB;
    let timeout_s = TIMEOUT.as_secs_f64();
    let memory = if rss_mib <= MEMORY_MB {
        format!("{instances} instances fit in {MEMORY_MB:.0} MB (peak {rss_mib:.1} MiB)")
    } else {
        format!("{instances} instances do NOT fit in {MEMORY_MB:.0} MB (peak {rss_mib:.1} MiB)")
    };
    let time = if wall_ms / 1000.0 < timeout_s && cpu_floor_s < timeout_s {
        format!(
            "and within {timeout_s:.0} s: {:.1} s here, and its CPU time at 128 MB's vCPU share at least \
             {cpu_floor_s:.0} s, plus EC2's answering time for the calls above",
            wall_ms / 1000.0
        )
    } else {
        format!(
            "but NOT within {timeout_s:.0} s: {:.1} s here, and its CPU time at 128 MB's vCPU share at least \
             {cpu_floor_s:.0} s",
            wall_ms / 1000.0
        )
    };
    format!("{memory}, {time}")
}

/// A build of the scheduler from before a change, run beside this one on the same fleets
/// (`STACKHAND_BENCH_BASELINE=<binary>`; scripts/bench builds it from `STACKHAND_BENCH_BASELINE_REV`):
/// its figures fill the peer column, so the ratio is this build's against that one's, in one run.
struct Baseline {
    binary: String,
    name: &'static str,
}

impl Baseline {
    fn from_env() -> Option<Self> {
        let binary = std::env::var("STACKHAND_BENCH_BASELINE").ok().filter(|b| !b.is_empty())?;
        let label = std::env::var("STACKHAND_BENCH_BASELINE_LABEL").unwrap_or_else(|_| binary.clone());
        // Row names its peer with a &'static str; one string per bench process.
        Some(Self { binary, name: Box::leak(format!("the scheduler at {label}").into_boxed_str()) })
    }
}

/// The medians of one figure over some runs.
fn median_of(runs: &[FleetRun], f: fn(&FleetRun) -> f64) -> f64 {
    if runs.is_empty() {
        return f64::NAN;
    }
    median_f(runs.iter().map(f).collect())
}

/// The rows of each fleet in SIZES.
pub async fn rows(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/instance-scheduler");
    let baseline = Baseline::from_env();
    let peer_name = baseline.as_ref().map_or(NO_PEER, |b| b.name);
    let mut rows = Vec::new();
    let (sizes, runs_of_each) = (sizes(), fleet_runs());
    for &instances in &sizes {
        let replay = Ec2Replay::start(instances, REGION).await;
        let (mut runs, mut before) = (Vec::new(), Vec::new());
        // Interleaved, so that what else the machine does falls on both builds alike.
        for _ in 0..runs_of_each {
            runs.push(fleet_run(&binary, &replay, instances).await);
            if let Some(baseline) = &baseline {
                before.push(fleet_run(&baseline.binary, &replay, instances).await);
            }
        }
        let median = |f: fn(&FleetRun) -> f64| median_of(&runs, f);
        let (wall_ms, cpu_ms, rss_mib) = (median(|r| r.wall_ms), median(|r| r.cpu_ms), median(|r| r.rss_mib));
        let calls = median(|r| r.calls.values().sum::<usize>() as f64);
        let deferred = median(|r| r.deferred as f64) as usize;
        let peer = |f: fn(&FleetRun) -> f64| median_of(&before, f);
        // Whether it fits is the worst run's answer.
        let worst = |f: fn(&FleetRun) -> f64| runs.iter().map(f).fold(f64::MIN, f64::max);
        let verdict = verdict(instances, worst(|r| r.rss_mib), worst(|r| r.wall_ms), worst(|r| r.cpu_ms));
        let row =
            |scenario: String, unit, ours, peer: f64, note: String| Row { scenario, unit, ours, peer_name, peer, note };
        let whole = |x: f64| format!("{x:.0}");
        rows.extend([
            row(
                format!(
                    "fleet-{instances}: reconcile stopping {instances} instances (EC2 replay server), event to answer"
                ),
                "ms",
                wall_ms,
                peer(|r| r.wall_ms),
                if instances == sizes[0] {
                    fill(WALL_NOTE, &[("runs", runs_of_each.to_string()), ("deferred", deferred.to_string())])
                } else {
                    fill(
                        WALL_NOTE_AGAIN,
                        &[
                            ("first", sizes[0].to_string()),
                            ("runs", runs_of_each.to_string()),
                            ("deferred", deferred.to_string()),
                        ],
                    )
                },
            ),
            row(
                format!("fleet-{instances}-calls: AWS calls for that reconcile"),
                "calls",
                calls,
                peer(|r| r.calls.values().sum::<usize>() as f64),
                fill(CALLS_NOTE, &[("calls", calls_in_words(&runs))]),
            ),
            row(
                format!("fleet-{instances}-cpu: CPU time (user + system) of that reconcile"),
                "ms",
                cpu_ms,
                peer(|r| r.cpu_ms),
                fill(
                    CPU_NOTE,
                    &[
                        ("share", format!("{:.1}", MEMORY_MB / VCPU_MB * 100.0)),
                        ("vcpu_mb", whole(VCPU_MB)),
                        ("floor", format!("{:.1}", cpu_ms / 1000.0 * VCPU_MB / MEMORY_MB)),
                    ],
                ),
            ),
            row(
                format!("fleet-{instances}-rss: peak resident memory of that reconcile"),
                "MiB",
                rss_mib,
                peer(|r| r.rss_mib),
                fill(RSS_NOTE, &[("verdict", verdict)]),
            ),
        ]);
    }
    rows
}
