//! EventBridge mode: an `EC2 Instance State-change Notification` with state `running` binds a free
//! address of the instance's pool (the tag `EIP_POOL_TAG_KEY`, default `eip-pool`, with the same value
//! on instance and addresses) to the instance's primary interface. Untagged instances are ignored.

use lambda_runtime::Diagnostic;
use serde_json::{json, Value};

use crate::binding::{BindError, Binder, Owner};
use crate::props::Source;

pub const DEFAULT_POOL_TAG_KEY: &str = "eip-pool";

fn refuse(message: String) -> Diagnostic {
    tracing::error!(error = %message, "state-change event not handled");
    stackhand::lambda::diagnostic("Stackhand.EipBinding", &message)
}

pub async fn handle(binder: &Binder, pool_key: &str, event: Value) -> Result<Value, Diagnostic> {
    if event["detail-type"] != "EC2 Instance State-change Notification" {
        return Err(refuse(format!(
            "expected a CloudFormation request or an EC2 Instance State-change Notification, got detail-type {}",
            event["detail-type"]
        )));
    }
    let Some(instance) = event["detail"]["instance-id"].as_str() else {
        return Err(refuse("the state-change event has no detail.instance-id".into()));
    };
    let state = event["detail"]["state"].as_str().unwrap_or_default();
    if state != "running" {
        tracing::debug!(instance, state, "not running; nothing to bind");
        return Ok(json!({"instance": instance, "action": "ignored", "reason": format!("state is {state}")}));
    }
    let result = async {
        let (spot, tags) = binder.instance(instance).await?;
        let Some(pool) = tags.iter().find(|t| t.key() == Some(pool_key)).and_then(|t| t.value()) else {
            tracing::debug!(instance, pool_key, "instance has no pool tag; ignored");
            return Ok(json!({"instance": instance, "action": "ignored", "reason": format!("no {pool_key} tag")}));
        };
        let source = Source::Pool { key: pool_key.to_owned(), value: pool.to_owned() };
        let owner = format!("instance/{instance}");
        let bound = binder.bind(&spot, &source, false, Owner { id: &owner, resource: None }).await?;
        Ok::<_, BindError>(json!({
            "instance": instance,
            "action": if bound.newly { "bound" } else { "already-bound" },
            "pool": source.describe(),
            "public_ip": bound.public_ip,
            "allocation_id": bound.allocation_id,
            "association_id": bound.association_id,
        }))
    }
    .await;
    match result {
        Ok(summary) => {
            tracing::info!(summary = %summary, "state-change handled");
            Ok(summary)
        }
        Err(e) => Err(refuse(format!("binding an address to {instance}: {e}"))),
    }
}
