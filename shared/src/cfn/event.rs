//! The request envelope, read from raw JSON before anything typed: whatever else is wrong with an event,
//! as long as it carries a usable ResponseURL it gets an answer.

use std::fmt;

use serde_json::Value;
use url::Url;

use crate::props::kind;
use crate::redact;

/// Create, Update or Delete — or what CloudFormation never sends, kept so that it can be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestType {
    Create,
    Update,
    Delete,
    Unknown(String),
}

impl RequestType {
    fn parse(value: Option<&Value>) -> Self {
        match value.and_then(Value::as_str) {
            Some("Create") => Self::Create,
            Some("Update") => Self::Update,
            Some("Delete") => Self::Delete,
            Some(other) => Self::Unknown(other.to_owned()),
            None => Self::Unknown(value.map(Value::to_string).unwrap_or_else(|| "(missing)".into())),
        }
    }
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create => f.write_str("Create"),
            Self::Update => f.write_str("Update"),
            Self::Delete => f.write_str("Delete"),
            Self::Unknown(s) => write!(f, "{s}"),
        }
    }
}

/// The presigned URL the response goes to. Its Debug and Display never show the URL: the query holds
/// a signature that would let anyone answer for the function. The whole URL, its query and each long
/// query value are registered with [`redact`] as soon as it is parsed.
#[derive(Clone)]
pub struct ResponseUrl(Url);

impl ResponseUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|e| format!("ResponseURL is not a URL ({e})"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err("ResponseURL is not an http(s) URL with a host".into());
        }
        redact::register(text);
        if let Some(query) = url.query() {
            redact::register(query);
        }
        for (_, value) in url.query_pairs() {
            redact::register(value.as_ref());
        }
        Ok(Self(url))
    }

    /// The URL to PUT to. Use it for the request only; never format it into text.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// Where the response goes, fit to log: scheme and host only.
    pub fn host(&self) -> String {
        format!("{}://{}", self.0.scheme(), self.0.host_str().unwrap_or_default())
    }
}

impl fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseUrl({}/…)", self.host())
    }
}

/// Everything of a custom-resource request but the typed properties.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub response_url: ResponseUrl,
    pub request_type: RequestType,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub resource_type: String,
    pub physical_resource_id: Option<String>,
    pub properties: Value,
    pub old_properties: Option<Value>,
    /// Fields CloudFormation always sends that this event lacks; answered FAILED.
    pub missing: Vec<&'static str>,
}

/// Why an event cannot be answered at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot answer this event: {0}; it is not a CloudFormation custom-resource request (nobody to respond to)")]
pub struct Unanswerable(pub String);

impl Envelope {
    pub fn from_value(event: &Value) -> Result<Self, Unanswerable> {
        let Some(obj) = event.as_object() else {
            return Err(Unanswerable(format!("the event is {} rather than an object", kind(event))));
        };
        let response_url = match obj.get("ResponseURL") {
            Some(Value::String(s)) => ResponseUrl::parse(s).map_err(Unanswerable)?,
            Some(_) => return Err(Unanswerable("ResponseURL is not a string".into())),
            None => return Err(Unanswerable("the event has no ResponseURL".into())),
        };
        let mut missing = Vec::new();
        let mut text = |key: &'static str| match obj.get(key).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => {
                missing.push(key);
                String::new()
            }
        };
        let stack_id = text("StackId");
        let request_id = text("RequestId");
        let logical_resource_id = text("LogicalResourceId");
        let resource_type = text("ResourceType");
        let physical_resource_id =
            obj.get("PhysicalResourceId").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(Self {
            response_url,
            request_type: RequestType::parse(obj.get("RequestType")),
            stack_id,
            request_id,
            logical_resource_id,
            resource_type,
            physical_resource_id,
            properties: obj.get("ResourceProperties").cloned().unwrap_or(Value::Null),
            old_properties: obj.get("OldResourceProperties").cloned(),
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3Aaws/req?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0123456789abcdef0123456789abcdef";

    fn event() -> Value {
        json!({
            "RequestType": "Create", "ResponseURL": URL,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
            "RequestId": "r-1", "LogicalResourceId": "Allow", "ResourceType": "Custom::X",
            "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f", "A": "1"}
        })
    }

    #[test]
    fn reads_the_envelope() {
        let env = Envelope::from_value(&event()).unwrap();
        assert_eq!(env.request_type, RequestType::Create);
        assert_eq!(env.logical_resource_id, "Allow");
        assert_eq!(env.physical_resource_id, None);
        assert!(env.missing.is_empty());
        assert_eq!(env.properties["A"], "1");
    }

    #[test]
    fn the_url_and_its_signature_never_print() {
        let env = Envelope::from_value(&event()).unwrap();
        let debug = format!("{env:?}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
        assert!(debug.contains("s3.amazonaws.com"));
        assert_eq!(redact::redact("sig=0123456789abcdef0123456789abcdef"), "sig=***");
    }

    #[test]
    fn without_a_usable_response_url_there_is_nobody_to_answer() {
        let mut e = event();
        e.as_object_mut().unwrap().remove("ResponseURL");
        assert!(Envelope::from_value(&e).unwrap_err().0.contains("no ResponseURL"));
        e["ResponseURL"] = json!("not a url");
        assert!(Envelope::from_value(&e).unwrap_err().0.contains("not a URL"));
        e["ResponseURL"] = json!("ftp://host/x");
        assert!(Envelope::from_value(&e).unwrap_err().0.contains("http(s)"));
        e["ResponseURL"] = json!(5);
        assert!(Envelope::from_value(&e).is_err());
        assert!(Envelope::from_value(&json!([1])).unwrap_err().0.contains("a list"));
    }

    #[test]
    fn missing_fields_and_odd_request_types_are_kept_to_be_answered() {
        let mut e = event();
        e.as_object_mut().unwrap().remove("RequestId");
        e["RequestType"] = json!("Upsert");
        let env = Envelope::from_value(&e).unwrap();
        assert_eq!(env.missing, vec!["RequestId"]);
        assert_eq!(env.request_type, RequestType::Unknown("Upsert".into()));
    }
}
