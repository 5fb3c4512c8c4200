//! aurora-schema-init end to end against a real MariaDB (loopback, started by `scripts/stack`), with
//! the SQL and the credentials in moto's SSM and Secrets Manager, the binary driven through the Lambda
//! Runtime API. Needs the local stack: run with `make test`.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::{json, Value};
use testkit::local::{self, aws_env, mariadb_port, moto_url, MARIADB_PASSWORD, MARIADB_USER};
use testkit::{status, unique, FaultMatrix, Harness, ThrottlingProxy};

const BIN: &str = env!("CARGO_BIN_EXE_aurora-schema-init");
const TYPE: &str = "Custom::AuroraSchema";
const TIMEOUT: Duration = Duration::from_secs(30);

async fn harness() -> Harness {
    Harness::start(BIN, TYPE, &aws_env(&moto_url())).await
}

async fn put(name: &str, value: &str, secure: bool) {
    let kind = if secure {
        aws_sdk_ssm::types::ParameterType::SecureString
    } else {
        aws_sdk_ssm::types::ParameterType::String
    };
    local::ssm()
        .await
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter");
}

/// The password as an SSM SecureString; returns the parameter name.
async fn password_parameter(tag: &str) -> String {
    let name = format!("/app/{tag}/db-password");
    put(&name, MARIADB_PASSWORD, true).await;
    name
}

/// The credentials as an RDS-managed secret; returns its ARN.
async fn secret(tag: &str, password: &str) -> String {
    let body = json!({"engine": "mysql", "username": MARIADB_USER, "password": password}).to_string();
    let out =
        local::secrets().await.create_secret().name(format!("rds!{tag}-db")).secret_string(body).send().await.unwrap();
    out.arn().unwrap().to_owned()
}

async fn create_database(name: &str) {
    local::mariadb().await.query_drop(format!("CREATE DATABASE `{name}`")).await.unwrap();
}

async fn tables(database: &str) -> Vec<String> {
    let mut conn = local::mariadb().await;
    conn.exec(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name",
        (database,),
    )
    .await
    .unwrap()
}

async fn history(source: &str) -> Vec<(String, String, u32)> {
    let mut conn = local::mariadb().await;
    conn.exec(
        "SELECT migration, status, statements_applied FROM stackhand.schema_history WHERE source = ? ORDER BY migration",
        (source,),
    )
    .await
    .unwrap()
}

fn base_props(port: u16) -> Value {
    json!({"Endpoint": "127.0.0.1", "Port": port.to_string(), "Tls": "disabled", "ConnectTimeoutSeconds": "2"})
}

