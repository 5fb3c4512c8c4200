//! The planning, preparation and SQL-text rules, without a database.

use super::history::Applied;
use super::plan::numbered_higher;
use super::*;
use crate::source::Migration;

fn migration(id: &str, sql: &str) -> Migration {
    Migration { id: id.into(), parameter: format!("/app/schema/{id}"), sql: sql.into() }
}

fn applied(id: &str, p: &Prepared) -> Applied {
    Applied {
        migration: id.into(),
        checksum: p.checksum.clone(),
        status: "applied".into(),
        statements_applied: p.statements.len(),
        prefix: p.prefixes[p.statements.len()].clone(),
        finished: "2026-11-22T03:00:00Z".into(),
        in_flight: None,
    }
}

const SCOPE: (&str, &str) = ("app", "/app/schema");

#[test]
fn applied_migrations_are_skipped_and_new_ones_start_at_the_top() {
    let prepared = prepare(vec![migration("0001", "CREATE TABLE a (x int);"), migration("0002", "SELECT 1;")]).unwrap();
    let history = [applied("0001", &prepared[0])];
    assert_eq!(plan(&prepared, &history, SCOPE).unwrap(), vec![None, Some(0)]);
}

#[test]
fn a_changed_applied_migration_stops_everything_and_says_what_to_do() {
    let old = prepare(vec![migration("0001", "CREATE TABLE a (x int);")]).unwrap();
    let new = prepare(vec![migration("0001", "CREATE TABLE a (x bigint);"), migration("0002", "SELECT 1;")]).unwrap();
    let err = plan(&new, &[applied("0001", &old[0])], SCOPE).unwrap_err().to_string();
    assert!(err.contains("migration 0001 (parameter /app/schema/0001) was applied on 2026-11-22T03:00:00Z"), "{err}");
    assert!(err.contains("new migration"), "{err}");
    assert!(err.ends_with("Nothing was applied"), "{err}");
}

#[test]
fn a_failed_migration_resumes_after_its_unchanged_prefix() {
    let p = prepare(vec![migration("0001", "CREATE TABLE a (x int); CREATE TABLE b (oops); CREATE TABLE c (z int);")])
        .unwrap();
    let failed = Applied {
        migration: "0001".into(),
        checksum: "whatever".into(),
        status: "failed".into(),
        statements_applied: 1,
        prefix: p[0].prefixes[1].clone(),
        finished: String::new(),
        in_flight: None,
    };
    let fixed =
        prepare(vec![migration("0001", "CREATE TABLE a (x int); CREATE TABLE b (y int); CREATE TABLE c (z int);")])
            .unwrap();
    assert_eq!(plan(&fixed, std::slice::from_ref(&failed), SCOPE).unwrap(), vec![Some(1)]);
    let rewritten = prepare(vec![migration("0001", "CREATE TABLE a2 (x int); CREATE TABLE b (y int);")]).unwrap();
    let err = plan(&rewritten, &[failed], SCOPE).unwrap_err().to_string();
    assert!(err.contains("cannot resume"), "{err}");
}

#[test]
fn a_statement_left_in_flight_stops_the_run_with_how_to_confirm_it() {
    let p = prepare(vec![migration("0001", "CREATE TABLE a (x int);\nALTER TABLE a ADD y int;\nSELECT 1;")]).unwrap();
    let running = Applied {
        migration: "0001".into(),
        checksum: p[0].checksum.clone(),
        status: "running".into(),
        statements_applied: 1,
        prefix: p[0].prefixes[1].clone(),
        finished: "2026-11-22T03:00:00Z".into(),
        in_flight: Some(InFlight {
            statement: 2,
            checksum: Some(p[0].prefixes[2].clone()),
            connection: Some(42),
            since: "2026-11-22T03:00:01Z".into(),
        }),
    };
    let err = plan(&p, std::slice::from_ref(&running), ("app", "/app/schema")).unwrap_err();
    assert!(matches!(&err, SchemaError::Interrupted(i) if i.number == 2), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "migration 0001 was interrupted at statement 2 of 3 (line 2: ALTER TABLE a ADD y int): an earlier \
             run started it on connection 42 at 2026-11-22T03:00:01Z and stopped answering."
        ),
        "{text}"
    );
    assert!(text.contains("connection 42 is gone"), "{text}");
    let key = "WHERE target_database = 'app' AND source = '/app/schema' AND migration = '0001'";
    assert!(
        text.contains(&format!(
            "If it took effect: UPDATE stackhand.schema_history SET statements_applied = in_flight_statement, \
             applied_prefix_checksum = in_flight_checksum, in_flight_statement = NULL {key}; the next run continues"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("If it did not: UPDATE stackhand.schema_history SET in_flight_statement = NULL {key}")),
        "{text}"
    );
    assert!(text.len() < 1500, "fits a Reason: {}", text.len());
    // Once answered (the in-flight mark cleared), the run resumes from what the history says.
    let answered = Applied { in_flight: None, ..running };
    assert_eq!(plan(&p, &[answered], SCOPE).unwrap(), vec![Some(1)]);
}

