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
    /// Parses `text` and checks it against `policy`: a URL the policy does not allow is refused here,
    /// before any request, and the refusal names its host only.
    pub fn parse(text: &str, policy: &ResponseUrlPolicy) -> Result<Self, String> {
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
        let url = Self(url);
        policy.check(&url)?;
        Ok(url)
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

/// Where a response may be PUT. CloudFormation's ResponseURL is always a presigned https URL of its
/// own response bucket in the Region, `cloudformation-custom-resource-response-<region without dashes>`,
/// addressed virtual-hosted style under the partition's S3 domain (`….s3.amazonaws.com`,
/// `….s3-eu-west-1.amazonaws.com`, `….s3.eu-west-1.amazonaws.com`, `….s3.cn-north-1.amazonaws.com.cn`).
/// Anything else is refused without a request: whoever may invoke the function could otherwise make
/// it send requests, with its network position, to any address it can reach.
///
/// [`ResponseUrlPolicy::ENV`] adds hosts (any scheme, any port) for a local recorder or emulator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseUrlPolicy {
    extra_hosts: Vec<String>,
}

/// The S3 domains of the AWS partitions (aws and aws-us-gov, aws-cn, aws-iso, aws-iso-b, aws-eusc).
const S3_DOMAIN_SUFFIXES: &[&str] =
    &["amazonaws.com", "amazonaws.com.cn", "c2s.ic.gov", "sc2s.sgov.gov", "amazonaws.eu"];
const RESPONSE_BUCKET_PREFIX: &str = "cloudformation-custom-resource-response-";

impl ResponseUrlPolicy {
    /// Comma-separated hosts the function may also answer to, e.g. `127.0.0.1,localhost`.
    pub const ENV: &'static str = "STACKHAND_RESPONSE_URL_HOSTS";

    /// CloudFormation's response buckets, plus the hosts in [`Self::ENV`].
    pub fn from_env() -> Self {
        Self::with_hosts(std::env::var(Self::ENV).unwrap_or_default().split(','))
    }

    /// CloudFormation's response buckets, plus `hosts` (blank ones ignored).
    pub fn with_hosts<'a>(hosts: impl IntoIterator<Item = &'a str>) -> Self {
        let extra_hosts = hosts
            .into_iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Self { extra_hosts }
    }

    fn check(&self, url: &ResponseUrl) -> Result<(), String> {
        let u = url.as_url();
        let host = u.host_str().unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
        // `[::1]` is listed as `::1` or `[::1]`.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if self.extra_hosts.iter().any(|h| h.trim_start_matches('[').trim_end_matches(']') == bare) {
            return Ok(());
        }
        let https = u.scheme() == "https" && u.port().is_none_or(|p| p == 443);
        if https && is_cloudformation_response_host(&host) {
            return Ok(());
        }
        Err(format!(
            "ResponseURL {} is not CloudFormation's: responses go only over https to its response bucket \
             ({RESPONSE_BUCKET_PREFIX}<region>.s3.<region>.amazonaws.com or the partition's S3 domain), so no \
             request was sent. To answer another host (a local recorder or emulator), list it in the \
             function's {} (comma-separated hosts)",
            url.host(),
            Self::ENV
        ))
    }
}

