//! The shared custom-resource runtime's guarantees, through the real Runtime API path, with the
//! fault-injecting `cr-fixture` binary: exactly one response per request, before the deadline, with a
//! readable Reason and no secret in any output. No AWS involved.

use std::time::Duration;

use serde_json::{json, Value};
use testkit::{cfn_event, FunctionProcess, ResponseRecorder, RuntimeApi, SIGNATURE};

const BIN: &str = env!("CARGO_BIN_EXE_cr-fixture");

async fn start() -> (RuntimeApi, ResponseRecorder, FunctionProcess) {
    let api = RuntimeApi::start().await;
    let recorder = ResponseRecorder::start().await;
    let process = FunctionProcess::spawn(BIN, &api.address(), &[]);
    (api, recorder, process)
}

fn event(recorder: &ResponseRecorder, name: &str, request_type: &str, props: Value) -> Value {
    cfn_event(request_type, &recorder.url(name), "Fixture", "Custom::Fixture", props)
}

/// Invokes and returns the single delivered response body, checking it came before the deadline.
async fn one_response(
    api: &RuntimeApi,
    recorder: &ResponseRecorder,
    name: &str,
    ev: Value,
    timeout: Duration,
) -> Value {
    let inv = api.invoke_json(&ev, timeout).await;
    assert!(!inv.answer.is_error(), "{name}: {:?}", inv.answer);
    let puts = recorder.delivered_for(name);
    assert_eq!(puts.len(), 1, "{name}: exactly one response");
    assert!(puts[0].at < inv.deadline, "{name}: the response came before the deadline");
    puts[0].body.clone()
}

#[tokio::test]
async fn a_panic_is_answered_failed_and_the_process_goes_on() {
    let (api, rec, process) = start().await;
    let body =
        one_response(&api, &rec, "p1", event(&rec, "p1", "Create", json!({"Mode": "panic"})), Duration::from_secs(10))
            .await;
    assert_eq!(body["Status"], "FAILED");
    assert!(body["Reason"].as_str().unwrap().contains("panicked on purpose"), "{body}");
    let body =
        one_response(&api, &rec, "p2", event(&rec, "p2", "Create", json!({"Mode": "ok"})), Duration::from_secs(10))
            .await;
    assert_eq!(body["Status"], "SUCCESS", "the process survived the panic");
    let logged = !process.wait_for_log("panic", 1).await.is_empty();
    assert!(logged, "the panic is logged as one structured line:\n{}", process.output());
}

#[tokio::test]
async fn a_hang_is_answered_failed_before_a_3_second_deadline() {
    let (api, rec, _process) = start().await;
    let mut ev = event(&rec, "h1", "Update", json!({"Mode": "hang"}));
    ev["PhysicalResourceId"] = json!("fixture-Fixture");
    let body = one_response(&api, &rec, "h1", ev, Duration::from_secs(3)).await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().starts_with("timed out: the Update did not finish within 2.2 s"),
        "{body}"
    );
}

#[tokio::test]
async fn an_error_reason_is_one_clean_line() {
    let (api, rec, _process) = start().await;
    let body =
        one_response(&api, &rec, "e1", event(&rec, "e1", "Create", json!({"Mode": "fail"})), Duration::from_secs(10))
            .await;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["Reason"], "the fixture failed on purpose second line (nothing of it was left in place)");
}