fn merge(mut a: Value, b: Value) -> Value {
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

#[tokio::test]
async fn the_seeds_script_creates_its_table_once_and_delete_keeps_it() {
    let tag = unique("seed");
    create_database(&tag).await;
    let sql_name = format!("/app/{tag}/schema.sql");
    put(&sql_name, &format!("USE {tag}; CREATE TABLE t (dt datetime);"), false).await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Username": MARIADB_USER, "PasswordParameter": password_parameter(&tag).await, "SqlParameter": sql_name}),
    );
    let h = harness().await;

    let (_, created) = h.request("c1", h.event("c1", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    assert_eq!(created["Data"]["AppliedMigrations"], json!(sql_name));
    assert_eq!(created["Data"]["SchemaVersion"], json!(sql_name));
    assert_eq!(tables(&tag).await, ["t"]);
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&format!("aurora-schema:127.0.0.1:{}/:", mariadb_port())), "{id}");

    // The same Create again (a second delivery): nothing re-applied, still SUCCESS.
    let (_, again) = h.request("c2", h.event("c2", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert_eq!(status(&again), "SUCCESS", "{again}");
    assert_eq!(again["Data"]["AppliedMigrations"], "");
    assert_eq!(again["PhysicalResourceId"], json!(id));
    assert_eq!(history(&sql_name).await, [(sql_name.clone(), "applied".to_string(), 2)]);

    let mut delete = h.event("d1", "Delete", "Schema", props);
    delete["PhysicalResourceId"] = json!(id);
    let (_, deleted) = h.request("d1", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS");
    assert_eq!(tables(&tag).await, ["t"], "Delete drops nothing");
    h.assert_no_secrets(&[MARIADB_PASSWORD]).await;
}

#[tokio::test]
async fn one_path_applied_to_two_databases_on_one_server_builds_both() {
    let tag = unique("two_dbs");
    let path = format!("/app/{tag}/schema");
    put(&format!("{path}/0001-accounts"), "CREATE TABLE accounts (id int primary key);", false).await;
    let password = password_parameter(&tag).await;
    let h = harness().await;
    for (i, database) in [format!("{tag}_a"), format!("{tag}_b")].iter().enumerate() {
        create_database(database).await;
        let props = merge(
            base_props(mariadb_port()),
            json!({"Username": MARIADB_USER, "PasswordParameter": password, "SqlParameterPath": path,
                   "Database": database}),
        );
        let name = format!("t{i}");
        let (_, created) = h.request(&name, h.event(&name, "Create", &format!("Schema{i}"), props), TIMEOUT).await;
        assert_eq!(status(&created), "SUCCESS", "{created}");
        assert_eq!(created["Data"]["AppliedMigrations"], "0001-accounts", "{database}: {created}");
        assert_eq!(tables(database).await, ["accounts"], "{database}");
    }
    let mut conn = local::mariadb().await;
    let scopes: Vec<String> = conn
        .exec(
            "SELECT target_database FROM stackhand.schema_history WHERE source = ? ORDER BY target_database",
            (&path,),
        )
        .await
        .unwrap();
    assert_eq!(scopes, [format!("{tag}_a"), format!("{tag}_b")], "one history per database");
}

#[tokio::test]
async fn migrations_under_a_path_apply_in_order_and_only_new_ones_later() {
    let tag = unique("path");
    create_database(&tag).await;
    let path = format!("/app/{tag}/schema");
    put(&format!("{path}/0002-orders"), "CREATE TABLE orders (id int primary key, customer int);", false).await;
    put(
        &format!("{path}/0001-customers"),
        "CREATE TABLE customers (id int primary key);\nINSERT INTO customers VALUES (1);",
        false,
    )
    .await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Database": tag, "SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameterPath": path}),
    );
    let h = harness().await;
    let (_, created) = h.request("p1", h.event("p1", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    assert_eq!(created["Data"]["AppliedMigrations"], "0001-customers,0002-orders");
    assert_eq!(created["Data"]["SchemaVersion"], "0002-orders");

    put(&format!("{path}/0003-index"), "CREATE INDEX by_customer ON orders (customer);", false).await;
    let mut update = h.event("p2", "Update", "Schema", props.clone());
    update["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    update["OldResourceProperties"] = props;
    let (_, updated) = h.request("p2", update, TIMEOUT).await;
    assert_eq!(status(&updated), "SUCCESS", "{updated}");
    assert_eq!(updated["Data"]["AppliedMigrations"], "0003-index", "only the new migration ran");
    assert_eq!(updated["Data"]["SchemaVersion"], "0003-index");
    assert_eq!(updated["PhysicalResourceId"], created["PhysicalResourceId"]);
    let rows: Vec<u32> = local::mariadb().await.query(format!("SELECT id FROM `{tag}`.customers")).await.unwrap();
    assert_eq!(rows, [1], "0001 ran exactly once");
    let h_rows = history(&path).await;
    assert_eq!(h_rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(), ["applied"; 3]);
    h.assert_no_secrets(&[MARIADB_PASSWORD]).await;
}

#[tokio::test]
async fn a_changed_applied_migration_fails_and_touches_nothing() {
    let tag = unique("changed");
    create_database(&tag).await;
    let path = format!("/app/{tag}/schema");
    put(&format!("{path}/0001-init"), "CREATE TABLE a (x int);", false).await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Database": tag, "Username": MARIADB_USER, "PasswordParameter": password_parameter(&tag).await, "SqlParameterPath": path}),
    );
    let h = harness().await;
    let (_, created) = h.request("x1", h.event("x1", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");

    put(&format!("{path}/0001-init"), "CREATE TABLE a (x bigint);", false).await;
    put(&format!("{path}/0002-more"), "CREATE TABLE b (y int);", false).await;
    let mut update = h.event("x2", "Update", "Schema", props);
    update["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    let (_, body) = h.request("x2", update, TIMEOUT).await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("migration 0001-init"), "{reason}");
    assert!(reason.contains("new migration"), "{reason}");
    assert_eq!(tables(&tag).await, ["a"], "0002 was not applied");
}

#[tokio::test]
async fn two_concurrent_runs_apply_exactly_once() {
    let tag = unique("race");
    create_database(&tag).await;
    let path = format!("/app/{tag}/schema");
    put(
        &format!("{path}/0001-seed"),
        "CREATE TABLE counter (n int);\nINSERT INTO counter VALUES (1);\nDO SLEEP(1);",
        false,
    )
    .await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Database": tag, "Username": MARIADB_USER, "PasswordParameter": password_parameter(&tag).await, "SqlParameterPath": path}),
    );
    let (one, two) = (harness().await, harness().await);
    let e1 = one.event("r", "Create", "Schema", props.clone());
    let e2 = two.event("r", "Create", "Schema", props);
    let ((_, b1), (_, b2)) = tokio::join!(one.request("r", e1, TIMEOUT), two.request("r", e2, TIMEOUT));
    assert_eq!((status(&b1), status(&b2)), ("SUCCESS", "SUCCESS"), "{b1}\n{b2}");
    let mut applied = [b1["Data"]["AppliedMigrations"].clone(), b2["Data"]["AppliedMigrations"].clone()];
    applied.sort_by_key(|v| v.to_string());
    assert_eq!(applied, [json!(""), json!("0001-seed")], "one run applied it, the other found nothing pending");
    let rows: Vec<u32> = local::mariadb().await.query(format!("SELECT n FROM `{tag}`.counter")).await.unwrap();
    assert_eq!(rows, [1]);
}

#[tokio::test]
async fn a_database_unavailable_for_20_seconds_is_waited_for() {
    let tag = unique("late");
    create_database(&tag).await;
    let sql = format!("/app/{tag}/schema.sql");
    put(&sql, "CREATE TABLE late (x int);", false).await;
    let port = local::Relay::start(Duration::from_secs(20), mariadb_port()).await.port;
    let props = merge(
        base_props(port),
        json!({"Database": tag, "SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameter": sql}),
    );
    let h = harness().await;
    let (_, body) = h.request("l1", h.event("l1", "Create", "Schema", props), TIMEOUT * 2).await;
    assert_eq!(status(&body), "SUCCESS", "{body}");
    assert_eq!(tables(&tag).await, ["late"]);
    assert!(h.process.output().contains("database not reachable yet"), "it did wait:\n{}", h.process.output());
}

#[tokio::test]
async fn a_database_that_never_comes_up_is_reported_before_the_deadline() {
    let tag = unique("never");
    put(&format!("/app/{tag}/schema.sql"), "SELECT 1;", false).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let props = merge(
        base_props(closed),
        json!({"Username": MARIADB_USER, "PasswordParameter": password_parameter(&tag).await, "SqlParameter": format!("/app/{tag}/schema.sql")}),
    );
    let h = harness().await;
    let (_, body) = h.request("n1", h.event("n1", "Create", "Schema", props), Duration::from_secs(6)).await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains(&format!("127.0.0.1:{closed} did not accept a connection within")), "{reason}");
    assert!(reason.contains("last error"), "{reason}");
}

#[tokio::test]
async fn bad_sql_names_the_migration_and_statement_and_a_fixed_run_resumes() {
    let tag = unique("bad");
    create_database(&tag).await;
    let path = format!("/app/{tag}/schema");
    let param = format!("{path}/0001-tables");
    put(&param, "CREATE TABLE a (x int);\nCREATE TABLE b (y int);\nCREATE TABL c (z int);", false).await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Database": tag, "Username": MARIADB_USER, "PasswordParameter": password_parameter(&tag).await, "SqlParameterPath": path}),
    );
    let h = harness().await;
    let (_, body) = h.request("b1", h.event("b1", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with("migration 0001-tables failed at statement 3 of 3 (line 3: CREATE TABL c (z int)): "),
        "{reason}"
    );
    assert!(reason.contains("error 1064"), "{reason}");
    assert!(reason.contains("Statements 1-2 of it were applied and are committed"), "{reason}");
    assert_eq!(history(&path).await, [("0001-tables".to_string(), "failed".to_string(), 2)]);

    // The fix touches only the failed statement: the run resumes there instead of failing on `a`.
    put(&param, "CREATE TABLE a (x int);\nCREATE TABLE b (y int);\nCREATE TABLE c (z int);", false).await;
    let (_, fixed) = h.request("b2", h.event("b2", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&fixed), "SUCCESS", "{fixed}");
    assert_eq!(fixed["Data"]["AppliedMigrations"], "0001-tables");
    assert_eq!(tables(&tag).await, ["a", "b", "c"]);
    assert_eq!(history(&path).await, [("0001-tables".to_string(), "applied".to_string(), 3)]);
}

#[tokio::test]
async fn procedures_with_delimiter_and_strings_with_semicolons_arrive_intact() {
    let tag = unique("proc");
    create_database(&tag).await;
    let sql = format!("/app/{tag}/schema.sql");
    let script = format!(
        "USE {tag};\n\
         CREATE TABLE notes (body text); -- a comment; with a semicolon\n\
         DELIMITER $$\n\
         CREATE PROCEDURE add_note(IN prefix varchar(20))\n\
         BEGIN\n\
           INSERT INTO notes VALUES (CONCAT(prefix, 'one; two'));\n\
           INSERT INTO notes VALUES ('it''s \"quoted\"; fine');\n\
         END$$\n\
         DELIMITER ;\n\
         CALL add_note('x;');\n\
         /* block; comment */ INSERT INTO notes VALUES ('back\\\\slash;');"
    );
    put(&sql, &script, false).await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameter": sql}),
    );
    let h = harness().await;
    let (_, body) = h.request("s1", h.event("s1", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&body), "SUCCESS", "{body}");
    let notes: Vec<String> = local::mariadb().await.query(format!("SELECT body FROM `{tag}`.notes")).await.unwrap();
    assert_eq!(notes, ["x;one; two", "it's \"quoted\"; fine", "back\\slash;"]);
    h.assert_no_secrets(&[MARIADB_PASSWORD]).await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_at_once_and_never_shown() {
    let tag = unique("denied");
    put(&format!("/app/{tag}/schema.sql"), "SELECT 1;", false).await;
    let wrong = "wrong-password-do-not-show";
    let props = merge(
        base_props(mariadb_port()),
        json!({"SecretArn": secret(&tag, wrong).await, "SqlParameter": format!("/app/{tag}/schema.sql")}),
    );
    let h = harness().await;
    let (_, body) = h.request("w1", h.event("w1", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED");
    assert!(body["Reason"].as_str().unwrap().contains("refused the login"), "{body}");
    h.assert_no_secrets(&[wrong]).await;
}

#[tokio::test]
async fn tls_required_against_a_server_without_tls_fails_clearly() {
    let tag = unique("tls");
    put(&format!("/app/{tag}/schema.sql"), "SELECT 1;", false).await;
    let mut props = merge(
        base_props(mariadb_port()),
        json!({"SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameter": format!("/app/{tag}/schema.sql")}),
    );
    props.as_object_mut().unwrap().remove("Tls");
    let h = harness().await;
    let (_, body) = h.request("t1", h.event("t1", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("connecting to 127.0.0.1"), "{reason}");
    assert!(reason.to_lowercase().contains("ssl") || reason.to_lowercase().contains("tls"), "{reason}");
}

#[tokio::test]
async fn missing_parameters_and_secrets_are_named() {
    let tag = unique("missing");
    let h = harness().await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Username": MARIADB_USER, "PasswordParameter": format!("/app/{tag}/nope"), "SqlParameter": format!("/app/{tag}/nope.sql")}),
    );
    let (_, body) = h.request("m1", h.event("m1", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("SqlParameter /app/{tag}/nope.sql does not exist")), "{reason}");
    let props =
        merge(base_props(mariadb_port()), json!({"Username": "u", "Password": "plain-text-pw", "SqlParameter": "/x"}));
    let (_, body) = h.request("m2", h.event("m2", "Create", "Schema", props), TIMEOUT).await;
    assert!(body["Reason"].as_str().unwrap().contains("Password is not accepted"), "{body}");
    h.assert_no_secrets(&["plain-text-pw"]).await;
}

#[tokio::test]
async fn a_failing_insert_rolls_back_its_batch_and_the_fix_resumes_exactly() {
    let tag = unique("batch");
    create_database(&tag).await;
    let path = format!("/app/{tag}/schema");
    let param = format!("{path}/0001-data");
    let script = "CREATE TABLE t (id int primary key);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\nINSERT INTO t VALUES (1);";
    put(&param, script, false).await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Database": tag, "SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameterPath": path}),
    );
    let h = harness().await;
    let (_, body) = h.request("t1", h.event("t1", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("failed at statement 4 of 4"), "{reason}");
    assert!(reason.contains("Duplicate entry '…' for key '…'"), "the value is masked: {reason}");
    assert!(reason.contains("Statements 1-1 of it were applied"), "{reason}");
    assert!(reason.contains("Statements 2-3 ran in one transaction with it and were rolled back"), "{reason}");
    let rows: Vec<u32> = local::mariadb().await.query(format!("SELECT id FROM `{tag}`.t")).await.unwrap();
    assert!(rows.is_empty(), "the batch was rolled back: {rows:?}");
    assert_eq!(history(&path).await, [("0001-data".to_string(), "failed".to_string(), 1)]);

    put(
        &param,
        &script.replace(
            "VALUES (1);\nINSERT INTO t VALUES (2);\nINSERT INTO t VALUES (1)",
            "VALUES (1);\nINSERT INTO t VALUES (2);\nINSERT INTO t VALUES (3)",
        ),
        false,
    )
    .await;
    let (_, fixed) = h.request("t2", h.event("t2", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&fixed), "SUCCESS", "{fixed}");
    let rows: Vec<u32> = local::mariadb().await.query(format!("SELECT id FROM `{tag}`.t ORDER BY id")).await.unwrap();
    assert_eq!(rows, [1, 2, 3], "resumed at statement 2, nothing twice");
}

fn matrix() -> FaultMatrix<'static> {
    let tag = unique("fault");
    let props = merge(
        base_props(mariadb_port()),
        json!({"Username": MARIADB_USER, "PasswordParameter": format!("/app/{tag}/missing"), "SqlParameter": format!("/app/{tag}/missing.sql")}),
    );
    let mut wrong = props.clone();
    wrong["Port"] = json!(["3306"]);
    FaultMatrix {
        binary: BIN,
        resource_type: TYPE,
        calls_aws: props.clone(),
        fails: props,
        wrong_type: wrong,
        wrong_type_named: "Port",
    }
}

testkit::fault_matrix!(matrix);

#[tokio::test]
async fn throttled_ssm_and_secrets_manager_still_converge() {
    let tag = unique("throttle");
    create_database(&tag).await;
    let path = format!("/app/{tag}/schema");
    put(&format!("{path}/0001-a"), "CREATE TABLE a (x int);", false).await;
    put(&format!("{path}/0002-b"), "CREATE TABLE b (y int);", false).await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Database": tag, "SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameterPath": path}),
    );
    let proxy = ThrottlingProxy::start(&moto_url(), 2).await;
    let h = Harness::start(BIN, TYPE, &aws_env(&proxy.url())).await;
    let (_, body) = h.request("th", h.event("th", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&body), "SUCCESS", "{body}");
    assert_eq!(body["Data"]["AppliedMigrations"], "0001-a,0002-b");
    assert_eq!(tables(&tag).await, ["a", "b"]);
    assert!(proxy.throttled() >= 1, "throttled {} of {} calls", proxy.throttled(), proxy.seen());
}

/// The two answers an interrupted statement's Reason offers the operator, as it words them.
async fn answer_interrupted(database: &str, source: &str, migration: &str, took_effect: bool) {
    let set = if took_effect {
        "statements_applied = in_flight_statement, applied_prefix_checksum = in_flight_checksum, in_flight_statement = NULL"
    } else {
        "in_flight_statement = NULL"
    };
    let sql = format!(
        "UPDATE stackhand.schema_history SET {set} \
         WHERE target_database = '{database}' AND source = '{source}' AND migration = '{migration}'"
    );
    local::mariadb().await.query_drop(sql).await.unwrap();
}

async fn connection_alive(id: u64) -> bool {
    let n: Option<u64> = local::mariadb()
        .await
        .exec_first("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", (id,))
        .await
        .unwrap();
    n == Some(1)
}

/// The first connection id a Reason names ("… connection 42 …").
fn connection_in(reason: &str) -> u64 {
    reason
        .split("connection ")
        .skip(1)
        .find_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()))
        .expect("a connection id")
}

#[tokio::test]
async fn a_connection_lost_mid_statement_is_never_repeated_blindly() {
    let tag = unique("cut");
    create_database(&tag).await;
    let path = format!("/app/{tag}/schema");
    let script = "CREATE TABLE a (x int PRIMARY KEY);\nINSERT INTO a VALUES (1);\nINSERT INTO a VALUES (2);\n\
                  DO SLEEP(3);\nCREATE TABLE b (y int);\nINSERT INTO a VALUES (3);";
    put(&format!("{path}/0001-data"), script, false).await;
    let relay = local::Relay::start(Duration::ZERO, mariadb_port()).await;
    let props = merge(
        base_props(relay.port),
        json!({"Database": tag, "SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameterPath": path}),
    );
    let h = harness().await;
    let first = h.event("k1", "Create", "Schema", props.clone());
    let cut = async {
        // The run is inside DO SLEEP(3) by now: statements 1-3 are applied and recorded.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        relay.cut();
    };
    let ((_, body), ()) = tokio::join!(h.request("k1", first, TIMEOUT), cut);
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "migration 0001-data was interrupted at statement 4 of 6 (line 4: DO SLEEP(3)): the connection was lost"
        ),
        "{reason}"
    );
    let killed = connection_in(reason);
    assert!(reason.contains(&format!("connection {killed} was killed")), "{reason}");
    assert!(!connection_alive(killed).await, "the interrupted session is gone");
    assert_eq!(history(&path).await, [("0001-data".to_string(), "running".to_string(), 3)]);

    // The next run does not guess: it stops and says how to confirm.
    let (_, again) = h.request("k2", h.event("k2", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert_eq!(status(&again), "FAILED", "{again}");
    let reason = again["Reason"].as_str().unwrap();
    assert!(
        reason.contains("interrupted at statement 4 of 6 (line 4: DO SLEEP(3)): an earlier run started it"),
        "{reason}"
    );
    assert!(
        reason.contains("If it did not: UPDATE stackhand.schema_history SET in_flight_statement = NULL WHERE"),
        "{reason}"
    );
    assert_eq!(tables(&tag).await, ["a"], "nothing after it ran");

    // The operator answers "it did not take effect": the next run runs it again, and the rest.
    answer_interrupted(&tag, &path, "0001-data", false).await;
    let (_, resumed) = h.request("k3", h.event("k3", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&resumed), "SUCCESS", "{resumed}");
    let rows: Vec<u32> = local::mariadb().await.query(format!("SELECT x FROM `{tag}`.a ORDER BY x")).await.unwrap();
    assert_eq!(rows, [1, 2, 3], "nothing applied twice");
    assert_eq!(tables(&tag).await, ["a", "b"]);
    assert_eq!(history(&path).await, [("0001-data".to_string(), "applied".to_string(), 6)]);
}

/// A statement that commits DDL and then outlives the invocation: its connection is killed before the
/// deadline (freeing the schema lock), and the DDL it committed is never run again.
#[tokio::test]
async fn a_statement_still_running_at_the_deadline_is_killed_and_not_rerun() {
    let tag = unique("slow");
    create_database(&tag).await;
    let path = format!("/app/{tag}/schema");
    let script = "CREATE TABLE a (x int);\n\
                  DELIMITER $$\n\
                  CREATE PROCEDURE slow_ddl() BEGIN CREATE TABLE b (y int); DO SLEEP(120); END$$\n\
                  DELIMITER ;\n\
                  CALL slow_ddl();\n\
                  CREATE TABLE c (z int);";
    put(&format!("{path}/0001-slow"), script, false).await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Database": tag, "SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameterPath": path}),
    );
    let h = harness().await;
    let started = std::time::Instant::now();
    let (_, body) = h.request("s1", h.event("s1", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert!(started.elapsed() < TIMEOUT, "answered in time");
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "migration 0001-slow was interrupted at statement 3 of 4 (line 5: CALL slow_ddl()): it was still running"
        ),
        "{reason}"
    );
    let killed = connection_in(reason);
    assert!(reason.contains(&format!("connection {killed} was killed")), "{reason}");
    assert!(!connection_alive(killed).await, "the session is gone, and its schema lock with it");
    assert_eq!(tables(&tag).await, ["a", "b"], "b was committed before the sleep");
    assert_eq!(history(&path).await, [("0001-slow".to_string(), "running".to_string(), 2)]);

    // The next run stops (before: it re-ran the CALL and failed on "Table 'b' already exists").
    let (_, again) = h.request("s2", h.event("s2", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert_eq!(status(&again), "FAILED", "{again}");
    let reason = again["Reason"].as_str().unwrap();
    assert!(reason.contains(&format!("an earlier run started it on connection {killed} at ")), "{reason}");
    assert!(!reason.contains("already exists"), "{reason}");

    // b is there: the operator answers "it took effect", and the run continues after it.
    answer_interrupted(&tag, &path, "0001-slow", true).await;
    let (_, resumed) = h.request("s3", h.event("s3", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&resumed), "SUCCESS", "{resumed}");
    assert_eq!(tables(&tag).await, ["a", "b", "c"]);
    assert_eq!(history(&path).await, [("0001-slow".to_string(), "applied".to_string(), 4)]);
}

#[tokio::test]
async fn no_statement_starts_too_close_to_the_deadline_and_the_next_run_resumes() {
    let tag = unique("late_stmt");
    create_database(&tag).await;
    let path = format!("/app/{tag}/schema");
    // Against a 30 s invocation the handler has about 18 s: after the sleep, under 10 s are left.
    put(&format!("{path}/0001-long"), "CREATE TABLE a (x int);\nDO SLEEP(9);\nCREATE TABLE b (y int);", false).await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Database": tag, "SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameterPath": path}),
    );
    let h = harness().await;
    let (_, body) = h.request("o1", h.event("o1", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason
            .starts_with("migration 0001-long stopped before statement 3 of 3 (line 3: CREATE TABLE b (y int)) with "),
        "{reason}"
    );
    assert!(reason.contains("the next run resumes at statement 3"), "{reason}");
    assert!(reason.contains("raise the function's Timeout"), "{reason}");
    assert_eq!(tables(&tag).await, ["a"]);
    assert_eq!(history(&path).await, [("0001-long".to_string(), "failed".to_string(), 2)]);

    let (_, again) = h.request("o2", h.event("o2", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&again), "SUCCESS", "{again}");
    assert_eq!(tables(&tag).await, ["a", "b"]);
}

#[tokio::test]
async fn a_lock_held_by_a_leftover_session_names_it() {
    let tag = unique("held");
    create_database(&tag).await;
    let sql = format!("/app/{tag}/schema.sql");
    put(&sql, "CREATE TABLE t (x int);", false).await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"Database": tag, "SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameter": sql}),
    );
    let mut holder = local::mariadb().await;
    let lock = format!("stackhand-schema:{}", stackhand::cfn::stable_digest(&[&tag, &sql]));
    let got: Option<i64> = holder.exec_first("SELECT GET_LOCK(?, 0)", (&lock,)).await.unwrap();
    assert_eq!(got, Some(1));
    let h = harness().await;
    let (_, body) = h.request("h1", h.event("h1", "Create", "Schema", props), Duration::from_secs(20)).await;
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains(&format!("held by connection {}", holder.id())), "{reason}");
    assert!(reason.contains(&format!("KILL {}", holder.id())), "{reason}");
    assert!(tables(&tag).await.is_empty());
}

