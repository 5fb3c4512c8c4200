//! The CloudFormation custom-resource runtime.
//!
//! A function implements [`CustomResource`] and hands it to [`run`]. The runtime reads the envelope
//! from the raw event first, the typed properties second, and answers every request exactly once:
//! handler success or error, panic, unparseable properties, unknown RequestType, and the Lambda deadline
//! approaching, whatever the handler is stuck on. Every AWS call a handler makes retries within the
//! handler's deadline ([`crate::aws::within`]). Physical ids are the handler's deterministic choice. A
//! failed Create is undone at once (the handler's own Delete) and answered with its deterministic id,
//! so that CloudFormation's Delete finishes the job if the undo could not; only a Create whose
//! properties do not parse, which changed nothing, answers with a recognisable marker whose later
//! Delete is acknowledged without calling the handler. A Delete whose properties no longer parse
//! cleans up by the physical id ([`CustomResource::delete_unparsed`]).

mod deliver;
mod event;
mod response;
mod runtime;

use std::collections::BTreeMap;
use std::future::Future;

use serde::de::DeserializeOwned;

pub use deliver::{deliver, http_client, Delivered, NotDelivered, MAX_ATTEMPTS};
pub use event::{is_cloudformation_response_host, Envelope, RequestType, ResponseUrl, ResponseUrlPolicy, Unanswerable};
pub use response::{clean_reason, Response, Status, MAX_BODY_BYTES, MAX_PHYSICAL_ID_BYTES};
pub use runtime::{
    cleanup_budget, handler_budget, is_custom_resource_request, is_failed_create_marker, run, serve, Invocation,
    InvocationError, Runtime, FAILED_CREATE_PREFIX,
};

/// A short, stable hexadecimal digest of `parts`, for deterministic physical ids: the same parts always
/// give the same 16 characters.
pub fn stable_digest(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// What a handler knows about the request besides its properties.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub resource_type: String,
    /// The ARN Lambda says this invocation was made on (the function's own, perhaps with a qualifier;
    /// empty outside Lambda): the account and Region the function acts in, which no property can claim.
    pub function_arn: String,
    /// When the runtime stops the handler and answers FAILED "timed out". A handler that waits for
    /// something (a database coming up) gives up a little before this, to say what it waited for.
    pub deadline: tokio::time::Instant,
}

impl RequestInfo {
    /// The request's identity from its envelope, the invoked function's ARN, and the handler's deadline.
    pub fn new(envelope: &Envelope, function_arn: &str, deadline: tokio::time::Instant) -> Self {
        Self {
            stack_id: envelope.stack_id.clone(),
            request_id: envelope.request_id.clone(),
            logical_resource_id: envelope.logical_resource_id.clone(),
            resource_type: envelope.resource_type.clone(),
            function_arn: function_arn.to_owned(),
            deadline,
        }
    }

    /// The account and Region of [`RequestInfo::function_arn`] (`arn:<partition>:lambda:<region>:<account>:…`),
    /// if it is a Lambda ARN.
    pub fn function_account_and_region(&self) -> Option<(&str, &str)> {
        let mut parts = self.function_arn.splitn(6, ':');
        let (Some("arn"), Some(_), Some("lambda"), Some(region), Some(account)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        (!region.is_empty() && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
            .then_some((account, region))
    }
}

/// What a successful handler returns: `Data` for `Fn::GetAtt`, and whether to hide it (`NoEcho`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub data: BTreeMap<String, String>,
    pub no_echo: bool,
}

impl Outcome {
    pub fn with(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.data.insert(key.into(), value.to_string());
        self
    }
}

/// One custom resource type. The runtime calls exactly one of `create`, `update` or `delete` per request.
///
/// * Create: `physical_id(props)` names the resource; `create` makes it so.
/// * Update: if `physical_id(new)` differs from the current id, that is a replacement: `create` runs for
///   the new id and CloudFormation later sends Delete for the old one. Otherwise `update` reconciles.
/// * Delete: must succeed when what it would clean up is already gone.
///
/// Every call must be idempotent: Lambda may deliver the same event more than once.
pub trait CustomResource: Send + Sync + 'static {
    type Properties: DeserializeOwned + Send + Sync + 'static;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Whether the runtime undoes a failed Create by calling [`CustomResource::delete`] at once (the
    /// default). A resource whose Delete deliberately removes nothing (a schema: committed DDL stays)
    /// says `false`: its failed Create is answered as it failed, without a claim that nothing was left.
    const UNDOES_A_FAILED_CREATE: bool = true;

    /// A deterministic, non-empty id of at most 1 KB for these properties and this request's resource.
    fn physical_id(&self, request: &RequestInfo, props: &Self::Properties) -> String;

    fn create(
        &self,
        request: &RequestInfo,
        physical_id: &str,
        props: &Self::Properties,
    ) -> impl Future<Output = Result<Outcome, Self::Error>> + Send;

    /// By default an Update reconciles exactly as a Create does (the physical id is unchanged; a
    /// changed one never reaches here, it is a replacement).
    fn update(
        &self,
        request: &RequestInfo,
        physical_id: &str,
        props: &Self::Properties,
        old: Option<&Self::Properties>,
    ) -> impl Future<Output = Result<Outcome, Self::Error>> + Send {
        let _ = old;
        self.create(request, physical_id, props)
    }

    fn delete(
        &self,
        request: &RequestInfo,
        physical_id: &str,
        props: &Self::Properties,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// A Delete whose properties no longer parse (a later, stricter version of the function; a
    /// template edited by hand): clean up what `physical_id` alone identifies, leniently reading
    /// `properties` if that helps. A Delete must never wedge a stack, so by default nothing is
    /// removed and the Delete succeeds; a resource that can find its own work from its id overrides
    /// this.
    fn delete_unparsed(
        &self,
        request: &RequestInfo,
        physical_id: &str,
        properties: &serde_json::Value,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = (request, properties);
        tracing::warn!(physical_id, "nothing identifies this resource's work without its properties; left as it is");
        std::future::ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_is_stable_and_sees_part_boundaries() {
        let a = super::stable_digest(&["stack", "Logical"]);
        assert_eq!(a.len(), 16);
        assert_eq!(a, super::stable_digest(&["stack", "Logical"]));
        assert_ne!(a, super::stable_digest(&["stackL", "ogical"]));
    }
}
