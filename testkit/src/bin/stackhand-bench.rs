//! `make bench`: each stackhand function measured beside a peer doing the same job, in the same run,
//! on the same machine and the same local stack. Prints a table and writes docs/benchmarks.md.
//!
//! Scenarios:
//! - nlb-cold-start: nlb-ip-allowlist (release) vs. the NLB-whitelisting function as commonly
//!   published (bench/peers/nlb_whitelist.py: boto3 + cfnresponse under awslambdaric): process start to
//!   the first Runtime API poll, the first invocation (a Create over 3 ENIs and 2 port ranges), peak RSS.
//! - nlb-api-calls: AWS calls one Create makes with 2, 6 and 12 ENIs, counted at a proxy before moto.
//! - schema-1000: a generated 1,000-statement script (20 migrations of 50 statements, each within
//!   SSM's 4 KB standard-parameter limit) applied by aurora-schema-init (release build, through the
//!   Runtime API, SQL from moto's SSM) vs. the `mariadb` command-line client feeding the same
//!   statements to the same server. Median of RUNS runs each, interleaved.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::json;
use testkit::local::{self, aws_env, mariadb_port, moto_url, MARIADB_PASSWORD, MARIADB_USER};
use testkit::{status, Harness};

const RUNS: usize = 5;
const MIGRATIONS: usize = 20;
const PER_MIGRATION: usize = 50;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Migration `m` of the generated script: one CREATE TABLE and 49 INSERTs with semicolons in strings.
fn migration_sql(m: usize) -> String {
    let mut sql = format!("CREATE TABLE t{m:02} (id int PRIMARY KEY, name varchar(64), note varchar(128));\n");
    for i in 1..PER_MIGRATION {
        writeln!(sql, "INSERT INTO t{m:02} VALUES ({i}, 'name-{i}', 'note; number {i}');").unwrap();
    }
    sql
}

async fn rows(database: &str) -> u64 {
    let mut conn = local::mariadb().await;
    let mut total = 0;
    for m in 0..MIGRATIONS {
        let n: Option<u64> = conn.query_first(format!("SELECT COUNT(*) FROM `{database}`.t{m:02}")).await.unwrap();
        total += n.unwrap_or(0);
    }
    total
}

