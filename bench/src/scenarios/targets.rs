//! instance-scheduler over many targets (issue 13): 10 targets (5 accounts × 2 Regions) of 100
//! instances each in moto, one stop of all of them by a fresh release process, with the targets run
//! concurrently (the default, SCHEDULER_CONCURRENT_TARGETS=8) against one at a time
//! (SCHEDULER_CONCURRENT_TARGETS=1). The same function on both sides: the ratio is what running the
//! targets concurrently buys.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::local::{aws_env_in, moto_url};
use testkit::{Answer, FunctionProcess, RuntimeApi, ThrottlingProxy};

use crate::report::{fill, median_f, millis, Row};

/// moto's default account is the hub's own (the Runtime API emulator invokes as 123456789012).
const ACCOUNTS: [&str; 5] = ["123456789012", "210000000001", "210000000002", "210000000003", "210000000004"];
const REGIONS: [&str; 2] = ["sa-east-1", "me-central-1"];
const PER_TARGET: usize = 100;
const RUNS: usize = 3;

const SEQUENTIAL: &str = "the same function, one target at a time (SCHEDULER_CONCURRENT_TARGETS=1)";

const NOTE: &str = "median of {runs} runs each, interleaved, a fresh release process per run stopping \
     {targets} targets ({accounts} accounts × {regions} Regions, {per} instances each, every account but the \
     hub's through AssumeRole) in moto; the targets run 8 at a time against one at a time. Goal: under 1/3 of \
     the sequential time. moto is one Python process (one core at a time, its GIL) on this 2-core machine and \
     answers in about a millisecond per call, so straight to moto the concurrent side mostly queues for it; \
     real AWS answers each account and Region on its own, and a call there waits mostly on the network";

/// What a call to a real Region costs on the network before AWS starts on it, roughly (a round trip
/// to a nearby Region plus TLS on a reused connection): added per call by a proxy in front of moto.
const LATENCY: Duration = Duration::from_millis(100);

const LATENCY_NOTE: &str = ". This row: every call delayed {ms} ms by a proxy in front of moto (testkit's \
     ThrottlingProxy::delaying), as a call to a real Region waits on the network; the calls themselves are \
     moto's as above";

/// The instances of one target, to start again between runs.
struct Target {
    /// The schedule tag key of this bench run (moto may hold an earlier run's instances).
    key: String,
    ec2: aws_sdk_ec2::Client,
    ids: Vec<String>,
}

async fn seed() -> Vec<Target> {
    let key = testkit::unique("BenchTargets");
    let mut targets = Vec::new();
    for account in ACCOUNTS {
        for region in REGIONS {
            let (ec2, ids) = super::tagged_instances(account, region, &key, PER_TARGET).await;
            targets.push(Target { key: key.clone(), ec2, ids });
        }
    }
    targets
}

/// One fresh process stopping every target with `concurrent` targets at a time: its invocation's time.
async fn one_run(binary: &str, endpoint: &str, targets: &[Target], concurrent: usize) -> f64 {
    for target in targets {
        target.ec2.start_instances().set_instance_ids(Some(target.ids.clone())).send().await.expect("StartInstances");
    }
    let mut env = aws_env_in(endpoint, REGIONS[0]);
    for (key, value) in [
        ("SCHEDULE_TAG_KEY", targets[0].key.clone()),
        ("SCHEDULER_ACCOUNTS", ACCOUNTS.join(",")),
        ("SCHEDULER_REGIONS", REGIONS.join(",")),
        ("SCHEDULER_CONCURRENT_TARGETS", concurrent.to_string()),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN".to_owned()),
    ] {
        env.push((key.into(), value));
    }
    let api = RuntimeApi::start().await;
    let process = FunctionProcess::spawn(binary, &api.address(), &env);
    let started = Instant::now();
    let answer = api.invoke_json(&json!({"action": "stop"}), Duration::from_secs(300)).await.answer;
    let elapsed = millis(started.elapsed());
    let summary: Value = match answer {
        Answer::Response(summary) => summary,
        Answer::Error(e) => panic!("the targets run failed: {e}\n{}", process.output()),
    };
    let stopped = summary["stopped"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(stopped, targets.len() * PER_TARGET, "every instance of every target: {summary}");
    elapsed
}

pub async fn rows(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/instance-scheduler");
    let targets = seed().await;
    let far = ThrottlingProxy::delaying(&moto_url(), LATENCY).await;
    let mut rows = Vec::new();
    for (endpoint, scenario, extra) in [
        (moto_url(), "", String::new()),
        (far.url(), "-at-100ms", fill(LATENCY_NOTE, &[("ms", LATENCY.as_millis().to_string())])),
    ] {
        let (mut concurrent, mut sequential) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            concurrent.push(one_run(&binary, &endpoint, &targets, 8).await);
            sequential.push(one_run(&binary, &endpoint, &targets, 1).await);
        }
        rows.push(row(&targets, scenario, median_f(concurrent), median_f(sequential), extra));
    }
    rows
}

fn row(targets: &[Target], scenario: &str, concurrent: f64, sequential: f64, extra: String) -> Row {
    let note = fill(
        NOTE,
        &[
            ("runs", RUNS.to_string()),
            ("targets", targets.len().to_string()),
            ("accounts", ACCOUNTS.len().to_string()),
            ("regions", REGIONS.len().to_string()),
            ("per", PER_TARGET.to_string()),
        ],
    );
    Row {
        scenario: format!("scheduler-{}-targets-x-{PER_TARGET}{scenario}", targets.len()),
        unit: "ms",
        ours: concurrent,
        peer_name: SEQUENTIAL,
        peer: sequential,
        note: note + &extra,
    }
}
