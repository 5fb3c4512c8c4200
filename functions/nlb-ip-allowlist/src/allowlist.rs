//! The `Custom::NlbIpAllowlist` handler: find the NLB's interfaces, reconcile /32 and /128 rules in the
//! security group, and own exactly the rules it added (tagged with its physical id).

use std::collections::BTreeSet;
use std::net::IpAddr;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroupRuleRequest, SecurityGroupRuleUpdate, Tag,
    TagSpecification,
};
use stackhand::aws::{describe_error, error_code};
use stackhand::cfn::{stable_digest, CustomResource, Outcome, RequestInfo};

use crate::plan::{desired, plan, ExistingRule, HostCidr, Plan, RuleKey};
use crate::props::{Properties, Protocol};

/// The tag key that marks a rule as this resource's; its value is the physical id.
pub const OWNER_TAG: &str = "stackhand:nlb-ip-allowlist";

/// How often to re-read the group when it changed under us (a duplicate delivery racing this one).
const ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    #[error(
        "no network interfaces found for {arn}: searched every Availability Zone for the description \
         {description:?}; check that the Network Load Balancer exists in this account and Region and has \
         finished provisioning"
    )]
    NoInterfaces { arn: String, description: String },
    #[error("{0}")]
    Aws(String),
    #[error("security group {group} kept changing while its rules were reconciled ({last}); retry the update")]
    Contended { group: String, last: String },
}

/// The outcome of one pass of changes; `Conflict` means the group changed meanwhile: read it again.
enum Applied {
    Done,
    Conflict(String),
}

pub struct Allowlist {
    ec2: aws_sdk_ec2::Client,
}

impl Allowlist {
    pub fn new(ec2: aws_sdk_ec2::Client) -> Self {
        Self { ec2 }
    }