#[tokio::test]
async fn data_too_large_for_the_response_is_a_clear_failure() {
    let (api, rec, _process) = start().await;
    let body = one_response(
        &api,
        &rec,
        "o1",
        event(&rec, "o1", "Create", json!({"Mode": "oversize"})),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(body["Status"], "FAILED");
    assert!(body["Reason"].as_str().unwrap().contains("4096-byte"), "{body}");
    assert!(body.get("Data").is_none());
}

#[tokio::test]
async fn no_echo_data_goes_to_cloudformation_but_not_into_the_invocation_result() {
    let (api, rec, process) = start().await;
    let ev = event(&rec, "n1", "Create", json!({"Mode": "noecho"}));
    let inv = api.invoke_json(&ev, Duration::from_secs(10)).await;
    let body = &rec.delivered_for("n1")[0].body;
    assert_eq!(body["NoEcho"], true);
    assert_eq!(body["Data"]["Password"], "generated-but-hidden");
    assert_eq!(inv.answer.value()["Data"], "(hidden: NoEcho)");
    assert!(!process.settled_output().await.contains("generated-but-hidden"));
}

#[tokio::test]
async fn secrets_never_reach_a_log_line_or_a_reason() {
    let (api, rec, process) = start().await;
    let secret = "db-password-that-must-not-leak";
    let body = one_response(
        &api,
        &rec,
        "s1",
        event(&rec, "s1", "Create", json!({"Mode": "leak", "Secret": secret})),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["Reason"], "login failed with password *** (nothing of it was left in place)");
    let out = process.settled_output().await;
    assert!(out.contains("about to fail with a secret"), "the line was logged:\n{out}");
    assert!(!out.contains(secret), "the secret reached the log:\n{out}");
    assert!(!out.contains(SIGNATURE), "the ResponseURL signature reached the log:\n{out}");
}

/// Redaction happens field by field before the JSON line is formatted: JSON's escaping of `"` and `\\`
/// cannot carry a secret past it.
#[tokio::test]
async fn a_secret_with_quotes_or_backslashes_is_masked_in_a_log_field() {
    let (api, rec, process) = start().await;
    let secret = r#"pa"ss\word-with\"quotes"#;
    let body = one_response(
        &api,
        &rec,
        "q1",
        event(&rec, "q1", "Create", json!({"Mode": "leak", "Secret": secret})),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(body["Reason"], "login failed with password *** (nothing of it was left in place)");
    let lines = process.wait_for_log("about to fail with a secret", 1).await;
    assert_eq!(lines.len(), 1, "the line was logged:\n{}", process.output());
    assert_eq!(lines[0]["secret"], "***", "{}", lines[0]);
    let out = process.settled_output().await;
    let escaped = serde_json::to_string(secret).unwrap();
    for form in [secret, escaped.trim_matches('"'), "ss\\\\word"] {
        assert!(!out.contains(form), "{form} reached the log:\n{out}");
    }
}

/// A secret too short to mask safely is refused, not logged bare.
#[tokio::test]
async fn a_secret_too_short_to_mask_is_refused_with_a_named_failure() {
    let (api, rec, process) = start().await;
    let ev = event(&rec, "t1", "Create", json!({"Mode": "leak", "Secret": "pw1"}));
    let body = one_response(&api, &rec, "t1", ev, Duration::from_secs(10)).await;
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.starts_with("the Secret property: it is 3 characters long"), "{reason}");
    assert!(!reason.contains("pw1"), "{reason}");
    let out = process.settled_output().await;
    assert!(!out.contains("about to fail with a secret"), "nothing was logged with it:\n{out}");
}

/// A direct invoker cannot make the function send requests where it likes: a ResponseURL that is not
/// CloudFormation's (nor listed in STACKHAND_RESPONSE_URL_HOSTS) gets no request at all, and the log
/// names its host only.
#[tokio::test]
async fn a_response_url_on_a_host_not_allowed_gets_no_request() {
    let api = RuntimeApi::start().await;
    let elsewhere = ResponseRecorder::start_on("127.0.0.2").await;
    let process = FunctionProcess::spawn(BIN, &api.address(), &[]);
    let ev = event(&elsewhere, "r1", "Create", json!({"Mode": "ok"}));
    let inv = api.invoke_json(&ev, Duration::from_secs(5)).await;
    assert!(inv.answer.is_error(), "{:?}", inv.answer);
    let message = inv.answer.value()["errorMessage"].as_str().unwrap().to_owned();
    assert!(message.contains("ResponseURL http://127.0.0.2 is not CloudFormation's"), "{message}");
    assert!(message.contains("STACKHAND_RESPONSE_URL_HOSTS"), "{message}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(elsewhere.all().is_empty(), "a request reached the host: {:?}", elsewhere.all());
    let out = process.settled_output().await;
    assert!(out.contains("not CloudFormation's"), "the refusal is logged:\n{out}");
    assert!(!out.contains("X-Amz-Signature") && !out.contains(SIGNATURE), "host only:\n{out}");

    drop(process);

    // The owner lists the host: the same request is answered there.
    let api = RuntimeApi::start().await;
    let hosts = [("STACKHAND_RESPONSE_URL_HOSTS".to_owned(), "127.0.0.1, 127.0.0.2".to_owned())];
    let _process = FunctionProcess::spawn(BIN, &api.address(), &hosts);
    let ev = event(&elsewhere, "r2", "Create", json!({"Mode": "ok"}));
    let body = one_response(&api, &elsewhere, "r2", ev, Duration::from_secs(10)).await;
    assert_eq!(body["Status"], "SUCCESS");
}

#[tokio::test]
async fn an_unreachable_response_endpoint_ends_in_an_invocation_error_before_the_deadline() {
    let (api, rec, process) = start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = rec.url("u1").replace(&rec.url("u1").split('/').nth(2).unwrap().to_owned(), &closed.to_string());
    let ev = cfn_event("Create", &url, "Fixture", "Custom::Fixture", json!({"Mode": "ok"}));
    let inv = api.invoke_json(&ev, Duration::from_secs(4)).await;
    assert!(inv.answer.is_error(), "{:?}", inv.answer);
    assert!(inv.answered_at < inv.deadline, "gave up before the deadline");
    let message = inv.answer.value()["errorMessage"].as_str().unwrap().to_owned();
    assert!(message.contains("not delivered"), "{message}");
    assert!(!message.contains(SIGNATURE) && !process.settled_output().await.contains(SIGNATURE));
}

#[tokio::test]
async fn a_response_endpoint_that_hangs_is_abandoned_before_the_deadline() {
    let (api, rec, _process) = start().await;
    rec.hang();
    let ev = event(&rec, "g1", "Create", json!({"Mode": "ok"}));
    let inv = api.invoke_json(&ev, Duration::from_secs(3)).await;
    assert!(inv.answer.is_error(), "{:?}", inv.answer);
    assert!(inv.answered_at < inv.deadline);
}

#[tokio::test]
async fn the_text_log_format_is_used_unless_json_is_asked_for() {
    let api = RuntimeApi::start().await;
    let rec = ResponseRecorder::start().await;
    let process = FunctionProcess::spawn(BIN, &api.address(), &[("AWS_LAMBDA_LOG_FORMAT".into(), "Text".into())]);
    one_response(&api, &rec, "t1", event(&rec, "t1", "Create", json!({"Mode": "ok"})), Duration::from_secs(10)).await;
    let out = process.settled_output().await;
    let line = out.lines().find(|l| l.contains("custom resource request answered")).expect(&out);
    assert!(!line.starts_with('{'), "{line}");
    assert!(line.contains("request_type=Create"), "{line}");
}