#[tokio::test]
async fn a_failing_statement_with_a_password_in_it_never_shows_the_password() {
    let tag = unique("literal");
    let sql = format!("/app/{tag}/schema.sql");
    let password = "app-user-password-in-sql";
    put(&sql, &format!("CREATE USERR 'app'@'%' IDENTIFIED BY '{password}';"), false).await;
    let props = merge(
        base_props(mariadb_port()),
        json!({"SecretArn": secret(&tag, MARIADB_PASSWORD).await, "SqlParameter": sql}),
    );
    let h = harness().await;
    let (_, body) = h.request("p1", h.event("p1", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("failed at statement 1 of 1") && reason.contains("error 1064"), "{reason}");
    assert!(reason.contains("IDENTIFIED BY '…'"), "{reason}");
    h.assert_no_secrets(&[password, MARIADB_PASSWORD]).await;
}

// --- The owner's guardrails (issue 19): where the credentials may go, and what a property may name ---

/// A harness whose function runs with `extra` on top of the local stack's settings.
async fn harness_with(extra: &[(&str, &str)]) -> Harness {
    let mut env = aws_env(&moto_url());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Harness::start(BIN, TYPE, &env).await
}

/// The owner's settings as deployed from the template with its defaults: no local allowlist.
const DEFAULT_ENDPOINTS: (&str, &str) = ("SCHEMA_ALLOWED_ENDPOINTS", "");

/// A TCP listener on 127.0.0.1 that counts the connections it accepts (and closes them).
struct Listener {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Listener {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(socket);
            }
        });
        Self { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A secret in Secrets Manager's RDS format, naming its host and port; returns its ARN.
async fn rds_format_secret(tag: &str, password: &str, host: &str, port: u16) -> String {
    let body = json!({"engine": "mysql", "host": host, "port": port, "username": MARIADB_USER, "password": password});
    let out = local::secrets()
        .await
        .create_secret()
        .name(format!("rds!{tag}-hosted"))
        .secret_string(body.to_string())
        .send()
        .await
        .unwrap();
    out.arn().unwrap().to_owned()
}

/// An Aurora cluster in moto and the master user secret RDS would manage for it (tagged as RDS tags
/// it); returns the secret's ARN and the cluster's writer endpoint.
async fn managed_secret(tag: &str) -> (String, String) {
    let rds = aws_sdk_rds::Client::new(&local::sdk_config(&moto_url()).await);
    let id = tag.replace('_', "-");
    let cluster = rds
        .create_db_cluster()
        .db_cluster_identifier(&id)
        .engine("aurora-mysql")
        .master_username("admin")
        .master_user_password("moto-only-password")
        .send()
        .await
        .expect("CreateDBCluster")
        .db_cluster
        .unwrap();
    let tag_ = aws_sdk_secretsmanager::types::Tag::builder()
        .key("aws:rds:primaryDBClusterArn")
        .value(cluster.db_cluster_arn().unwrap())
        .build();
    let body = json!({"username": MARIADB_USER, "password": MARIADB_PASSWORD}).to_string();
    let out = local::secrets()
        .await
        .create_secret()
        .name(format!("rds!cluster-{id}"))
        .secret_string(body)
        .tags(tag_)
        .send()
        .await
        .unwrap();
    (out.arn().unwrap().to_owned(), cluster.endpoint().unwrap().to_owned())
}

/// The attack: an author names another team's secret and their own listener. The secret names its
/// endpoint (RDS format) or its cluster (RDS-managed); the listener on 127.0.0.1 is even on the local
/// allowlist, yet it never sees a connection, and the SQL is never read (it does not exist).
#[tokio::test]
async fn a_listener_that_is_not_the_secrets_host_and_port_never_sees_a_connection() {
    let tag = unique("bound");
    let listener = Listener::start().await;
    let hosted = rds_format_secret(&tag, MARIADB_PASSWORD, "127.0.0.1", mariadb_port()).await;
    let (managed, writer) = managed_secret(&tag).await;
    let h = harness().await;
    let cases = [
        (
            hosted.clone(),
            json!(listener.port.to_string()),
            format!("Port {} is refused: SecretArn {hosted}", listener.port),
        ),
        (
            managed.clone(),
            json!(listener.port.to_string()),
            format!("Endpoint 127.0.0.1 is refused: SecretArn {managed} is the master user secret of cluster"),
        ),
    ];
    for (i, (secret, port, refusal)) in cases.into_iter().enumerate() {
        let props = merge(
            base_props(listener.port),
            json!({"SecretArn": secret, "Port": port, "SqlParameter": format!("/app/{tag}/never-read.sql")}),
        );
        let name = format!("a{i}");
        let (_, body) = h.request(&name, h.event(&name, "Create", "Schema", props), TIMEOUT).await;
        assert_eq!(status(&body), "FAILED", "{body}");
        let reason = body["Reason"].as_str().unwrap();
        assert!(reason.starts_with(&refusal), "{reason}");
        assert!(!reason.contains("does not exist"), "refused before the SQL was read: {reason}");
        if i == 1 {
            assert!(reason.contains(&writer), "names the cluster's endpoints: {reason}");
        }
    }
    // Under the owner's default list, Username + PasswordParameter may not name 127.0.0.1 either.
    let h = harness_with(&[DEFAULT_ENDPOINTS]).await;
    let props = merge(
        base_props(listener.port),
        json!({"Username": MARIADB_USER, "PasswordParameter": format!("/app/{tag}/never-read"),
               "SqlParameter": format!("/app/{tag}/never-read.sql")}),
    );
    let (_, body) = h.request("a3", h.event("a3", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.starts_with("Endpoint 127.0.0.1 is refused: "), "{reason}");
    assert!(reason.contains("SCHEMA_ALLOWED_ENDPOINTS (*.rds.amazonaws.com)"), "{reason}");
    assert_eq!(listener.accepted(), 0, "the author's listener saw a connection");
    h.assert_no_secrets(&[MARIADB_PASSWORD]).await;
}

#[tokio::test]
async fn an_rds_format_secret_supplies_the_endpoint_and_port() {
    let tag = unique("hosted");
    create_database(&tag).await;
    let sql = format!("/app/{tag}/schema.sql");
    put(&sql, "CREATE TABLE t (x int);", false).await;
    let secret = rds_format_secret(&tag, MARIADB_PASSWORD, "127.0.0.1", mariadb_port()).await;
    let props = json!({"Tls": "disabled", "Database": tag, "SecretArn": secret, "SqlParameter": sql});
    // Bound by the secret, not by the owner's list: the default one does not name 127.0.0.1.
    let h = harness_with(&[DEFAULT_ENDPOINTS]).await;
    let (_, body) = h.request("h1", h.event("h1", "Create", "Schema", props), TIMEOUT).await;
    assert_eq!(status(&body), "SUCCESS", "{body}");
    assert_eq!(tables(&tag).await, ["t"]);
    let id = body["PhysicalResourceId"].as_str().unwrap();
    assert!(id.starts_with("aurora-schema:secret-"), "{id}");
    let log = h.process.output();
    assert!(log.contains(&format!("127.0.0.1:{}", mariadb_port())), "logs the bound endpoint: {log}");
    assert!(log.contains("the secret's host and port"), "and what bound it: {log}");
}

#[tokio::test]
async fn plaintext_and_sources_outside_the_owners_rules_are_refused_naming_the_setting() {
    let tag = unique("rules");
    let listener = Listener::start().await;
    let password = password_parameter(&tag).await;
    let sql = format!("/app/{tag}/schema.sql");
    put(&sql, "SELECT 1;", false).await;
    let props = merge(
        base_props(listener.port),
        json!({"Username": MARIADB_USER, "PasswordParameter": password, "SqlParameter": sql}),
    );

    let h = harness_with(&[("SCHEMA_ALLOW_PLAINTEXT", "false")]).await;
    let (_, body) = h.request("r1", h.event("r1", "Create", "Schema", props.clone()), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.starts_with("Tls disabled is refused: "), "{reason}");
    assert!(reason.contains("SCHEMA_ALLOW_PLAINTEXT=true"), "{reason}");

    let h = harness().await;
    let outside = merge(props.clone(), json!({"SqlParameter": format!("/team-b/{tag}/schema.sql")}));
    let (_, body) = h.request("r2", h.event("r2", "Create", "Schema", outside), TIMEOUT).await;
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("SqlParameter /team-b/{tag}/schema.sql is refused: ")), "{reason}");
    assert!(reason.contains("SchemaParameterPrefix (env SCHEMA_PARAMETER_PREFIX)"), "{reason}");

    let other = format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:team-b/{tag}-AbCdEf");
    let foreign = merge(base_props(listener.port), json!({"SecretArn": other, "SqlParameter": sql}));
    let (_, body) = h.request("r3", h.event("r3", "Create", "Schema", foreign), TIMEOUT).await;
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("SecretArn {other} is refused: ")), "{reason}");
    assert!(reason.contains("SchemaSecretNamePattern (env SCHEMA_SECRET_NAME_PATTERN)"), "{reason}");

    // A password too short to mask is refused, never used (and never shown).
    let short = rds_format_secret(&tag, "pw1", "127.0.0.1", listener.port).await;
    let weak = merge(base_props(listener.port), json!({"SecretArn": short, "SqlParameter": sql}));
    let (_, body) = h.request("r4", h.event("r4", "Create", "Schema", weak), TIMEOUT).await;
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("the password in SecretArn {short} is refused: it is 3 characters")),
        "{reason}"
    );
    assert_eq!(listener.accepted(), 0, "no refused request connected");
}