    /// Private IPv4 and IPv6 addresses of every interface whose description is exactly the NLB's.
    async fn interface_addresses(&self, props: &Properties) -> Result<Vec<IpAddr>, AllowlistError> {
        let description = props.load_balancer_arn.interface_description();
        let mut pages = self
            .ec2
            .describe_network_interfaces()
            .filters(Filter::builder().name("description").values(&description).build())
            .into_paginator()
            .send();
        let mut addresses = BTreeSet::new();
        let mut interfaces = 0;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AllowlistError::Aws(describe_error("DescribeNetworkInterfaces", &e)))?;
            // The filter is exact on AWS; checking again keeps a lenient emulator honest too.
            for eni in page.network_interfaces().iter().filter(|n| n.description() == Some(description.as_str())) {
                interfaces += 1;
                let v4 = eni.private_ip_addresses().iter().filter_map(|a| a.private_ip_address());
                let v4 = v4.chain(eni.private_ip_address());
                let v6 = eni.ipv6_addresses().iter().filter_map(|a| a.ipv6_address());
                addresses.extend(v4.chain(v6).filter_map(|a| a.parse::<IpAddr>().ok()));
            }
        }
        tracing::info!(interfaces, addresses = addresses.len(), %description, "found load balancer interfaces");
        if addresses.is_empty() {
            return Err(AllowlistError::NoInterfaces { arn: props.load_balancer_arn.arn.clone(), description });
        }
        Ok(addresses.into_iter().collect())
    }

    /// The group's ingress rules; ours are those tagged with `owner`. Only ours when `only_owned`.
    async fn ingress_rules(
        &self,
        group: &str,
        owner: &str,
        only_owned: bool,
    ) -> Result<Vec<ExistingRule>, AllowlistError> {
        let mut request =
            self.ec2.describe_security_group_rules().filters(Filter::builder().name("group-id").values(group).build());
        if only_owned {
            request = request.filters(Filter::builder().name(format!("tag:{OWNER_TAG}")).values(owner).build());
        }
        let mut pages = request.into_paginator().send();
        let mut rules = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AllowlistError::Aws(describe_error("DescribeSecurityGroupRules", &e)))?;
            for r in page.security_group_rules() {
                if r.is_egress() == Some(true) || r.group_id() != Some(group) {
                    continue;
                }
                let owned = r.tags().iter().any(|t| t.key() == Some(OWNER_TAG) && t.value() == Some(owner));
                let protocol = r.ip_protocol().and_then(Protocol::from_ec2);
                let cidr = r.cidr_ipv4().or(r.cidr_ipv6()).and_then(HostCidr::parse);
                let ports = match (r.from_port(), r.to_port()) {
                    (Some(from), Some(to)) => u16::try_from(from).ok().zip(u16::try_from(to).ok()),
                    _ => None,
                };
                let key = match (protocol, cidr, ports) {
                    (Some(protocol), Some(cidr), Some((from, to))) => {
                        Some(RuleKey { protocol, cidr, ports: crate::props::PortRange { from, to } })
                    }
                    _ => None,
                };
                rules.push(ExistingRule {
                    id: r.security_group_rule_id().unwrap_or_default().to_owned(),
                    key,
                    description: r.description().map(str::to_owned),
                    owned,
                });
            }
        }
        Ok(rules)
    }

    /// Authorize first, then re-describe, then revoke: addresses that stay never lose access.
    async fn apply(
        &self,
        group: &str,
        owner: &str,
        plan: &Plan,
        protocol: Protocol,
        description: &str,
    ) -> Result<Applied, AllowlistError> {
        let owner_tags = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroupRule)
            .tags(Tag::builder().key(OWNER_TAG).value(owner).build())
            .build();
        for (ports, cidrs) in &plan.authorize {
            let mut permission = IpPermission::builder()
                .ip_protocol(protocol.as_ec2())
                .from_port(i32::from(ports.from))
                .to_port(i32::from(ports.to));
            for cidr in cidrs {
                permission = match cidr.0 {
                    IpAddr::V4(_) => permission
                        .ip_ranges(IpRange::builder().cidr_ip(cidr.to_string()).description(description).build()),
                    IpAddr::V6(_) => permission
                        .ipv6_ranges(Ipv6Range::builder().cidr_ipv6(cidr.to_string()).description(description).build()),
                };
            }
            let sent = self
                .ec2
                .authorize_security_group_ingress()
                .group_id(group)
                .ip_permissions(permission.build())
                .tag_specifications(owner_tags.clone())
                .send()
                .await;
            if let Err(e) = sent {
                return match error_code(&e) {
                    Some("InvalidPermission.Duplicate") => {
                        Ok(Applied::Conflict(describe_error("AuthorizeSecurityGroupIngress", &e)))
                    }
                    _ => Err(AllowlistError::Aws(describe_error("AuthorizeSecurityGroupIngress", &e))),
                };
            }
            tracing::info!(%group, ports = %ports, addresses = cidrs.len(), "authorized");
        }
        if !plan.redescribe.is_empty() {
            let updates = plan.redescribe.iter().map(|(id, key)| {
                let rule = SecurityGroupRuleRequest::builder()
                    .ip_protocol(key.protocol.as_ec2())
                    .from_port(i32::from(key.ports.from))
                    .to_port(i32::from(key.ports.to))
                    .description(description);
                let rule = match key.cidr.0 {
                    IpAddr::V4(_) => rule.cidr_ipv4(key.cidr.to_string()),
                    IpAddr::V6(_) => rule.cidr_ipv6(key.cidr.to_string()),
                };
                SecurityGroupRuleUpdate::builder().security_group_rule_id(id).security_group_rule(rule.build()).build()
            });
            let sent = self
                .ec2
                .modify_security_group_rules()
                .group_id(group)
                .set_security_group_rules(Some(updates.collect()))
                .send()
                .await;
            if let Err(e) = sent {
                return match error_code(&e) {
                    Some("InvalidSecurityGroupRuleId.NotFound") => {
                        Ok(Applied::Conflict(describe_error("ModifySecurityGroupRules", &e)))
                    }
                    _ => Err(AllowlistError::Aws(describe_error("ModifySecurityGroupRules", &e))),
                };
            }
            tracing::info!(%group, rules = plan.redescribe.len(), "descriptions updated");
        }
        self.revoke(group, &plan.revoke).await
    }

    async fn revoke(&self, group: &str, rule_ids: &[String]) -> Result<Applied, AllowlistError> {
        if rule_ids.is_empty() {
            return Ok(Applied::Done);
        }
        let sent = self
            .ec2
            .revoke_security_group_ingress()
            .group_id(group)
            .set_security_group_rule_ids(Some(rule_ids.to_vec()))
            .send()
            .await;
        match sent {
            Ok(_) => {
                tracing::info!(%group, rules = rule_ids.len(), "revoked");
                Ok(Applied::Done)
            }
            Err(e) => match error_code(&e) {
                // Someone (a duplicate delivery) removed some of them first: read again.
                Some("InvalidSecurityGroupRuleId.NotFound" | "InvalidPermission.NotFound") => {
                    Ok(Applied::Conflict(describe_error("RevokeSecurityGroupIngress", &e)))
                }
                // The group is gone, and its rules with it.
                Some("InvalidGroup.NotFound") => Ok(Applied::Done),
                _ => Err(AllowlistError::Aws(describe_error("RevokeSecurityGroupIngress", &e))),
            },
        }
    }

    async fn reconcile(&self, owner: &str, props: &Properties) -> Result<Outcome, AllowlistError> {
        let group = props.security_group_id.0.as_str();
        let addresses = self.interface_addresses(props).await?;
        let want = desired(&addresses, &props.ports, props.protocol);
        let description = rule_description(props);
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let existing = self.ingress_rules(group, owner, false).await?;
            let plan = plan(&want, &existing, &description);
            if plan.is_empty() {
                tracing::info!(%group, rules = want.len(), "already in the wanted state");
            }
            match self.apply(group, owner, &plan, props.protocol, &description).await? {
                Applied::Done => return Ok(outcome(&addresses, want.len())),
                Applied::Conflict(why) => last = why,
            }
        }
        Err(AllowlistError::Contended { group: group.to_owned(), last })
    }
}

