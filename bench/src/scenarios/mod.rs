//! The scenarios, one module per function (and the floor), and what their cold-start runs share: a
//! fresh process per run, a Python peer under awslambdaric, the three rows of a cold start.

pub mod cli;
pub mod eip;
pub mod fanout;
pub mod fleet;
pub mod floor;
pub mod nlb;
pub mod scheduler;
pub mod schema;
pub mod targets;

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::local::{self, aws_env};
use testkit::{status, FunctionProcess, Harness, RuntimeApi};

use crate::report::{millis, paired, Row};

/// `count` instances tagged `key` = `office` in `account` and `region` of moto: their client and ids.
pub async fn tagged_instances(
    account: &str,
    region: &str,
    key: &str,
    count: usize,
) -> (aws_sdk_ec2::Client, Vec<String>) {
    let ec2 = aws_sdk_ec2::Client::new(&local::sdk_config_as(&local::moto_url(), account, region).await);
    let image = ec2.describe_images().owners("amazon").send().await.expect("DescribeImages");
    let image = image.images()[0].image_id().unwrap().to_owned();
    let out = ec2
        .run_instances()
        .image_id(image)
        .min_count(count as i32)
        .max_count(count as i32)
        .tag_specifications(local::tags(aws_sdk_ec2::types::ResourceType::Instance, &[(key, "office")]))
        .send()
        .await
        .expect("RunInstances");
    let ids = out.instances().iter().map(|i| i.instance_id().unwrap().to_owned()).collect();
    (ec2, ids)
}

/// Runs per side of each scenario (the scheduler's fleets have their own count).
pub const RUNS: usize = 5;

const CFN_PEER: &str = "Python 3.11 + boto3 + cfnresponse (awslambdaric)";

/// A peer in bench/peers (`handler` as `module.function`) under the AWS Lambda Runtime Interface
/// Client, run from its folder (`python -m` puts the working directory on the import path; the harness
/// starts processes with a clean environment).
fn python_peer(handler: &str) -> Command {
    let root = std::env::current_dir().unwrap();
    let mut cmd = Command::new(root.join(".venv/bin/python"));
    cmd.args(["-m", "awslambdaric", handler]).current_dir(root.join("bench/peers"));
    cmd
}

/// One fresh process running one Create: process start to the first Runtime API poll, the Create's
/// request to its response, and peak RSS after it.
struct ColdRun {
    init_ms: f64,
    first_ms: f64,
    rss_mib: f64,
}

/// Process start to its first Runtime API poll, once that has happened.
async fn until_first_poll(api: &RuntimeApi, process: &FunctionProcess) -> Duration {
    loop {
        if let Some(at) = api.first_poll() {
            return at.duration_since(process.started.into());
        }
        assert!(process.started.elapsed() < Duration::from_secs(30), "no Runtime API poll:\n{}", process.output());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn one_cold_run(command: Command, resource_type: &str, props: serde_json::Value, endpoint: &str) -> ColdRun {
    let mut env = aws_env(endpoint);
    env.push(("AWS_DEFAULT_REGION".into(), local::REGION.into()));
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    let h = Harness::start_command(command, resource_type, &env).await;
    let init = until_first_poll(&h.api, &h.process).await;
    let started = Instant::now();
    let (_, body) = h.request("cold", h.event("cold", "Create", "Cold", props), Duration::from_secs(120)).await;
    let first = started.elapsed();
    assert_eq!(status(&body), "SUCCESS", "{body}\n{}", h.process.output());
    let rss_mib = h.process.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
    ColdRun { init_ms: millis(init), first_ms: millis(first), rss_mib }
}

/// The three rows of a cold-start scenario `name` (e.g. `nlb`): `job` says what the first invocation does.
fn cold_rows(
    name: &str,
    job: &str,
    ours: &[ColdRun],
    peer_name: &'static str,
    peer: &[ColdRun],
    note: &str,
) -> Vec<Row> {
    vec![
        paired(
            format!("{name}-cold-start: process start to first Runtime API poll"),
            "ms",
            ours,
            peer_name,
            peer,
            |r| r.init_ms,
        ),
        Row {
            note: note.into(),
            ..paired(
                format!("{name}-first-invocation: first Create ({job}) to its response"),
                "ms",
                ours,
                peer_name,
                peer,
                |r| r.first_ms,
            )
        },
        paired(format!("{name}-peak-rss: resident memory after that Create"), "MiB", ours, peer_name, peer, |r| {
            r.rss_mib
        }),
    ]
}