/// An existing stack updated after the upgrade, with the properties it always had: bound by its secret
/// it keeps working; bound by nothing, it fails naming the setting its owner adds.
#[tokio::test]
async fn an_existing_stacks_update_keeps_working_or_names_what_to_add() {
    let tag = unique("upgrade");
    create_database(&tag).await;
    let path = format!("/app/{tag}/schema");
    put(&format!("{path}/0001-a"), "CREATE TABLE a (x int);", false).await;
    let old_style = merge(
        base_props(mariadb_port()),
        json!({"Database": tag, "Username": MARIADB_USER, "PasswordParameter": password_parameter(&tag).await,
               "SqlParameterPath": path}),
    );
    let local = harness().await;
    let (_, created) = local.request("u1", local.event("u1", "Create", "Schema", old_style.clone()), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");

    put(&format!("{path}/0002-b"), "CREATE TABLE b (y int);", false).await;
    let owner = harness_with(&[DEFAULT_ENDPOINTS]).await;
    let mut update = owner.event("u2", "Update", "Schema", old_style.clone());
    update["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    update["OldResourceProperties"] = old_style.clone();
    let (_, body) = owner.request("u2", update, TIMEOUT).await;
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.starts_with("Endpoint 127.0.0.1 is refused: "), "{reason}");
    assert!(reason.contains("add it to the template parameter SchemaAllowedEndpoints"), "{reason}");
    assert_eq!(tables(&tag).await, ["a"], "nothing applied");

    // The same stack with its credentials in an RDS-format secret for that host and port: the old
    // Endpoint and Port properties agree with it, and the update goes through under the defaults.
    let secret = rds_format_secret(&tag, MARIADB_PASSWORD, "127.0.0.1", mariadb_port()).await;
    let mut props = old_style.clone();
    let o = props.as_object_mut().unwrap();
    o.remove("Username");
    o.remove("PasswordParameter");
    o.insert("SecretArn".into(), json!(secret));
    let mut update = owner.event("u3", "Update", "Schema", props);
    update["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    update["OldResourceProperties"] = old_style;
    let (_, body) = owner.request("u3", update, TIMEOUT).await;
    assert_eq!(status(&body), "SUCCESS", "{body}");
    assert_eq!(body["Data"]["AppliedMigrations"], "0002-b");
    assert_eq!(body["PhysicalResourceId"], created["PhysicalResourceId"], "the same resource");
    assert_eq!(tables(&tag).await, ["a", "b"]);
}