fn rule_description(props: &Properties) -> String {
    match &props.rule_description {
        Some(d) => d.0.clone(),
        None => format!("NLB {} (stackhand nlb-ip-allowlist)", props.load_balancer_arn.name),
    }
}

/// `PrivateIpAddresses`: IPv4 in numeric order, then IPv6; `RuleCount`: addresses × port ranges.
fn outcome(addresses: &[IpAddr], rule_count: usize) -> Outcome {
    let listed = addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",");
    Outcome::default().with("PrivateIpAddresses", listed).with("RuleCount", rule_count)
}

impl CustomResource for Allowlist {
    type Properties = Properties;
    type Error = AllowlistError;

    /// Changes with the security group or the load balancer (a replacement), stable otherwise, and
    /// distinct per stack and logical id so two resources never share rules' ownership.
    fn physical_id(&self, request: &RequestInfo, props: &Properties) -> String {
        let digest = stable_digest(&[
            &request.stack_id,
            &request.logical_resource_id,
            &props.security_group_id.0,
            &props.load_balancer_arn.arn,
        ]);
        format!("nlb-ip-allowlist:{}:{}:{digest}", props.security_group_id, props.load_balancer_arn.name)
    }

    /// Create and Update both reconcile; ownership is in the tags, so the old properties are not
    /// needed to know what to revoke.
    async fn create(&self, _: &RequestInfo, physical_id: &str, props: &Properties) -> Result<Outcome, AllowlistError> {
        self.reconcile(physical_id, props).await
    }

    async fn delete(&self, _: &RequestInfo, physical_id: &str, props: &Properties) -> Result<(), AllowlistError> {
        let group = props.security_group_id.0.as_str();
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let ours: Vec<String> = self
                .ingress_rules(group, physical_id, true)
                .await?
                .into_iter()
                .filter(|r| r.owned)
                .map(|r| r.id)
                .collect();
            if ours.is_empty() {
                tracing::info!(%group, "no rules of this resource remain");
                return Ok(());
            }
            match self.revoke(group, &ours).await? {
                Applied::Done => return Ok(()),
                Applied::Conflict(why) => last = why,
            }
        }
        Err(AllowlistError::Contended { group: group.to_owned(), last })
    }
}

