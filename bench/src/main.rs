//! `make bench`: each stackhand function measured beside a peer doing the same job, in the same run,
//! on the same machine and the same local stack. Prints a table and writes docs/benchmarks.md.
//!
//! Scenarios:
//! - nlb-cold-start: nlb-ip-allowlist (release) vs. the NLB-whitelisting function as commonly
//!   published (bench/peers/nlb_whitelist.py: boto3 + cfnresponse under awslambdaric): process start to
//!   the first Runtime API poll, the first invocation (a Create over 3 ENIs and 2 port ranges), peak RSS.
//! - nlb-api-calls: AWS calls one Create makes with 2, 6 and 12 ENIs, counted at a proxy before moto.
//! - eip-cold-start: eip-binding vs. pool binding as commonly published (bench/peers/eip_pool.py), the
//!   same three figures for a Create binding one address of a 2-address pool to an instance.
//! - schema-cold-start: aurora-schema-init vs. schema init as commonly published
//!   (bench/peers/schema_init.py: boto3 + PyMySQL + cfnresponse), the same three figures for a Create
//!   applying the generated 1,000-statement script from SSM.
//! - schema-1000: a generated 1,000-statement script (20 migrations of 50 statements, each within
//!   SSM's 4 KB standard-parameter limit) applied by aurora-schema-init (release build, through the
//!   Runtime API, SQL from moto's SSM) vs. the `mariadb` command-line client feeding the same
//!   statements to the same server. Median of RUNS runs each, interleaved.
//! - scheduler-N: instance-scheduler (release) vs. a one-call-per-resource Python scheduler
//!   (bench/peers/instance_scheduler.py under awslambdaric), each a fresh process reconciling a fleet of
//!   N instances + 200 RDS databases that should all be stopped: wall time and AWS calls (counted at a
//!   proxy before moto); then, for N = 1,000, warm, a second reconcile with nothing to change — its duration and the
//!   peak RSS give the monthly Lambda cost of reconciling every 5 minutes. Each process's CPU time
//!   (/proc/<pid>/stat) is measured beside the wall time, which is mostly moto's, and prices the
//!   functions' own work. The 1,000 fleet's runs also give the process start to first poll. Median of
//!   SCHEDULER_RUNS.
//!
//! STACKHAND_BENCH_ONLY=eip,schema runs only the groups named (floor, nlb, eip, schema, scheduler).

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::json;
use testkit::local::{
    self, aws_env, aws_env_in, mariadb_port, moto_url, sdk_config_in, MARIADB_PASSWORD, MARIADB_USER,
};
use testkit::{status, Answer, FunctionProcess, Harness, RuntimeApi, ThrottlingProxy};