struct Row {
    scenario: String,
    unit: &'static str,
    ours: f64,
    peer_name: &'static str,
    peer: f64,
    note: String,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn schema_1000(bin_dir: &str) -> Row {
    let binary = format!("{bin_dir}/aurora-schema-init");
    assert!(std::path::Path::new(&binary).exists(), "{binary} is missing: build it with `cargo build --release`");
    let mut env = aws_env(&moto_url());
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    let h = Harness::start(&binary, "Custom::AuroraSchema", &env).await;
    let ssm = local::ssm().await;
    let password = format!("/bench-{}/db-password", std::process::id());
    ssm.put_parameter()
        .name(&password)
        .value(MARIADB_PASSWORD)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let script: String = (0..MIGRATIONS).map(migration_sql).collect();
    let script_file = std::env::temp_dir().join(format!("stackhand-bench-{}.sql", std::process::id()));
    std::fs::write(&script_file, &script).unwrap();
    let expected_rows = (MIGRATIONS * (PER_MIGRATION - 1)) as u64;

    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let tag = format!("bench_{}_{run}", std::process::id());
        let mut conn = local::mariadb().await;
        conn.query_drop(format!("CREATE DATABASE `{tag}_fn`")).await.unwrap();
        conn.query_drop(format!("CREATE DATABASE `{tag}_cli`")).await.unwrap();
        let path = format!("/{tag}/schema");
        for m in 0..MIGRATIONS {
            ssm.put_parameter()
                .name(format!("{path}/{m:04}"))
                .value(migration_sql(m))
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .unwrap();
        }
        let props = json!({
            "Endpoint": "127.0.0.1", "Port": mariadb_port().to_string(), "Tls": "disabled", "Database": format!("{tag}_fn"),
            "Username": MARIADB_USER, "PasswordParameter": password, "SqlParameterPath": path,
        });
        let name = format!("bench-{run}");
        let event = h.event(&name, "Create", "Schema", props);
        let started = Instant::now();
        let (_, body) = h.request(&name, event, Duration::from_secs(120)).await;
        ours.push(started.elapsed());
        assert_eq!(status(&body), "SUCCESS", "{body}");
        assert_eq!(rows(&format!("{tag}_fn")).await, expected_rows);

        let started = Instant::now();
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-h", "127.0.0.1", "-P", &mariadb_port().to_string(), "-u", MARIADB_USER])
            .arg(format!("-p{MARIADB_PASSWORD}"))
            .arg(format!("{tag}_cli"))
            .stdin(std::fs::File::open(&script_file).unwrap())
            .stdout(Stdio::null())
            .output()
            .expect("run the mariadb client");
        peer.push(started.elapsed());
        assert!(out.status.success(), "mariadb client: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(rows(&format!("{tag}_cli")).await, expected_rows);
    }
    let _ = std::fs::remove_file(&script_file);
    Row {
        scenario: "schema-1000: apply 1,000 statements (20 CREATE TABLE, 980 INSERT) to MariaDB".into(),
        unit: "ms",
        ours: millis(median(ours)),
        peer_name: "mariadb client < script.sql",
        peer: millis(median(peer)),
        note:
            "ours includes reading 20 parameters from SSM, the history table, the lock and per-batch progress records"
                .into(),
    }
}

const NLB_TYPE: &str = "Custom::NlbIpAllowlist";

/// A fresh security group and an NLB with `enis` interfaces; returns the Create properties.
async fn nlb_world(enis: usize, octet: u8) -> serde_json::Value {
    let ec2 = local::ec2().await;
    let net = local::network(&ec2, octet).await;
    let name = testkit::unique("bench-nlb").replace('_', "-");
    let group = local::security_group(&ec2, &net.vpc_id, &name).await;
    let id = format!("{:016x}", fastrand::u64(..));
    for i in 0..enis {
        local::interface(&ec2, &net.subnet_ids[i % net.subnet_ids.len()], &format!("ELB net/{name}/{id}"), None).await;
    }
    json!({
        "LoadBalancerArn": format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/{name}/{id}"),
        "SecurityGroupId": group, "Ports": ["9090", "8000-8100"],
    })
}

/// The peer under the AWS Lambda Runtime Interface Client, run from its folder (`python -m` puts the
/// working directory on the import path; the harness starts processes with a clean environment).
fn python_peer() -> Command {
    let root = std::env::current_dir().unwrap();
    let mut cmd = Command::new(root.join(".venv/bin/python"));
    cmd.args(["-m", "awslambdaric", "nlb_whitelist.lambda_handler"]).current_dir(root.join("bench/peers"));
    cmd
}

/// Cold start, first invocation and peak RSS of one fresh process running one Create.
async fn one_cold_run(command: Command, props: serde_json::Value, endpoint: &str) -> (f64, f64, f64) {
    let mut env = aws_env(endpoint);
    env.push(("AWS_DEFAULT_REGION".into(), local::REGION.into()));
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    let h = Harness::start_command(command, NLB_TYPE, &env).await;
    let polled = loop {
        if let Some(at) = h.api.first_poll() {
            break at;
        }
        assert!(h.process.started.elapsed() < Duration::from_secs(30), "no Runtime API poll:\n{}", h.process.output());
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let init = polled.duration_since(h.process.started.into());
    let started = Instant::now();
    let (_, body) = h.request("cold", h.event("cold", "Create", "Cold", props), Duration::from_secs(60)).await;
    let first = started.elapsed();
    assert_eq!(status(&body), "SUCCESS", "{body}\n{}", h.process.output());
    let rss = h.process.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
    (millis(init), millis(first), rss)
}

async fn nlb_cold_start(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/nlb-ip-allowlist");
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let octet = 100 + (run as u8) * 2;
        ours.push(one_cold_run(Command::new(&binary), nlb_world(3, octet).await, &moto_url()).await);
        peer.push(one_cold_run(python_peer(), nlb_world(3, octet + 1).await, &moto_url()).await);
    }
    let pick = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| median_f(v.iter().map(f).collect());
    let peer_name = "Python 3.11 + boto3 + cfnresponse (awslambdaric)";
    vec![
        Row {
            scenario: "nlb-cold-start: process start to first Runtime API poll".into(),
            unit: "ms",
            ours: pick(&ours, |r| r.0),
            peer_name,
            peer: pick(&peer, |r| r.0),
            note: String::new(),
        },
        Row {
            scenario: "nlb-first-invocation: first Create (3 ENIs, 2 port ranges) to its response".into(),
            unit: "ms",
            ours: pick(&ours, |r| r.1),
            peer_name,
            peer: pick(&peer, |r| r.1),
            note:
                "both against the same moto; the peer makes one call per address and port, stackhand one per port range"
                    .into(),
        },
        Row {
            scenario: "nlb-peak-rss: resident memory after that Create".into(),
            unit: "MiB",
            ours: pick(&ours, |r| r.2),
            peer_name,
            peer: pick(&peer, |r| r.2),
            note: String::new(),
        },
    ]
}

async fn nlb_api_calls(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/nlb-ip-allowlist");
    let mut rows = Vec::new();
    for (i, enis) in [2usize, 6, 12].into_iter().enumerate() {
        let mut counts = [0.0; 2];
        for (side, count) in counts.iter_mut().enumerate() {
            let proxy = testkit::ThrottlingProxy::start(&moto_url(), usize::MAX).await;
            let command = if side == 0 { Command::new(&binary) } else { python_peer() };
            let props = nlb_world(enis, 120 + (i * 2 + side) as u8).await;
            let before = proxy.seen();
            one_cold_run(command, props, &proxy.url()).await;
            *count = (proxy.seen() - before) as f64;
        }
        rows.push(Row {
            scenario: format!("nlb-api-calls-{enis}: AWS calls for one Create, {enis} ENIs x 2 port ranges"),
            unit: "calls",
            ours: counts[0],
            peer_name: "the same Python peer",
            peer: counts[1],
            note: String::new(),
        });
    }
    rows
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

#[tokio::main]
async fn main() {
    let bin_dir =
        std::env::var("STACKHAND_BENCH_BIN_DIR").expect("STACKHAND_BENCH_BIN_DIR: where the release binaries are");
    let out = std::env::var("STACKHAND_BENCH_OUT").unwrap_or_else(|_| "docs/benchmarks.md".into());
    let mut rows = nlb_cold_start(&bin_dir).await;
    rows.extend(nlb_api_calls(&bin_dir).await);
    rows.push(schema_1000(&bin_dir).await);

    let mut table = String::from("| scenario | stackhand | peer | peer | stackhand / peer |\n|---|---|---|---|---|\n");
    for r in &rows {
        let ratio = r.ours / r.peer;
        let (ours, peer, unit) = (r.ours, r.peer, r.unit);
        writeln!(table, "| {} | {ours:.1} {unit} | {} | {peer:.1} {unit} | {ratio:.2} |", r.scenario, r.peer_name)
            .unwrap();
    }
    println!("{table}");
    let notes: String = rows
        .iter()
        .filter(|r| !r.note.is_empty())
        .map(|r| format!("- {}: {}\n", r.scenario.split(':').next().unwrap(), r.note))
        .collect();
    let doc = format!(
        "# Benchmarks\n\n\
         Produced by `make bench` (testkit/src/bin/stackhand-bench.rs); do not edit by hand.\n\n\
         Each row measures a stackhand function (release build, driven through the Lambda Runtime API as Lambda \
         drives it) and a peer doing the same job, in the same run, on the same machine and the same local stack \
         (moto and MariaDB on 127.0.0.1). Times and memory are medians of {RUNS} interleaved runs, each a fresh \
         process where it says so; the last column is the ratio (below 1: stackhand is faster, smaller or makes \
         fewer calls). Absolute figures are this machine's; the ratio is the one to compare. Run it: `make bench`.\n\n\
         Machine: {}.\n\n{table}\n{notes}",
        machine()
    );
    std::fs::create_dir_all(std::path::Path::new(&out).parent().unwrap()).unwrap();
    std::fs::write(&out, doc).unwrap();
    println!("written to {out}");
}
