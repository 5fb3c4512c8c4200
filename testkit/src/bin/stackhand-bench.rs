//! `make bench`: each stackhand function measured beside a peer doing the same job, in the same run,
//! on the same machine and the same local stack. Prints a table and writes docs/benchmarks.md.
//!
//! Scenarios:
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

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
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
    scenario: &'static str,
    ours: Duration,
    peer_name: &'static str,
    peer: Duration,
    note: String,
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
        scenario: "schema-1000: 1,000 statements (20 CREATE TABLE, 980 INSERT) into MariaDB",
        ours: median(ours),
        peer_name: "mariadb client < script.sql",
        peer: median(peer),
        note:
            "ours includes reading 20 parameters from SSM, the history table, the lock and per-batch progress records"
                .into(),
    }
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
    let rows = vec![schema_1000(&bin_dir).await];

    let mut table =
        String::from("| scenario | stackhand | peer | peer time | stackhand / peer |\n|---|---|---|---|---|\n");
    for r in &rows {
        let ratio = r.ours.as_secs_f64() / r.peer.as_secs_f64();
        writeln!(table, "| {} | {} | {} | {} | {ratio:.2} |", r.scenario, ms(r.ours), r.peer_name, ms(r.peer)).unwrap();
    }
    println!("{table}");
    let notes: String =
        rows.iter().map(|r| format!("- {}: {}\n", r.scenario.split(':').next().unwrap(), r.note)).collect();
    let doc = format!(
        "# Benchmarks\n\n\
         Produced by `make bench` (testkit/src/bin/stackhand-bench.rs); do not edit by hand.\n\n\
         Each row measures a stackhand function (release build, driven through the Lambda Runtime API as Lambda \
         drives it) and a peer doing the same job, in the same run, on the same machine and the same local stack \
         (moto and MariaDB on 127.0.0.1). Times are medians of {RUNS} interleaved runs; the last column is the \
         ratio (below 1: stackhand is faster). Absolute times are this machine's; the ratio is the figure to \
         compare.\n\n\
         Machine: {}.\n\n{table}\n{notes}",
        machine()
    );
    std::fs::create_dir_all(std::path::Path::new(&out).parent().unwrap()).unwrap();
    std::fs::write(&out, doc).unwrap();
    println!("written to {out}");
}
