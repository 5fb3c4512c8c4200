//! aurora-schema-init: the cold start against schema init as commonly published
//! (bench/peers/schema_init.py), and a generated 1,000-statement script against the `mariadb` client.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::json;
use testkit::local::{self, aws_env, mariadb_port, moto_url, MARIADB_PASSWORD, MARIADB_USER};
use testkit::{status, Harness};

use super::{cold_rows, one_cold_run, python_peer, RUNS};
use crate::report::{median, millis, Row};

const MIGRATIONS: usize = 20;
const PER_MIGRATION: usize = 50;
const SCHEMA_PEER: &str = "schema_init.lambda_handler";

const FIRST_INVOCATION_NOTE: &str = "the peer (bench/peers/schema_init.py: PyMySQL) splits each parameter on every \
     semicolon and keeps no history, so this script has none inside its strings; stackhand also takes the \
     migration lock and records history and per-batch progress";

const SCRIPT_NOTE: &str =
    "ours includes reading 20 parameters from SSM, the history table, the lock and per-batch progress records";

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

pub async fn cold_start(bin_dir: &str) -> Vec<Row> {
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
        FIRST_INVOCATION_NOTE,
    )
}

/// The generated 1,000-statement script applied by aurora-schema-init and by the `mariadb` client.
pub async fn script_1000(bin_dir: &str) -> Row {
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
        note: SCRIPT_NOTE.into(),
    }
}
