//! The `Custom::EipBinding` handler.

use std::sync::Arc;

use stackhand::cfn::{stable_digest, CustomResource, Outcome, RequestInfo};

use crate::binding::{BindError, Binder, Owner};
use crate::props::Properties;

pub struct EipBinding {
    binder: Arc<Binder>,
}

impl EipBinding {
    pub fn new(binder: Arc<Binder>) -> Self {
        Self { binder }
    }

    async fn bind(&self, request: &RequestInfo, physical_id: &str, props: &Properties) -> Result<Outcome, BindError> {
        let resource = resource_id(request);
        let owner = Owner { id: physical_id, resource: Some(&resource) };
        let bound = self.binder.bind_target(&props.target, &props.source, props.allow_reassociation, owner).await?;
        Ok(Outcome::default()
            .with("PublicIp", bound.public_ip)
            .with("AllocationId", bound.allocation_id)
            .with("AssociationId", bound.association_id))
    }
}

/// The resource across its replacements (a new instance means a new physical id, not a new resource):
/// a fixed address may move from its earlier binding to the new one.
fn resource_id(request: &RequestInfo) -> String {
    stable_digest(&[&request.stack_id, &request.logical_resource_id])
}

impl CustomResource for EipBinding {
    type Properties = Properties;
    type Error = BindError;

    /// A new target or source is a new binding (a replacement); the old one goes with its Delete.
    fn physical_id(&self, request: &RequestInfo, props: &Properties) -> String {
        let (target, source) = (props.target.describe(), props.source.describe());
        let digest = stable_digest(&[&request.stack_id, &request.logical_resource_id, &target, &source]);
        format!("eip-binding:{target}:{digest}")
    }

    /// Create, and Update with the same target and source (else it would be a replacement): make sure
    /// the binding holds.
    async fn create(&self, request: &RequestInfo, physical_id: &str, props: &Properties) -> Result<Outcome, BindError> {
        self.bind(request, physical_id, props).await
    }

    async fn delete(&self, _: &RequestInfo, physical_id: &str, props: &Properties) -> Result<(), BindError> {
        let released = self.binder.release(&props.source, physical_id, Some(&props.target)).await?;
        tracing::info!(released, "binding released");
        Ok(())
    }

    /// The addresses this binding tagged are found by its owner tag alone.
    async fn delete_unparsed(
        &self,
        _: &RequestInfo,
        physical_id: &str,
        _: &serde_json::Value,
    ) -> Result<(), BindError> {
        let released = self.binder.release_owned(physical_id).await?;
        tracing::info!(released, "binding released by its owner tag");
        Ok(())
    }
}

#[cfg(test)]
mod sample_events {
    #[test]
    fn the_sample_events_agree_with_the_code() {
        let binder = std::sync::Arc::new(crate::binding::Binder::new(testkit::mock_ec2(&[])));
        testkit::assert_sample_events_agree(&super::EipBinding::new(binder), "eip-binding");
    }
}