#[test]
fn a_new_migration_that_sorts_before_an_applied_one_is_refused() {
    let p = prepare(vec![migration("1-a", "SELECT 1;"), migration("10-c", "SELECT 3;"), migration("2-b", "SELECT 2;")])
        .unwrap();
    let history = [applied("1-a", &p[0]), applied("2-b", &p[2])];
    let err = plan(&p, &history, SCOPE).unwrap_err();
    assert!(matches!(err, SchemaError::OutOfOrder(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "migration 10-c (parameter /app/schema/10-c) is new, but its name sorts before 2-b, which an earlier \
             run already applied on 2026-11-22T03:00:00Z."
        ),
        "{text}"
    );
    assert!(text.contains("rename the parameters under SqlParameterPath"), "{text}");
    assert!(text.contains("zero-padded"), "{text}");
    assert!(text.ends_with("Nothing was applied"), "{text}");
    // Zero-padded names sort as they are numbered: nothing to refuse.
    let p = prepare(vec![
        migration("0001-a", "SELECT 1;"),
        migration("0002-b", "SELECT 2;"),
        migration("0010-c", "SELECT 3;"),
    ])
    .unwrap();
    let history = [applied("0001-a", &p[0]), applied("0002-b", &p[1])];
    assert_eq!(plan(&p, &history, SCOPE).unwrap(), vec![None, None, Some(0)]);
}

#[test]
fn new_numbered_migrations_whose_names_sort_against_their_numbers_are_refused() {
    let p = prepare(vec![migration("1-a", "SELECT 1;"), migration("10-c", "SELECT 3;"), migration("2-b", "SELECT 2;")])
        .unwrap();
    let text = plan(&p, &[], SCOPE).unwrap_err().to_string();
    assert!(
        text.starts_with("migrations 10-c and 2-b are new, and 10-c would run first although its number is higher"),
        "{text}"
    );
    assert!(!numbered_higher("2024-01-01-x", "20240102-y") && !numbered_higher("0002-a", "10-b"));
    assert!(numbered_higher("10-a", "9-b") && !numbered_higher("init", "2-b"));
    // Names without numbers, or numbered in order, are left alone.
    let p = prepare(vec![migration("a-init", "SELECT 1;"), migration("b-next", "SELECT 2;")]).unwrap();
    assert_eq!(plan(&p, &[], SCOPE).unwrap(), vec![Some(0), Some(0)]);
}

#[test]
fn splitting_errors_name_the_migration() {
    let err = prepare(vec![migration("0007-x", "SELECT 'unclosed;")]).err().unwrap().to_string();
    assert_eq!(err, "migration 0007-x: line 1: a quoted string opened here is never closed; nothing was applied");
}

#[test]
fn literals_never_reach_a_reason() {
    assert_eq!(excerpt("CREATE USER app IDENTIFIED BY 's3cret;''x\\'y'"), "CREATE USER app IDENTIFIED BY '…'");
    assert_eq!(excerpt("INSERT INTO `t;x` VALUES (\"a\", 'b')"), "INSERT INTO `t;x` VALUES (\"…\", '…')");
    let server = "You have an error in your SQL syntax; check the manual near 'IDENTIFED BY 'hunter2-pw'' at line 1";
    let shown = server_message(server);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("near 'IDENTIFED BY '…'' at line 1"), "{shown}");
    assert_eq!(server_message("Table 'a' already exists"), "Table '…' already exists");
}

#[test]
fn every_quoted_span_of_a_server_message_is_masked() {
    assert_eq!(server_message("Duplicate entry 'hunter2-pw' for key 'PRIMARY'"), "Duplicate entry '…' for key '…'");
    assert_eq!(server_message("Duplicate entry 'it's-secret' for key 'k'"), "Duplicate entry '…' for key '…'");
    assert_eq!(server_message("Unknown column \"pw-value\" in `t`"), "Unknown column \"…\" in `…`");
    assert_eq!(server_message("Data too long 'unclosed secret"), "Data too long '…");
    let syntax = "You have an error in your SQL syntax near 'VALUES ('pw-1', 2) and more' at line 3 of 'x'";
    assert_eq!(
        server_message(syntax),
        "You have an error in your SQL syntax near 'VALUES ('…', 2) and more' at line 3 of '…'"
    );
}

#[test]
fn excerpts_are_one_short_line() {
    assert_eq!(excerpt("CREATE TABLE t (\n  a int\n)"), "CREATE TABLE t ( a int )");
    assert_eq!(excerpt(&"x".repeat(100)).chars().count(), 81);
    assert!(
        is_session_statement("use mydb")
            && is_session_statement("SET NAMES utf8mb4")
            && !is_session_statement("SELECT 1")
    );
}

#[test]
fn dml_and_transaction_control_are_told_apart() {
    assert!(is_dml("insert into t values (1)") && is_dml("REPLACE INTO t VALUES (1)") && is_dml("UPDATE t SET a=1"));
    assert!(!is_dml("CREATE TABLE t (a int)") && !is_dml("SELECT 1"));
    for tc in ["START TRANSACTION", "begin", "COMMIT", "rollback to s1", "SET autocommit = 0", "LOCK TABLES t WRITE"] {
        assert!(is_transaction_control(tc), "{tc}");
    }
    assert!(!is_transaction_control("CREATE PROCEDURE p() BEGIN SELECT 1; END"));
    assert!(!is_transaction_control("SET NAMES utf8mb4"));
}