/// Error paths moto cannot produce (races with a concurrent delivery, a vanished group, a denied call),
/// with aws-smithy-mocks rules in front of a real SDK client.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::props::{NlbArn, PortRange, SecurityGroupId};
    use aws_sdk_ec2::operation::authorize_security_group_ingress::{
        AuthorizeSecurityGroupIngressError, AuthorizeSecurityGroupIngressOutput,
    };
    use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
    use aws_sdk_ec2::operation::describe_security_group_rules::DescribeSecurityGroupRulesOutput;
    use aws_sdk_ec2::operation::revoke_security_group_ingress::{
        RevokeSecurityGroupIngressError, RevokeSecurityGroupIngressOutput,
    };
    use aws_sdk_ec2::types::{NetworkInterface, NetworkInterfacePrivateIpAddress, SecurityGroupRule};
    use aws_sdk_ec2::Client;
    use aws_smithy_mocks::{mock, Rule};
    use aws_smithy_types::error::ErrorMetadata;

    const GROUP: &str = "sg-0123456789abcdef0";
    const OWNER: &str = "nlb-ip-allowlist:sg-0123456789abcdef0:app:0011223344556677";

    fn client(rules: &[&Rule]) -> Client {
        testkit::mock_ec2(rules)
    }

    fn props() -> Properties {
        Properties {
            load_balancer_arn:
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/app/0123456789abcdef"
                    .parse::<NlbArn>()
                    .unwrap(),
            security_group_id: GROUP.parse::<SecurityGroupId>().unwrap(),
            ports: vec![PortRange { from: 80, to: 80 }],
            protocol: Protocol::Tcp,
            rule_description: None,
        }
    }

    fn one_interface() -> Rule {
        mock!(Client::describe_network_interfaces).then_output(|| {
            DescribeNetworkInterfacesOutput::builder()
                .network_interfaces(
                    NetworkInterface::builder()
                        .description("ELB net/app/0123456789abcdef")
                        .private_ip_address("10.0.0.5")
                        .private_ip_addresses(
                            NetworkInterfacePrivateIpAddress::builder().private_ip_address("10.0.0.5").build(),
                        )
                        .build(),
                )
                .build()
        })
    }

    fn rules_output(owned: &[(&'static str, &'static str)]) -> Rule {
        let owned = owned.to_vec();
        mock!(Client::describe_security_group_rules).then_output(move || {
            let rules = owned.iter().map(|(id, cidr)| {
                SecurityGroupRule::builder()
                    .security_group_rule_id(*id)
                    .group_id(GROUP)
                    .is_egress(false)
                    .ip_protocol("tcp")
                    .from_port(80)
                    .to_port(80)
                    .cidr_ipv4(*cidr)
                    .description("NLB app (stackhand nlb-ip-allowlist)")
                    .tags(Tag::builder().key(OWNER_TAG).value(OWNER).build())
                    .build()
            });
            DescribeSecurityGroupRulesOutput::builder().set_security_group_rules(Some(rules.collect())).build()
        })
    }

    fn info() -> RequestInfo {
        RequestInfo {
            stack_id: "s".into(),
            request_id: "r".into(),
            logical_resource_id: "l".into(),
            resource_type: "Custom::NlbIpAllowlist".into(),
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(30),
        }
    }

    fn code(code: &'static str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(format!("{code} (mocked)")).build()
    }

    #[tokio::test]
    async fn a_duplicate_from_a_racing_delivery_is_read_again_and_succeeds() {
        let interfaces = one_interface();
        let empty = rules_output(&[]);
        let duplicate = mock!(Client::authorize_security_group_ingress)
            .then_error(|| AuthorizeSecurityGroupIngressError::generic(code("InvalidPermission.Duplicate")));
        let now_there = rules_output(&[("sgr-1", "10.0.0.5/32")]);
        let ec2 = client(&[&interfaces, &empty, &duplicate, &now_there]);
        let outcome = Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
        assert_eq!(outcome.data["RuleCount"], "1");
        assert_eq!(duplicate.num_calls(), 1);
        assert_eq!(now_there.num_calls(), 1, "the group was read again after the conflict");
    }

    #[tokio::test]
    async fn a_group_that_keeps_changing_ends_in_a_clear_error() {
        let interfaces = one_interface();
        let mut rules: Vec<Rule> = Vec::new();
        for _ in 0..ATTEMPTS {
            rules.push(rules_output(&[]));
            rules.push(
                mock!(Client::authorize_security_group_ingress)
                    .then_error(|| AuthorizeSecurityGroupIngressError::generic(code("InvalidPermission.Duplicate"))),
            );
        }
        let all: Vec<&Rule> = std::iter::once(&interfaces).chain(rules.iter()).collect();
        let err = Allowlist::new(client(&all)).reconcile(OWNER, &props()).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(GROUP) && text.contains("kept changing"), "{text}");
    }

    #[tokio::test]
    async fn a_denied_call_names_the_operation_and_the_code() {
        let interfaces = one_interface();
        let empty = rules_output(&[]);
        let denied = mock!(Client::authorize_security_group_ingress)
            .then_error(|| AuthorizeSecurityGroupIngressError::generic(code("UnauthorizedOperation")));
        let err = Allowlist::new(client(&[&interfaces, &empty, &denied])).reconcile(OWNER, &props()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "AuthorizeSecurityGroupIngress failed: UnauthorizedOperation: UnauthorizedOperation (mocked)"
        );
    }

    #[tokio::test]
    async fn delete_succeeds_when_the_group_vanished_between_read_and_revoke() {
        let ours = rules_output(&[("sgr-1", "10.0.0.5/32")]);
        let gone = mock!(Client::revoke_security_group_ingress)
            .then_error(|| RevokeSecurityGroupIngressError::generic(code("InvalidGroup.NotFound")));
        let handler = Allowlist::new(client(&[&ours, &gone]));
        handler.delete(&info(), OWNER, &props()).await.unwrap();
        assert_eq!(gone.num_calls(), 1);
    }

    #[tokio::test]
    async fn delete_rereads_when_a_racing_delivery_revoked_first() {
        let ours = rules_output(&[("sgr-1", "10.0.0.5/32"), ("sgr-2", "10.0.0.6/32")]);
        let raced = mock!(Client::revoke_security_group_ingress)
            .then_error(|| RevokeSecurityGroupIngressError::generic(code("InvalidSecurityGroupRuleId.NotFound")));
        let one_left = rules_output(&[("sgr-2", "10.0.0.6/32")]);
        let revoked = mock!(Client::revoke_security_group_ingress)
            .match_requests(|r| r.security_group_rule_ids() == ["sgr-2".to_string()])
            .then_output(|| RevokeSecurityGroupIngressOutput::builder().r#return(true).build());
        let handler = Allowlist::new(client(&[&ours, &raced, &one_left, &revoked]));
        handler.delete(&info(), OWNER, &props()).await.unwrap();
        assert_eq!(revoked.num_calls(), 1, "only the rule still there was revoked the second time");
    }

    #[tokio::test]
    async fn authorize_sends_every_address_of_a_range_in_one_call_tagged_with_the_owner() {
        let interfaces = mock!(Client::describe_network_interfaces).then_output(|| {
            let eni = |ip: &str| {
                NetworkInterface::builder()
                    .description("ELB net/app/0123456789abcdef")
                    .private_ip_addresses(NetworkInterfacePrivateIpAddress::builder().private_ip_address(ip).build())
                    .build()
            };
            DescribeNetworkInterfacesOutput::builder()
                .network_interfaces(eni("10.0.0.5"))
                .network_interfaces(eni("10.0.1.5"))
                .network_interfaces(eni("10.0.2.5"))
                .build()
        });
        let empty = rules_output(&[]);
        let authorize = mock!(Client::authorize_security_group_ingress)
            .match_requests(|r| {
                let p = &r.ip_permissions()[0];
                let tagged = r.tag_specifications()[0].tags()[0].value() == Some(OWNER);
                r.ip_permissions().len() == 1 && p.ip_ranges().len() == 3 && p.from_port() == Some(80) && tagged
            })
            .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().r#return(true).build());
        let ec2 = client(&[&interfaces, &empty, &authorize]);
        let outcome = Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
        assert_eq!(authorize.num_calls(), 1);
        assert_eq!(outcome.data["PrivateIpAddresses"], "10.0.0.5,10.0.1.5,10.0.2.5");
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