const RUNS: usize = 5;
const MIGRATIONS: usize = 20;
const PER_MIGRATION: usize = 50;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Migration `m` of the generated script: one CREATE TABLE and 49 INSERTs whose strings hold `mark`
/// (a semicolon, to check the splitting, or a comma where a peer splits on every semicolon).
fn migration_sql(m: usize, mark: char) -> String {
    let mut sql = format!("CREATE TABLE t{m:02} (id int PRIMARY KEY, name varchar(64), note varchar(128));\n");
    for i in 1..PER_MIGRATION {
        writeln!(sql, "INSERT INTO t{m:02} VALUES ({i}, 'name-{i}', 'note{mark} number {i}');").unwrap();
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

/// A row comparing the medians of one figure `f` over our runs and the peer's.
fn paired<T>(
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

async fn schema_1000(bin_dir: &str) -> Row {
    let binary = format!("{bin_dir}/aurora-schema-init");
    assert!(std::path::Path::new(&binary).exists(), "{binary} is missing: build it with `cargo build --release`");
    let mut env = aws_env(&moto_url());
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    let h = Harness::start(&binary, "Custom::AuroraSchema", &env).await;
    let ssm = local::ssm().await;
    let password = password_parameter(&ssm).await;
    let script: String = (0..MIGRATIONS).map(|m| migration_sql(m, ';')).collect();
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
        put_script(&ssm, &path, ';').await;
        let props = schema_props(&format!("{tag}_fn"), &password, &path);
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

/// A peer in bench/peers (`handler` as `module.function`) under the AWS Lambda Runtime Interface
/// Client, run from its folder (`python -m` puts the working directory on the import path; the harness
/// starts processes with a clean environment).
fn python_peer(handler: &str) -> Command {
    let root = std::env::current_dir().unwrap();
    let mut cmd = Command::new(root.join(".venv/bin/python"));
    cmd.args(["-m", "awslambdaric", handler]).current_dir(root.join("bench/peers"));
    cmd
}

const NLB_PEER: &str = "nlb_whitelist.lambda_handler";
const EIP_PEER: &str = "eip_pool.lambda_handler";
const SCHEMA_PEER: &str = "schema_init.lambda_handler";
const SCHEDULER_PEER: &str = "instance_scheduler.lambda_handler";
const CFN_PEER: &str = "Python 3.11 + boto3 + cfnresponse (awslambdaric)";

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

/// Process start to first Runtime API poll of `binary`, without invoking it.
async fn init_only(binary: &str) -> ColdRun {
    let api = RuntimeApi::start().await;
    let mut env = aws_env(&moto_url());
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    let process = FunctionProcess::spawn(binary, &api.address(), &env);
    let init = until_first_poll(&api, &process).await;
    ColdRun { init_ms: millis(init), first_ms: 0.0, rss_mib: 0.0 }
}

const FLOOR: &str = "minimal Rust Lambda: lambda_runtime + aws-config + one SDK client (same release profile)";

/// Each function's init against the floor a Rust Lambda cannot go below (testkit's stackhand-floor),
/// runs interleaved so that both see the same machine.
async fn floor_rows(bin_dir: &str) -> Vec<Row> {
    let floor = format!("{bin_dir}/stackhand-floor");
    assert!(
        std::path::Path::new(&floor).exists(),
        "{floor} is missing: build it with `cargo build --release -p testkit --bin stackhand-floor`"
    );
    let mut rows = Vec::new();
    for function in ["nlb-ip-allowlist", "aurora-schema-init", "eip-binding", "instance-scheduler"] {
        let binary = format!("{bin_dir}/{function}");
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            ours.push(init_only(&binary).await);
            peer.push(init_only(&floor).await);
        }
        rows.push(paired(
            format!("{function}-init-vs-floor: process start to first Runtime API poll"),
            "ms",
            &ours,
            FLOOR,
            &peer,
            |r| r.init_ms,
        ));
    }
    rows
}

async fn nlb_cold_start(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/nlb-ip-allowlist");
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let octet = 100 + (run as u8) * 2;
        ours.push(one_cold_run(Command::new(&binary), NLB_TYPE, nlb_world(3, octet).await, &moto_url()).await);
        peer.push(one_cold_run(python_peer(NLB_PEER), NLB_TYPE, nlb_world(3, octet + 1).await, &moto_url()).await);
    }
    cold_rows(
        "nlb",
        "3 ENIs, 2 port ranges",
        &ours,
        CFN_PEER,
        &peer,
        "both against the same moto; the peer (bench/peers/nlb_whitelist.py) makes one call per address and port, \
         stackhand one per port range",
    )
}

/// A fresh instance and a pool of two free Elastic IPs tagged for it; returns the Create properties
/// and the pool's tag value.
async fn eip_world(octet: u8) -> (serde_json::Value, String) {
    let ec2 = local::ec2().await;
    let subnet = local::network(&ec2, octet).await.subnet_ids[0].clone();
    let instance = local::instance(&ec2, &subnet, &[]).await;
    let pool = testkit::unique("bench-pool");
    for _ in 0..2 {
        local::elastic_ip(&ec2, &[("eip-pool", &pool)]).await;
    }
    (json!({"InstanceId": instance, "PoolTag": format!("eip-pool={pool}")}), pool)
}

/// How many of the pool's addresses are associated.
async fn bound_in(pool: &str) -> usize {
    let filter = aws_sdk_ec2::types::Filter::builder().name("tag:eip-pool").values(pool).build();
    let out = local::ec2().await.describe_addresses().filters(filter).send().await.expect("DescribeAddresses");
    out.addresses().iter().filter(|a| a.association_id().is_some()).count()
}

async fn eip_cold_start(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/eip-binding");
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let octet = 140 + (run as u8) * 2;
        for (side, runs) in [&mut ours, &mut peer].into_iter().enumerate() {
            let command = if side == 0 { Command::new(&binary) } else { python_peer(EIP_PEER) };
            let (props, pool) = eip_world(octet + side as u8).await;
            runs.push(one_cold_run(command, "Custom::EipBinding", props, &moto_url()).await);
            assert_eq!(bound_in(&pool).await, 1, "one address of {pool} bound");
        }
    }
    cold_rows(
        "eip",
        "bind one address of a 2-address pool to an instance",
        &ours,
        CFN_PEER,
        &peer,
        "the peer (bench/peers/eip_pool.py) describes the pool and associates its first free address: 2 round \
         trips. stackhand reads the instance's primary interface and the pool at once, associates, then tags the \
         address with its owner: 3 round trips, so against moto it is about one round trip slower. The tag is what \
         lets a Delete release only its own binding and a retried Create recognise its own; a lost race moves on \
         to the next free address where the peer fails",
    )
}

/// An SSM SecureString parameter holding the local MariaDB password; returns its name.
async fn password_parameter(ssm: &aws_sdk_ssm::Client) -> String {
    let name = format!("/bench-{}/db-password", std::process::id());
    ssm.put_parameter()
        .name(&name)
        .value(MARIADB_PASSWORD)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    name
}

/// The generated script as MIGRATIONS String parameters under `path`, strings marked with `mark`.
async fn put_script(ssm: &aws_sdk_ssm::Client, path: &str, mark: char) {
    for m in 0..MIGRATIONS {
        ssm.put_parameter()
            .name(format!("{path}/{m:04}"))
            .value(migration_sql(m, mark))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }
}

/// Create properties applying the script under `path` to `database` on the local MariaDB.
fn schema_props(database: &str, password: &str, path: &str) -> serde_json::Value {
    json!({
        "Endpoint": "127.0.0.1", "Port": mariadb_port().to_string(), "Tls": "disabled", "Database": database,
        "Username": MARIADB_USER, "PasswordParameter": password, "SqlParameterPath": path,
    })
}

async fn schema_cold_start(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/aurora-schema-init");
    let ssm = local::ssm().await;
    let password = password_parameter(&ssm).await;
    let path = format!("/bench-{}/cold-schema", std::process::id());
    put_script(&ssm, &path, ',').await;
    let expected_rows = (MIGRATIONS * (PER_MIGRATION - 1)) as u64;
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        for (side, runs) in [&mut ours, &mut peer].into_iter().enumerate() {
            let database = format!("bench_cold_{}_{run}_{side}", std::process::id());
            local::mariadb().await.query_drop(format!("CREATE DATABASE `{database}`")).await.unwrap();
            let command = if side == 0 { Command::new(&binary) } else { python_peer(SCHEMA_PEER) };
            let props = schema_props(&database, &password, &path);
            runs.push(one_cold_run(command, "Custom::AuroraSchema", props, &moto_url()).await);
            assert_eq!(rows(&database).await, expected_rows, "the whole script applied to {database}");
        }
    }
    cold_rows(
        "schema",
        "1,000 statements from 20 SSM parameters",
        &ours,
        "Python 3.11 + boto3 + PyMySQL + cfnresponse (awslambdaric)",
        &peer,
        "the peer (bench/peers/schema_init.py: PyMySQL) splits each parameter on every semicolon and keeps no \
         history, so this script has none inside its strings; stackhand also takes the migration lock and records \
         history and per-batch progress",
    )
}

