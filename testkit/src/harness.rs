//! One function under test: its process, its Runtime API and its response endpoint, with the checks
//! every custom-resource request must pass.

use std::time::Duration;

use serde_json::Value;

use crate::local::TEST_SECRET_KEY;
use crate::{cfn_event, Answer, FunctionProcess, ResponseRecorder, RuntimeApi, SIGNATURE};

pub struct Harness {
    pub api: RuntimeApi,
    pub recorder: ResponseRecorder,
    pub process: FunctionProcess,
    resource_type: String,
}

impl Harness {
    /// Starts `binary` (a function's `CARGO_BIN_EXE_…`) with `env`, answering as `resource_type`.
    pub async fn start(binary: &str, resource_type: &str, env: &[(String, String)]) -> Self {
        Self::start_command(std::process::Command::new(binary), resource_type, env).await
    }

    /// Like [`Harness::start`], for any command.
    pub async fn start_command(command: std::process::Command, resource_type: &str, env: &[(String, String)]) -> Self {
        let api = RuntimeApi::start().await;
        let recorder = ResponseRecorder::start().await;
        let process = FunctionProcess::spawn_command(command, &api.address(), env);
        Self { api, recorder, process, resource_type: resource_type.to_owned() }
    }

    /// A CloudFormation request whose ResponseURL is this harness's recorder under `name`.
    pub fn event(&self, name: &str, request_type: &str, logical_id: &str, props: Value) -> Value {
        cfn_event(request_type, &self.recorder.url(name), logical_id, &self.resource_type, props)
    }

    /// Sends one request and returns the invocation's answer and the one response delivered for it,
    /// checking what every response must be: a single PUT, before the deadline, with an empty
    /// Content-Type and a body within 4096 bytes.
    pub async fn request(&self, name: &str, event: Value, timeout: Duration) -> (Answer, Value) {
        let inv = self.api.invoke_json(&event, timeout).await;
        let delivered = self.recorder.delivered_for(name);
        assert_eq!(delivered.len(), 1, "exactly one response for {name}: {delivered:?}\n{}", self.process.output());
        let put = &delivered[0];
        assert!(put.at <= inv.deadline, "the response for {name} arrived after the deadline");
        assert_eq!(put.method, "PUT");
        assert_eq!(put.content_type.as_deref(), Some(""), "the PUT carries an empty Content-Type");
        assert!(put.raw_len <= 4096);
        (inv.answer, put.body.clone())
    }

    /// No secret in anything the function printed or answered: the ResponseURL signature, the AWS
    /// secret key, and each of `more`.
    pub async fn assert_no_secrets(&self, more: &[&str]) {
        let out = self.process.settled_output().await;
        let answers: Vec<String> = self.recorder.all().iter().map(|p| p.body.to_string()).collect();
        for text in std::iter::once(&out).chain(answers.iter()) {
            assert!(!text.contains(SIGNATURE), "the ResponseURL signature leaked:\n{text}");
            assert!(!text.contains("X-Amz-Signature"), "the ResponseURL leaked:\n{text}");
            assert!(!text.contains(TEST_SECRET_KEY), "the AWS secret key leaked");
            for secret in more {
                assert!(!text.contains(secret), "a secret leaked:\n{text}");
            }
        }
    }
}

/// `Status` of a response body.
pub fn status(body: &Value) -> &str {
    body["Status"].as_str().unwrap_or_default()
}
