//! The `Custom::NlbIpAllowlist` handler: what CloudFormation's Create, Update and Delete do.

use stackhand::cfn::{stable_digest, CustomResource, Outcome, RequestInfo};

use crate::allowlist::Allowlist;
use crate::error::AllowlistError;
use crate::interfaces::check_home;
use crate::props::{Properties, SecurityGroupId};

/// The security group a physical id `nlb-ip-allowlist:<group>:<load balancer name>:<digest>` names.
pub(crate) fn group_of(physical_id: &str) -> Option<SecurityGroupId> {
    let rest = physical_id.strip_prefix("nlb-ip-allowlist:")?;
    let mut parts = rest.split(':');
    let (Some(group), Some(_name), Some(_digest), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    group.parse().ok()
}

impl CustomResource for Allowlist {
    type Properties = Properties;
    type Error = AllowlistError;

    /// Changes with the security group or the load balancer (a replacement), stable otherwise, and
    /// distinct per stack and logical id, so each resource has its own owner tag key.
    fn physical_id(&self, request: &RequestInfo, props: &Properties) -> String {
        let digest = stable_digest(&[
            &request.stack_id,
            &request.logical_resource_id,
            &props.security_group_id.0,
            &props.load_balancer_arn.arn,
        ]);
        format!("nlb-ip-allowlist:{}:{}:{digest}", props.security_group_id, props.load_balancer_arn.name)
    }

    /// Create and Update both reconcile, for a load balancer of the function's own account and Region
    /// ([`check_home`]) into a group that opted in; ownership is in the tags, so the old properties are
    /// not needed to know what to revoke.
    async fn create(
        &self,
        request: &RequestInfo,
        physical_id: &str,
        props: &Properties,
    ) -> Result<Outcome, AllowlistError> {
        check_home(request, &props.load_balancer_arn)?;
        self.reconcile(physical_id, props).await
    }

    /// Removes this resource's own rules, from any group: one that never opted in (a stack older than
    /// the opt-in) or no longer does included.
    async fn delete(&self, _: &RequestInfo, physical_id: &str, props: &Properties) -> Result<(), AllowlistError> {
        self.remove_owner(&props.security_group_id.0, physical_id).await
    }

    /// The physical id names the group and the tags name the rules: the same cleanup as Delete. An id
    /// of another shape (none this function ever made) falls back to a `SecurityGroupId` that still
    /// reads, else nothing is identified and the Delete succeeds.
    async fn delete_unparsed(
        &self,
        _: &RequestInfo,
        physical_id: &str,
        properties: &serde_json::Value,
    ) -> Result<(), AllowlistError> {
        let from_properties = || properties.get("SecurityGroupId")?.as_str()?.parse::<SecurityGroupId>().ok();
        let Some(group) = group_of(physical_id).or_else(from_properties) else {
            tracing::warn!(
                physical_id,
                "no security group identified by the physical id or the properties; left as it is"
            );
            return Ok(());
        };
        self.remove_owner(&group.0, physical_id).await
    }
}

#[cfg(test)]
mod sample_events {
    #[test]
    fn the_sample_events_agree_with_the_code() {
        let handler = super::Allowlist::new(testkit::mock_ec2(&[]));
        testkit::assert_sample_events_agree(&handler, "nlb-ip-allowlist");
    }
}
