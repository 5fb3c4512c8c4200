//! The fault matrix every custom-resource function must pass, through the real Runtime API path:
//! each fault ends in exactly one response before the deadline with a readable Reason — or, when there
//! is nobody to answer, in an invocation error — and no secret in any output.

use std::time::Duration;

use serde_json::{json, Value};

use crate::local::{aws_env, hanging_endpoint, moto_url};
use crate::{status, Harness};

pub struct FaultMatrix<'a> {
    /// The function's `CARGO_BIN_EXE_…`.
    pub binary: &'a str,
    pub resource_type: &'a str,
    /// Properties that pass validation and make the function call AWS (for the hanging dependency).
    pub calls_aws: Value,
    /// Properties that pass validation but name something that does not exist (a handler error).
    pub fails: Value,
    /// Properties with one of the wrong type: the Reason must contain `wrong_type_named`.
    pub wrong_type: Value,
    pub wrong_type_named: &'a str,
}

const TIMEOUT: Duration = Duration::from_secs(20);

impl FaultMatrix<'_> {
    async fn harness(&self, endpoint: &str) -> Harness {
        Harness::start(self.binary, self.resource_type, &aws_env(endpoint)).await
    }

    /// Every scenario in turn (a tool's smoke test); the tests use [`fault_matrix!`](crate::fault_matrix),
    /// one named test per scenario.
    pub async fn run(&self) {
        self.handler_error().await;
        self.wrong_type().await;
        self.unknown_request_type().await;
        self.nobody_to_answer().await;
        self.flaky_response_endpoint().await;
        self.unreachable_response_endpoint().await;
        self.hanging_dependency().await;
    }

    /// A handler error: one FAILED, with the handler's message.
    pub async fn handler_error(&self) {
        let h = self.harness(&moto_url()).await;
        let (_, body) = h.request("f-error", h.event("f-error", "Create", "Fault", self.fails.clone()), TIMEOUT).await;
        assert_eq!(status(&body), "FAILED", "handler error: {body}");
        assert!(body["Reason"].as_str().is_some_and(|r| r.len() > 10), "a readable Reason: {body}");
    }

    /// Properties of the wrong type: one FAILED naming the property.
    pub async fn wrong_type(&self) {
        let h = self.harness(&moto_url()).await;
        let (_, body) =
            h.request("f-type", h.event("f-type", "Create", "Fault", self.wrong_type.clone()), TIMEOUT).await;
        assert_eq!(status(&body), "FAILED");
        let reason = body["Reason"].as_str().unwrap_or_default();
        assert!(reason.contains(self.wrong_type_named), "the Reason names {}: {reason}", self.wrong_type_named);
    }

    /// An unknown RequestType: one FAILED.
    pub async fn unknown_request_type(&self) {
        let h = self.harness(&moto_url()).await;
        let (_, body) = h.request("f-kind", h.event("f-kind", "Upsert", "Fault", self.fails.clone()), TIMEOUT).await;
        assert_eq!(status(&body), "FAILED");
    }

    /// Malformed event JSON, and an event without a ResponseURL: nobody to answer, an invocation error.
    pub async fn nobody_to_answer(&self) {
        let h = self.harness(&moto_url()).await;
        let inv = h.api.invoke(&b"{\"RequestType\": \"Create\", "[..], TIMEOUT).await;
        assert!(inv.answer.is_error(), "malformed JSON: {:?}", inv.answer);
        let mut no_url = h.event("f-nourl", "Create", "Fault", self.fails.clone());
        no_url.as_object_mut().unwrap().remove("ResponseURL");
        let inv = h.api.invoke_json(&no_url, TIMEOUT).await;
        assert!(inv.answer.is_error(), "no ResponseURL: {:?}", inv.answer);
        assert!(h.recorder.puts_for("f-nourl").is_empty());
    }

    /// The response endpoint failing twice, then succeeding: delivered once, on the third PUT.
    pub async fn flaky_response_endpoint(&self) {
        let h = self.harness(&moto_url()).await;
        h.recorder.fail_next(2);
        let (answer, _) = h.request("f-flaky", h.event("f-flaky", "Upsert", "Fault", json!({})), TIMEOUT).await;
        assert_eq!(h.recorder.puts_for("f-flaky").iter().map(|p| p.answered).collect::<Vec<_>>(), [500, 500, 200]);
        assert!(!answer.is_error());
    }

    /// The response endpoint unreachable: an invocation error, before the deadline.
    pub async fn unreachable_response_endpoint(&self) {
        let h = self.harness(&moto_url()).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut unreachable = h.event("f-gone", "Upsert", "Fault", json!({}));
        unreachable["ResponseURL"] = json!(format!("http://{closed}/gone?X-Amz-Signature={}", crate::SIGNATURE));
        let inv = h.api.invoke_json(&unreachable, Duration::from_secs(3)).await;
        assert!(inv.answer.is_error(), "unreachable response endpoint: {:?}", inv.answer);
        assert!(inv.answered_at < inv.deadline);
        h.assert_no_secrets(&[]).await;
    }

    /// A hanging dependency and a 3-second deadline: one FAILED "timed out" before the deadline.
    pub async fn hanging_dependency(&self) {
        let hang = self.harness(&hanging_endpoint().await).await;
        let event = hang.event("f-hang", "Create", "Fault", self.calls_aws.clone());
        let (answer, body) = hang.request("f-hang", event, Duration::from_secs(3)).await;
        assert!(!answer.is_error());
        assert_eq!(status(&body), "FAILED");
        assert!(body["Reason"].as_str().unwrap_or_default().starts_with("timed out"), "{body}");
        hang.assert_no_secrets(&[]).await;
    }
}

/// One named test per scenario of the fault matrix every custom-resource function must pass, in a
/// module `fault_matrix`: `testkit::fault_matrix!(matrix);` with `fn matrix() -> FaultMatrix<'static>`.
#[macro_export]
macro_rules! fault_matrix {
    ($matrix:ident) => {
        mod fault_matrix {
            #[tokio::test]
            async fn a_handler_error_is_one_failed_with_its_message() {
                super::$matrix().handler_error().await
            }
            #[tokio::test]
            async fn a_property_of_the_wrong_type_is_named() {
                super::$matrix().wrong_type().await
            }
            #[tokio::test]
            async fn an_unknown_request_type_is_one_failed() {
                super::$matrix().unknown_request_type().await
            }
            #[tokio::test]
            async fn malformed_json_or_no_response_url_is_an_invocation_error() {
                super::$matrix().nobody_to_answer().await
            }
            #[tokio::test]
            async fn a_flaky_response_endpoint_gets_one_delivery() {
                super::$matrix().flaky_response_endpoint().await
            }
            #[tokio::test]
            async fn an_unreachable_response_endpoint_is_an_invocation_error_before_the_deadline() {
                super::$matrix().unreachable_response_endpoint().await
            }
            #[tokio::test]
            async fn a_hanging_dependency_is_one_failed_timed_out_before_the_deadline() {
                super::$matrix().hanging_dependency().await
            }
        }
    };
}