async fn nlb_api_calls(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/nlb-ip-allowlist");
    let mut rows = Vec::new();
    for (i, enis) in [2usize, 6, 12].into_iter().enumerate() {
        let mut counts = [0.0; 2];
        for (side, count) in counts.iter_mut().enumerate() {
            let proxy = testkit::ThrottlingProxy::start(&moto_url(), usize::MAX).await;
            let command = if side == 0 { Command::new(&binary) } else { python_peer(NLB_PEER) };
            let props = nlb_world(enis, 120 + (i * 2 + side) as u8).await;
            let before = proxy.seen();
            one_cold_run(command, NLB_TYPE, props, &proxy.url()).await;
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

const SCHEDULER_RUNS: usize = 3;
const SCHEDULE: &str = "Mon-Fri 08:00-19:00 Europe/London";
/// Monday 20:00 in London: every resource of the fleet should be stopped.
const NIGHT: &str = "2026-11-23T20:00:00Z";
const DATABASES: usize = 200;
/// Where moto's first DescribeInstances page takes longer than this, the scheduler scenario is not run:
/// both sides give up on an attempt after 60 s.
const LISTING_LIMIT: Duration = Duration::from_secs(45);
/// Lambda on arm64, us-east-1: USD per GB-second; reconciles in a 30-day month at one per 5 minutes.
const PRICE_PER_GB_SECOND: f64 = 0.000_013_333_4;
const RECONCILES_PER_MONTH: f64 = 30.0 * 24.0 * 12.0;
/// The memory setting at which a Lambda function has the equivalent of one vCPU.
const VCPU_MB: f64 = 1769.0;

/// A fleet in a region of its own: `instances` EC2 instances and DATABASES RDS instances, all tagged
/// with SCHEDULE and running.
struct Fleet {
    region: &'static str,
    ec2: aws_sdk_ec2::Client,
    rds: aws_sdk_rds::Client,
    instances: Vec<String>,
    databases: Vec<String>,
}

impl Fleet {
    async fn seed(region: &'static str, instances: usize) -> Self {
        let config = sdk_config_in(&moto_url(), region).await;
        let (ec2, rds) = (aws_sdk_ec2::Client::new(&config), aws_sdk_rds::Client::new(&config));
        let image = ec2.describe_images().owners("amazon").send().await.unwrap();
        let image = image.images()[0].image_id().unwrap().to_owned();
        let tag = aws_sdk_ec2::types::ResourceType::Instance;
        let mut ids = Vec::new();
        while ids.len() < instances {
            let n = (instances - ids.len()).min(1000) as i32;
            let out = ec2
                .run_instances()
                .image_id(&image)
                .min_count(n)
                .max_count(n)
                .tag_specifications(local::tags(tag.clone(), &[("Schedule", SCHEDULE)]))
                .send()
                .await
                .expect("RunInstances");
            ids.extend(out.instances().iter().map(|i| i.instance_id().unwrap().to_owned()));
        }
        let mut databases = Vec::new();
        for i in 0..DATABASES {
            let id = format!("bench-db-{i:03}");
            testkit::fleet::db_instance(&rds, &id, None, &[("Schedule", SCHEDULE)]).await;
            databases.push(id);
        }
        Self { region, ec2, rds, instances: ids, databases }
    }

    /// Everything running again, for the next measured run.
    async fn wake(&self) {
        for chunk in self.instances.chunks(1000) {
            self.ec2.start_instances().set_instance_ids(Some(chunk.to_vec())).send().await.expect("StartInstances");
        }
        for db in &self.databases {
            if testkit::fleet::db_instance_status(&self.rds, db).await == "stopped" {
                self.rds.start_db_instance().db_instance_identifier(db).send().await.expect("StartDBInstance");
            }
        }
    }

    /// How long moto takes to answer the first page the scheduler asks for.
    async fn first_page(&self) -> Duration {
        let started = Instant::now();
        self.ec2
            .describe_instances()
            .filters(aws_sdk_ec2::types::Filter::builder().name("tag-key").values("Schedule").build())
            .max_results(1000)
            .send()
            .await
            .expect("DescribeInstances");
        started.elapsed()
    }

    async fn all_stopped(&self) -> bool {
        let states = testkit::fleet::instance_states(&self.ec2, &self.instances).await;
        let mut ok = states.iter().all(|s| s == "stopped");
        for db in &self.databases {
            ok &= testkit::fleet::db_instance_status(&self.rds, db).await == "stopped";
        }
        ok
    }
}

struct SchedulerRun {
    /// Process start to the first Runtime API poll.
    init_ms: f64,
    /// The reconcile that stops the whole fleet: wall time, AWS calls, the process's CPU time.
    stop_ms: f64,
    stop_calls: f64,
    stop_cpu_ms: f64,
    /// The same reconcile again, warm, with nothing to change: wall time, CPU time.
    steady_ms: f64,
    steady_cpu_ms: f64,
    rss_mib: f64,
}

/// With `steady`, also the warm second reconcile (only the 1,000 fleet reports it: on the 5,000 fleet
/// moto's one-page answer to the peer can outlast boto3's 60 s read timeout).
async fn scheduler_run(command: Command, fleet: &Fleet, steady: bool) -> SchedulerRun {
    let proxy = ThrottlingProxy::counting(&moto_url()).await;
    let mut env = aws_env_in(&proxy.url(), fleet.region);
    env.push(("AWS_DEFAULT_REGION".into(), fleet.region.into()));
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    let api = RuntimeApi::start().await;
    let process = FunctionProcess::spawn_command(command, &api.address(), &env);
    let init_ms = millis(until_first_poll(&api, &process).await);
    let cpu = || millis(process.cpu_time().expect("the process's CPU time from /proc"));
    let event = json!({"action": "reconcile", "time": NIGHT});
    let invoke = || async {
        let started = Instant::now();
        let answer = api.invoke_json(&event, Duration::from_secs(900)).await.answer;
        assert!(matches!(answer, Answer::Response(_)), "{answer:?}\n{}", process.output());
        millis(started.elapsed())
    };
    let cpu_at_init = cpu();
    let stop_ms = invoke().await;
    let stop_calls = proxy.seen() as f64;
    let cpu_after_stop = cpu();
    assert!(fleet.all_stopped().await, "the fleet was not stopped:\n{}", process.output());
    let (steady_ms, steady_cpu_ms) =
        if steady { (invoke().await, cpu() - cpu_after_stop) } else { (f64::NAN, f64::NAN) };
    let rss_mib = process.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
    SchedulerRun {
        init_ms,
        stop_ms,
        stop_calls,
        stop_cpu_ms: cpu_after_stop - cpu_at_init,
        steady_ms,
        steady_cpu_ms,
        rss_mib,
    }
}

/// The smallest Lambda memory setting that holds `rss_mib` with 16 MiB to spare.
fn configured_memory(rss_mib: f64) -> f64 {
    [128.0, 192.0, 256.0, 384.0, 512.0, 1024.0].into_iter().find(|m| *m >= rss_mib + 16.0).unwrap_or(2048.0)
}

fn monthly_cost(duration_ms: f64, memory_mb: f64) -> f64 {
    RECONCILES_PER_MONTH * (duration_ms.ceil() / 1000.0) * (memory_mb / 1024.0) * PRICE_PER_GB_SECOND
}

async fn scheduler(bin_dir: &str, region: &'static str, instances: usize) -> Vec<Row> {
    let binary = format!("{bin_dir}/instance-scheduler");
    let fleet = Fleet::seed(region, instances).await;
    let what = format!("{instances} instances + {DATABASES} RDS");
    // moto answers a DescribeInstances page in time that grows with the square of the Region's
    // instances (each instance's tags are found by scanning all of them). Where one page takes longer
    // than both sides' per-attempt timeout (60 s), neither can list the fleet: say so, measure nothing.
    let page = fleet.first_page().await;
    if page > LISTING_LIMIT {
        return vec![Row {
            scenario: format!("scheduler-{instances}: reconcile stopping {what}, event to answer"),
            unit: "ms",
            ours: f64::NAN,
            peer_name: "Python 3.11 + boto3, one call per resource (awslambdaric)",
            peer: f64::NAN,
            note: format!(
                "not measured in this run: moto took {:.0} s to answer the first DescribeInstances page (1,000 \
                 instances, tag-key filter), over the 60 s per-attempt read timeout of both stackhand and boto3, so \
                 neither side could list the fleet. Real EC2 answers such a page in seconds; moto's time grows with \
                 the square of the Region's instances and with the machine",
                page.as_secs_f64()
            ),
        }];
    }
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    // The 1,000 fleet also gives the cold start, the warm reconcile, memory and cost.
    let detailed = instances == 1000;
    for _ in 0..SCHEDULER_RUNS {
        ours.push(scheduler_run(Command::new(&binary), &fleet, detailed).await);
        fleet.wake().await;
        peer.push(scheduler_run(python_peer(SCHEDULER_PEER), &fleet, detailed).await);
        fleet.wake().await;
    }
    let peer_name = "Python 3.11 + boto3, one call per resource (awslambdaric)";
    let row = |scenario: String, unit, f: fn(&SchedulerRun) -> f64| paired(scenario, unit, &ours, peer_name, &peer, f);
    let mut rows = vec![
        Row {
            note: format!(
                "medians of {SCHEDULER_RUNS} runs, each a fresh process against a fleet that should all be stopped; \
                 stackhand stops instances 100 per call and databases 8 at a time, the peer one call per resource"
            ),
            ..row(format!("scheduler-{instances}: reconcile stopping {what}, event to answer"), "ms", |r| r.stop_ms)
        },
        row(format!("scheduler-{instances}-calls: AWS calls for that reconcile"), "calls", |r| r.stop_calls),
        Row {
            note: "the function process's own work, from /proc/<pid>/stat in 10 ms ticks; the wall time above is \
                   mostly moto answering"
                .into(),
            ..row(format!("scheduler-{instances}-cpu: CPU time (user + system) of that reconcile"), "ms", |r| {
                r.stop_cpu_ms
            })
        },
    ];
    if detailed {
        rows.insert(
            0,
            row("scheduler-cold-start: process start to first Runtime API poll".into(), "ms", |r| r.init_ms),
        );
        let steady_row =
            row(format!("scheduler-steady-{instances}: warm reconcile of {what}, nothing to change"), "ms", |r| {
                r.steady_ms
            });
        let (steady, steady_peer) = (steady_row.ours, steady_row.peer);
        let rss_row =
            row(format!("scheduler-rss-{instances}: peak resident memory over both reconciles"), "MiB", |r| r.rss_mib);
        let (memory, memory_peer) = (configured_memory(rss_row.ours), configured_memory(rss_row.peer));
        let steady_cpu_row = row(
            format!("scheduler-steady-cpu-{instances}: CPU time (user + system) of that warm reconcile"),
            "ms",
            |r| r.steady_cpu_ms,
        );
        let (cpu, cpu_peer) = (steady_cpu_row.ours, steady_cpu_row.peer);
        rows.extend([steady_row, steady_cpu_row, rss_row]);
        rows.push(Row {
            scenario: format!("scheduler-cost-{instances}: Lambda USD per month, reconciling {what} every 5 minutes"),
            unit: "USD",
            ours: monthly_cost(steady, memory),
            peer_name,
            peer: monthly_cost(steady_peer, memory_peer),
            note: format!(
                "the steady reconcile's duration x {:.0} reconciles x memory ({memory:.0} MB for stackhand, \
                 {memory_peer:.0} MB for the peer: the smallest setting above its peak RSS + 16 MiB) x USD \
                 {PRICE_PER_GB_SECOND} per GB-s (arm64, us-east-1); requests (USD 0.20 per million) and init time left \
                 out. Durations are this machine's full core and mostly moto's answering time (see the CPU rows); \
                 the next row prices the functions' own work",
                RECONCILES_PER_MONTH
            ),
        });
        let (cpu_floor, cpu_floor_peer) = (cpu * VCPU_MB / memory, cpu_peer * VCPU_MB / memory_peer);
        rows.push(Row {
            scenario: format!("scheduler-cpu-cost-{instances}: the same from CPU time alone, at the configured memory"),
            unit: "USD",
            ours: monthly_cost(cpu_floor, memory),
            peer_name,
            peer: monthly_cost(cpu_floor_peer, memory_peer),
            note: format!(
                "Lambda gives a function CPU in proportion to its memory, one vCPU at {VCPU_MB:.0} MB, so at \
                 {memory:.0} MB the warm reconcile's CPU time takes at least CPU x {VCPU_MB:.0} / {memory:.0} of \
                 billed duration: {cpu_floor:.0} ms for stackhand, {cpu_floor_peer:.0} ms for the peer. This is the \
                 floor however fast AWS answers; the real bill is the larger of this and the waiting"
            ),
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
    // STACKHAND_BENCH_ONLY=eip,schema runs only the scenario groups named (floor, nlb, eip, schema, scheduler)
    // and, unless STACKHAND_BENCH_OUT says where, prints the table without writing docs/benchmarks.md.
    let only = std::env::var("STACKHAND_BENCH_ONLY").ok();
    let wanted = |group: &str| only.as_deref().is_none_or(|o| o.split(',').any(|g| g.trim() == group));
    let out = match (std::env::var("STACKHAND_BENCH_OUT"), &only) {
        (Ok(out), _) => Some(out),
        (Err(_), None) => Some("docs/benchmarks.md".to_owned()),
        (Err(_), Some(_)) => None,
    };
    let mut rows = Vec::new();
    if wanted("floor") {
        rows.extend(floor_rows(&bin_dir).await);
    }
    if wanted("nlb") {
        rows.extend(nlb_cold_start(&bin_dir).await);
        rows.extend(nlb_api_calls(&bin_dir).await);
    }
    if wanted("eip") {
        rows.extend(eip_cold_start(&bin_dir).await);
    }
    if wanted("schema") {
        rows.extend(schema_cold_start(&bin_dir).await);
        rows.push(schema_1000(&bin_dir).await);
    }
    if wanted("scheduler") {
        rows.extend(scheduler(&bin_dir, "eu-central-1", 1000).await);
        rows.extend(scheduler(&bin_dir, "eu-north-1", 5000).await);
    }
    assert!(
        !rows.is_empty(),
        "STACKHAND_BENCH_ONLY={only:?} names no scenario group (floor, nlb, eip, schema, scheduler)"
    );

    let mut table = String::from("| scenario | stackhand | peer | peer | stackhand / peer |\n|---|---|---|---|---|\n");
    for r in &rows {
        let ratio = r.ours / r.peer;
        let (ours, peer, unit) = (r.ours, r.peer, r.unit);
        let places = if ours.abs() < 10.0 && unit == "USD" { 3 } else { 1 };
        if ours.is_nan() {
            writeln!(table, "| {} | not measured | {} | not measured | |", r.scenario, r.peer_name).unwrap();
            continue;
        }
        writeln!(
            table,
            "| {} | {ours:.places$} {unit} | {} | {peer:.places$} {unit} | {ratio:.2} |",
            r.scenario, r.peer_name
        )
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
         fewer calls). Absolute figures are this machine's; the ratio is the one to compare. The Python peers \
         are in bench/peers/, each in the shape it is commonly published in, and run under the AWS Lambda Runtime \
         Interface Client (awslambdaric) against the same Runtime API. Package sizes (arm64 zips) are in \
         [package-sizes.md](package-sizes.md), from `make package`.\n\n\
         Run it all: `make bench` (about 25 minutes on 2 cores, most of it the scheduler fleets). One group: \
         `STACKHAND_BENCH_ONLY=eip make bench` (floor, nlb, eip, schema, scheduler; comma-separated) prints its rows \
         without rewriting this file.\n\n\
         Machine: {}.\n\n{table}\n{notes}",
        machine()
    );
    match out {
        Some(out) => {
            std::fs::create_dir_all(std::path::Path::new(&out).parent().unwrap()).unwrap();
            std::fs::write(&out, doc).unwrap();
            println!("written to {out}");
        }
        None => println!("STACKHAND_BENCH_ONLY is set: docs/benchmarks.md left as it was"),
    }
}
