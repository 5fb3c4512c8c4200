//! What must hold for any input, checked by the cargo-fuzz target `fuzz/fuzz_targets/envelope.rs` and,
//! for every input the fuzzer ever found failing, by `shared/tests/fuzz_regressions.rs`. Not part of the
//! API the functions use: compiled only with the `fuzzing` feature.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::cfn::{is_custom_resource_request, Envelope, Response, Status, MAX_BODY_BYTES, MAX_PHYSICAL_ID_BYTES};
use crate::props;

/// Properties in every shape the shared deserializers take.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[allow(dead_code)] // read only by Debug: parsing is what is checked
struct Properties {
    #[serde(default, deserialize_with = "props::optional_number")]
    port: Option<u16>,
    #[serde(default, deserialize_with = "props::flag")]
    enabled: bool,
    #[serde(default, deserialize_with = "props::list")]
    names: Vec<String>,
    #[serde(default, deserialize_with = "props::list")]
    ports: Vec<u32>,
}

/// CloudFormation's own identifiers are far below these; a body can only be kept within
/// [`MAX_BODY_BYTES`] when they are.
const MAX_STACK_ID: usize = 1024;
const MAX_REQUEST_ID: usize = 256;
const MAX_LOGICAL_ID: usize = 255;

/// Any bytes as a custom-resource event: the envelope is read or refused with a reason, the properties
/// parse or name what is wrong, and the response for that outcome is valid JSON within CloudFormation's
/// 4096 bytes whenever the event's identifiers are of CloudFormation's sizes — never a panic.
pub fn envelope(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Value>(data) else { return };
    let _ = is_custom_resource_request(&event);
    let envelope = match Envelope::from_value(&event) {
        Ok(envelope) => envelope,
        Err(why) => {
            assert!(!why.to_string().is_empty());
            return;
        }
    };
    let (status, reason) = match props::parse::<Properties>(&envelope.properties) {
        Ok(_) => (Status::Success, String::new()),
        Err(e) => {
            let reason = e.to_string();
            assert!(reason.starts_with("invalid propert"), "{reason}");
            (Status::Failed, reason)
        }
    };
    let physical = envelope.physical_resource_id.clone().unwrap_or_else(|| envelope.logical_resource_id.clone());
    let mut extra = BTreeMap::new();
    if let Some(Value::Object(values)) = event.get("Data") {
        for (k, v) in values {
            extra.insert(k.clone(), v.to_string());
        }
    }
    let response = Response {
        status,
        reason: format!("{reason} {}", String::from_utf8_lossy(data)),
        physical_resource_id: physical.clone(),
        stack_id: envelope.stack_id.clone(),
        request_id: envelope.request_id.clone(),
        logical_resource_id: envelope.logical_resource_id.clone(),
        no_echo: event.get("NoEcho") == Some(&Value::Bool(true)),
        data: extra,
    };
    let (body, sent) = response.into_body();
    let parsed: Value = serde_json::from_str(&body).expect("the body is JSON");
    assert_eq!(parsed["Status"], if sent.status == Status::Success { "SUCCESS" } else { "FAILED" });
    let sized = physical.len() <= MAX_PHYSICAL_ID_BYTES
        && envelope.stack_id.len() <= MAX_STACK_ID
        && envelope.request_id.len() <= MAX_REQUEST_ID
        && envelope.logical_resource_id.len() <= MAX_LOGICAL_ID;
    if sized {
        assert!(body.len() <= MAX_BODY_BYTES, "{} bytes", body.len());
    }
}