/// Whether `host` is a CloudFormation response bucket's virtual-hosted S3 name:
/// `cloudformation-custom-resource-response-<region without dashes>.` then `s3`, `s3-<region>`,
/// `s3.<region>` or `s3.dualstack.<region>`, then a partition's S3 domain.
pub fn is_cloudformation_response_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix(RESPONSE_BUCKET_PREFIX) else { return false };
    let Some((region_label, endpoint)) = rest.split_once('.') else { return false };
    if region_label.is_empty() || !region_label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return false;
    }
    let Some(service) =
        S3_DOMAIN_SUFFIXES.iter().find_map(|suffix| endpoint.strip_suffix(suffix).and_then(|s| s.strip_suffix('.')))
    else {
        return false;
    };
    let is_region = |r: &str| {
        let parts: Vec<&str> = r.split('-').collect();
        parts.len() >= 3
            && parts[0].len() == 2
            && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
            && !parts[parts.len() - 1].is_empty()
    };
    match service {
        "s3" => true,
        _ => service
            .strip_prefix("s3-")
            .or_else(|| service.strip_prefix("s3.dualstack."))
            .or_else(|| service.strip_prefix("s3."))
            .is_some_and(is_region),
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
    /// Reads the envelope, checking its ResponseURL against [`ResponseUrlPolicy::from_env`].
    pub fn from_value(event: &Value) -> Result<Self, Unanswerable> {
        Self::from_value_with(event, &ResponseUrlPolicy::from_env())
    }

    /// Reads the envelope, checking its ResponseURL against `policy`.
    pub fn from_value_with(event: &Value, policy: &ResponseUrlPolicy) -> Result<Self, Unanswerable> {
        let Some(obj) = event.as_object() else {
            return Err(Unanswerable(format!("the event is {} rather than an object", kind(event))));
        };
        let response_url = match obj.get("ResponseURL") {
            Some(Value::String(s)) => ResponseUrl::parse(s, policy).map_err(Unanswerable)?,
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
    fn only_cloudformations_response_buckets_are_answered_by_default() {
        for host in [
            "cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
            "cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com",
            "cloudformation-custom-resource-response-useast1.s3.us-east-1.amazonaws.com",
            "cloudformation-custom-resource-response-apnortheast1.s3-ap-northeast-1.amazonaws.com",
            "cloudformation-custom-resource-response-usgovwest1.s3-us-gov-west-1.amazonaws.com",
            "cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn",
            "cloudformation-custom-resource-response-uswest2.s3.dualstack.us-west-2.amazonaws.com",
        ] {
            assert!(is_cloudformation_response_host(host), "{host}");
            let mut e = event();
            e["ResponseURL"] = json!(format!("https://{host}/arn%3Aaws/req?X-Amz-Signature=abcdef0123456789"));
            assert!(Envelope::from_value_with(&e, &ResponseUrlPolicy::default()).is_ok(), "{host}");
        }
        for host in [
            "evil.example.com",
            "cloudformation-custom-resource-response-useast1.s3.amazonaws.com.evil.example",
            "cloudformation-custom-resource-response-useast1.evil.amazonaws.com",
            "my-bucket.s3.amazonaws.com",
            "cloudformation-custom-resource-response-.s3.amazonaws.com",
            "cloudformation-custom-resource-response-use-ast1.s3.amazonaws.com",
            "cloudformation-custom-resource-response-useast1.s3-useast1.amazonaws.com",
            "x.cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
            "169.254.169.254",
            "127.0.0.1",
        ] {
            assert!(!is_cloudformation_response_host(host), "{host}");
        }
        let refuse = |url: &str, policy: &ResponseUrlPolicy| {
            let mut e = event();
            e["ResponseURL"] = json!(url);
            Envelope::from_value_with(&e, policy).unwrap_err().0
        };
        let none = ResponseUrlPolicy::default();
        let why = refuse("http://169.254.169.254/latest/meta-data?X-Amz-Signature=feedface0123456789", &none);
        assert!(why.starts_with("ResponseURL http://169.254.169.254 is not CloudFormation's"), "{why}");
        assert!(why.contains("STACKHAND_RESPONSE_URL_HOSTS"), "names the setting: {why}");
        assert!(!why.contains("meta-data") && !why.contains("feedface"), "the host only: {why}");
        let plain = "http://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x";
        assert!(refuse(plain, &none).contains("not CloudFormation's"), "https only");
        let port = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com:8443/x";
        assert!(refuse(port, &none).contains("not CloudFormation's"), "no other port");
    }

    #[test]
    fn the_owner_adds_hosts_with_any_scheme_and_port() {
        let policy = ResponseUrlPolicy::with_hosts(" 127.0.0.1 ,localhost,,[::1]".split(','));
        for url in ["http://127.0.0.1:8939/r", "https://LOCALHOST/x", "http://[::1]:80/x"] {
            let mut e = event();
            e["ResponseURL"] = json!(url);
            assert!(Envelope::from_value_with(&e, &policy).is_ok(), "{url}");
        }
        let mut e = event();
        e["ResponseURL"] = json!("http://127.0.0.2:8939/r");
        assert!(Envelope::from_value_with(&e, &policy).is_err(), "only the hosts listed");
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
