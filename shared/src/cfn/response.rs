//! The response body: at most 4096 bytes, Reason redacted and free of control characters, Data never
//! silently dropped.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::redact;

/// CloudFormation's limit for the whole response body.
pub const MAX_BODY_BYTES: usize = 4096;
/// CloudFormation's limit for a PhysicalResourceId.
pub const MAX_PHYSICAL_ID_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: Status,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_echo: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

impl Response {
    /// The body to send, and the response it encodes (which differs from `self` when Reason had to be
    /// cleaned or shortened, or Data could not fit and the answer became FAILED).
    pub fn into_body(mut self) -> (String, Response) {
        self.reason = clean_reason(&self.reason);
        for value in self.data.values_mut() {
            if let std::borrow::Cow::Owned(clean) = redact::redact(value) {
                *value = clean;
            }
        }
        if self.status == Status::Failed && self.reason.is_empty() {
            self.reason = "failed (no reason given)".into();
        }
        let without_reason = body_len(&Response { reason: String::new(), ..self.clone() });
        if without_reason > MAX_BODY_BYTES {
            let data_len = serde_json::to_string(&self.data).map(|s| s.len()).unwrap_or(0);
            self.status = Status::Failed;
            self.reason = format!(
                "the response Data is {data_len} bytes, too large for CloudFormation's {MAX_BODY_BYTES}-byte \
                 response limit; return fewer or shorter Data values"
            );
            self.data.clear();
        }
        // Only identifiers far longer than CloudFormation's own leave no room at all (an event that did not
        // come from CloudFormation); the answer then goes out with an empty Reason rather than not at all.
        let budget = MAX_BODY_BYTES.saturating_sub(body_len(&Response { reason: String::new(), ..self.clone() }));
        if json_len(&self.reason) > budget {
            self.reason = truncate_json(&self.reason, budget);
        }
        let body = serde_json::to_string(&self).expect("a response always serializes");
        (body, self)
    }
}

fn body_len(r: &Response) -> usize {
    serde_json::to_string(r).map(|s| s.len()).unwrap_or(usize::MAX)
}

/// Bytes a string takes inside JSON quotes, escapes included.
fn json_len(s: &str) -> usize {
    serde_json::to_string(s).map(|j| j.len() - 2).unwrap_or(usize::MAX)
}

/// Redacts secrets, turns line breaks and tabs into spaces, drops other control characters
/// (they break the stack-events API), and trims.
pub fn clean_reason(reason: &str) -> String {
    let redacted = redact::redact(reason);
    let mut out = String::with_capacity(redacted.len());
    for c in redacted.chars() {
        match c {
            '\n' | '\r' | '\t' => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.trim().to_owned()
}

/// Shortens `s` so that its JSON form takes at most `budget` bytes, marking the cut.
fn truncate_json(s: &str, budget: usize) -> String {
    const MARK: &str = " …(truncated)";
    let room = budget.saturating_sub(json_len(MARK));
    let mut used = 0;
    let mut out = String::new();
    for c in s.chars() {
        let w = json_len(c.encode_utf8(&mut [0; 4]));
        if used + w > room {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push_str(MARK);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: Status, reason: &str) -> Response {
        Response {
            status,
            reason: reason.into(),
            physical_resource_id: "id-1".into(),
            stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1".into(),
            request_id: "r-1".into(),
            logical_resource_id: "Res".into(),
            no_echo: false,
            data: BTreeMap::new(),
        }
    }

    #[test]
    fn the_body_has_the_protocol_field_names() {
        let mut r = response(Status::Success, "ok");
        r.data.insert("RuleCount".into(), "3".into());
        r.no_echo = true;
        let (body, _) = r.into_body();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Status"], "SUCCESS");
        assert_eq!(v["PhysicalResourceId"], "id-1");
        assert_eq!(v["LogicalResourceId"], "Res");
        assert_eq!(v["NoEcho"], true);
        assert_eq!(v["Data"]["RuleCount"], "3");
    }

    #[test]
    fn control_characters_leave_the_reason() {
        let (_, r) = response(Status::Failed, "line one\nline two\t\u{7}bell\u{0}").into_body();
        assert_eq!(r.reason, "line one line two bell");
    }

    #[test]
    fn a_long_reason_is_cut_to_fit_the_limit() {
        let long = "é\"".repeat(5000);
        let (body, r) = response(Status::Failed, &long).into_body();
        assert!(body.len() <= MAX_BODY_BYTES, "{}", body.len());
        assert!(body.len() > MAX_BODY_BYTES - 16, "uses the room it has: {}", body.len());
        assert!(r.reason.ends_with("…(truncated)"));
        assert!(r.reason.starts_with("é\"é\""));
    }

    #[test]
    fn data_too_large_is_a_clear_failure_never_a_silent_drop() {
        let mut r = response(Status::Success, "ok");
        for i in 0..100 {
            r.data.insert(format!("Key{i}"), "v".repeat(60));
        }
        let (body, r) = r.into_body();
        assert!(body.len() <= MAX_BODY_BYTES);
        assert_eq!(r.status, Status::Failed);
        assert!(r.data.is_empty());
        assert!(r.reason.contains("Data is"), "{}", r.reason);
        assert!(r.reason.contains("4096"), "{}", r.reason);
    }

    #[test]
    fn a_failure_always_has_a_reason() {
        let (_, r) = response(Status::Failed, " \n ").into_body();
        assert!(!r.reason.is_empty());
    }

    #[test]
    fn secrets_are_masked_in_reason_and_data() {
        redact::register("pa55word-for-the-db");
        let mut r = response(Status::Failed, "login failed for pa55word-for-the-db");
        r.data.insert("Echo".into(), "pa55word-for-the-db".into());
        let (body, _) = r.into_body();
        assert!(!body.contains("pa55word"), "{body}");
    }
}
