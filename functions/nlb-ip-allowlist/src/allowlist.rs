//! The `Custom::NlbIpAllowlist` handler: find the NLB's interfaces (waiting for a load balancer still
//! provisioning), reconcile /32 and /128 rules in the security group, and own the rules it added or
//! shares with other stackhand allowlists (each owner tags a rule with its own key).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroupRule, SecurityGroupRuleRequest,
    SecurityGroupRuleUpdate, Tag, TagSpecification,
};
use stackhand::aws::{AwsError, AwsResultExt as _, RETRY_WINDOW};
use stackhand::cfn::{stable_digest, CustomResource, Outcome, RequestInfo};
use tokio::time::Instant;

use crate::plan::{desired, over_quota, plan, ExistingRule, Family, HostCidr, Owners, Plan, RuleKey};
use crate::props::{PortRange, Properties, Protocol, SecurityGroupId};

/// The tag key of earlier versions (one key, valued with the owner's physical id), and the prefix of
/// every owner key now: `stackhand:nlb-ip-allowlist:<digest of the physical id>`.
pub const OWNER_TAG: &str = "stackhand:nlb-ip-allowlist";

/// The environment variable holding the account's "Inbound or outbound rules per security group"
/// quota (Service Quotas code L-0EA8095F) when it was raised above AWS's default.
pub const QUOTA_ENV: &str = "RULES_PER_SECURITY_GROUP";
/// AWS's default of that quota, per group, per direction, for IPv4 and IPv6 rules each.
pub const DEFAULT_RULES_PER_GROUP: usize = 60;

/// How often to re-read the group when it changed under us (a duplicate delivery racing this one).
const ATTEMPTS: usize = 3;

/// Waiting for a load balancer's interfaces: the first pause, doubling up to the longest.
const FIRST_POLL: Duration = Duration::from_secs(2);
const LONGEST_POLL: Duration = Duration::from_secs(15);
/// Left after the wait for the rules' reads and writes, the failed Create's undo and the answer.
const AFTER_WAIT: Duration = RETRY_WINDOW.saturating_add(Duration::from_secs(4));
/// How long to wait outside any invocation deadline (never in Lambda: the runtime always sets one).
const UNSCOPED_WAIT: Duration = Duration::from_secs(60);

/// The tag key by which `physical_id` owns a rule: short (tag keys are at most 128 characters) and the
/// same for the same physical id; its value is the physical id itself, for people reading the tags.
pub fn owner_key(physical_id: &str) -> String {
    format!("{OWNER_TAG}:{}", stable_digest(&[physical_id]))
}

#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    #[error(
        "no network interfaces found for {arn} (LoadBalancerArn) after waiting {waited_s} s: searched every \
         Availability Zone for the description {description:?}; check that the Network Load Balancer exists in \
         this account and Region and has finished provisioning, then retry"
    )]
    NoInterfaces { arn: String, description: String, waited_s: u64 },
    #[error(
        "security group {group} (SecurityGroupId) would need {total} inbound {family} rules, above the quota of \
         {quota} rules per security group: {existing} there now + {adding} new ({addresses} {family} addresses × \
         {ranges} port ranges of Ports); nothing was changed. Allow fewer ranges (one range such as \"8000-8100\" \
         is one rule per address) or request an increase of the VPC quota \"Inbound or outbound rules per \
         security group\" (L-0EA8095F) and set the function's environment variable {QUOTA_ENV} to the new value"
    )]
    OverQuota {
        group: String,
        family: &'static str,
        existing: usize,
        adding: usize,
        total: usize,
        addresses: usize,
        ranges: usize,
        quota: usize,
    },
    #[error(
        "security group {group} (SecurityGroupId) reached its rules-per-group quota ({detail}); allow fewer port \
         ranges in Ports, remove unused rules from the group, or request an increase of the VPC quota \"Inbound \
         or outbound rules per security group\" (L-0EA8095F) and set the function's environment variable \
         {QUOTA_ENV} to the new value"
    )]
    QuotaReached { group: String, detail: String },
    #[error(
        "the function's environment variable {QUOTA_ENV} is {value:?}, not a number of rules; set it to the \
         account's \"Inbound or outbound rules per security group\" quota (e.g. 60, AWS's default) or remove it"
    )]
    QuotaSetting { value: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("security group {group} kept changing while its rules were reconciled ({last}); retry the update")]
    Contended { group: String, last: String },
}

/// The outcome of one pass of changes; `Conflict` means the group changed meanwhile: read it again.
enum Applied {
    Done,
    Conflict(String),
}

/// A failed change: the group changed under us (read again), or a real error.
fn conflict_or(e: AwsError, conflicts: &[&str]) -> Result<Applied, AllowlistError> {
    match e.code() {
        Some(code) if conflicts.contains(&code) => Ok(Applied::Conflict(e.to_string())),
        _ => Err(e.into()),
    }
}

/// Tagging a rule a racing delivery (or a racing owner's Delete) just revoked.
const RULE_GONE: &[&str] = &["InvalidSecurityGroupRuleId.NotFound", "InvalidID"];

pub struct Allowlist {
    ec2: aws_sdk_ec2::Client,
    /// The rules-per-group quota, or the unreadable setting (reported by the Create or Update that
    /// needs it, so a Delete never fails over it).
    rules_per_group: Result<usize, String>,
}

impl Allowlist {
    pub fn new(ec2: aws_sdk_ec2::Client) -> Self {
        Self { ec2, rules_per_group: Ok(DEFAULT_RULES_PER_GROUP) }
    }

    /// With the quota from `setting` ([`QUOTA_ENV`]'s value): unset or blank means AWS's default.
    pub fn with_quota_setting(mut self, setting: Option<&str>) -> Self {
        self.rules_per_group = match setting.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(DEFAULT_RULES_PER_GROUP),
            Some(s) => s.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| s.to_owned()),
        };
        self
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
            let page = page.op("DescribeNetworkInterfaces")?;
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
        Ok(addresses.into_iter().collect())
    }

    /// The NLB's addresses, waiting for them while it is still provisioning (created by another stack,
    /// or in this one without a dependency on it): polled with a backoff until shortly before the
    /// invocation's deadline, leaving [`AFTER_WAIT`] for the rules and the answer.
    async fn wait_for_addresses(&self, props: &Properties) -> Result<Vec<IpAddr>, AllowlistError> {
        let started = Instant::now();
        let give_up = match stackhand::aws::deadline() {
            Some(deadline) => deadline.checked_sub(AFTER_WAIT).unwrap_or(started).max(started),
            None => started + UNSCOPED_WAIT,
        };
        let mut pause = FIRST_POLL;
        loop {
            let addresses = self.interface_addresses(props).await?;
            if !addresses.is_empty() {
                return Ok(addresses);
            }
            let now = Instant::now();
            if now >= give_up {
                return Err(AllowlistError::NoInterfaces {
                    arn: props.load_balancer_arn.arn.clone(),
                    description: props.load_balancer_arn.interface_description(),
                    waited_s: now.duration_since(started).as_secs(),
                });
            }
            let wait = pause.min(give_up - now);
            tracing::info!(wait_ms = wait.as_millis() as u64, "the load balancer has no interfaces yet; waiting");
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(LONGEST_POLL);
        }
    }

    /// The group's ingress rules, with their stackhand owners as `owner` sees them.
    async fn ingress_rules(&self, group: &str, owner: &str) -> Result<Vec<ExistingRule>, AllowlistError> {
        let key = owner_key(owner);
        let mut pages = self
            .ec2
            .describe_security_group_rules()
            .filters(Filter::builder().name("group-id").values(group).build())
            .into_paginator()
            .send();
        let mut rules = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.op("DescribeSecurityGroupRules")?;
            for r in page.security_group_rules() {
                if r.is_egress() == Some(true) || r.group_id() != Some(group) {
                    continue;
                }
                rules.push(existing_rule(r, owner, &key));
            }
        }
        Ok(rules)
    }

    /// Authorize and claim first, then re-describe, then revoke and release: addresses that stay never
    /// lose access.
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
            .tags(Tag::builder().key(owner_key(owner)).value(owner).build())
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
                .await
                .op("AuthorizeSecurityGroupIngress");
            if let Err(e) = sent {
                if e.code() == Some("RulesPerSecurityGroupLimitExceeded") {
                    return Err(AllowlistError::QuotaReached { group: group.to_owned(), detail: e.to_string() });
                }
                return conflict_or(e, &["InvalidPermission.Duplicate"]);
            }
            tracing::info!(%group, ports = %ports, addresses = cidrs.len(), "authorized");
        }
        if !plan.claim.is_empty() {
            let sent = self
                .ec2
                .create_tags()
                .set_resources(Some(plan.claim.clone()))
                .tags(Tag::builder().key(owner_key(owner)).value(owner).build())
                .send()
                .await
                .op("CreateTags");
            if let Err(e) = sent {
                return conflict_or(e, RULE_GONE);
            }
            tracing::info!(%group, rules = plan.claim.len(), "shared rules another stackhand allowlist owns");
        }
        if !plan.migrate.is_empty() {
            // The old single key, only where it names this owner; the new key is on since the claim.
            if let Applied::Conflict(why) =
                self.untag(&plan.migrate, vec![Tag::builder().key(OWNER_TAG).value(owner).build()]).await?
            {
                return Ok(Applied::Conflict(why));
            }
            tracing::info!(%group, rules = plan.migrate.len(), "moved rules to this owner's own tag key");
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
                .await
                .op("ModifySecurityGroupRules");
            if let Err(e) = sent {
                return conflict_or(e, &["InvalidSecurityGroupRuleId.NotFound"]);
            }
            tracing::info!(%group, rules = plan.redescribe.len(), "descriptions updated");
        }
        self.retire(group, owner, plan).await
    }

    /// Our unwanted rules: revoked when we own them alone, otherwise our tags removed; a released rule
    /// that no stackhand owner holds any more (its other owner released it at the same moment) is
    /// revoked too.
    async fn retire(&self, group: &str, owner: &str, plan: &Plan) -> Result<Applied, AllowlistError> {
        if let Applied::Conflict(why) = self.revoke(group, &plan.revoke).await? {
            return Ok(Applied::Conflict(why));
        }
        if plan.release.is_empty() {
            return Ok(Applied::Done);
        }
        let ours =
            vec![Tag::builder().key(owner_key(owner)).build(), Tag::builder().key(OWNER_TAG).value(owner).build()];
        if let Applied::Conflict(why) = self.untag(&plan.release, ours).await? {
            return Ok(Applied::Conflict(why));
        }
        tracing::info!(%group, rules = plan.release.len(), "released rules other stackhand allowlists still own");
        let orphans: Vec<String> = self
            .ingress_rules(group, owner)
            .await?
            .into_iter()
            .filter(|r| plan.release.contains(&r.id) && !r.owners.any())
            .map(|r| r.id)
            .collect();
        self.revoke(group, &orphans).await
    }

    async fn untag(&self, rule_ids: &[String], tags: Vec<Tag>) -> Result<Applied, AllowlistError> {
        let sent = self.ec2.delete_tags().set_resources(Some(rule_ids.to_vec())).set_tags(Some(tags)).send().await;
        match sent.op("DeleteTags") {
            Ok(_) => Ok(Applied::Done),
            Err(e) => conflict_or(e, RULE_GONE),
        }
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
            .await
            .op("RevokeSecurityGroupIngress");
        match sent {
            Ok(_) => {
                tracing::info!(%group, rules = rule_ids.len(), "revoked");
                Ok(Applied::Done)
            }
            Err(e) => match e.code() {
                // Someone (a duplicate delivery) removed some of them first: read again.
                Some("InvalidSecurityGroupRuleId.NotFound" | "InvalidPermission.NotFound") => {
                    Ok(Applied::Conflict(e.to_string()))
                }
                // The group is gone, and its rules with it.
                Some("InvalidGroup.NotFound") => Ok(Applied::Done),
                _ => Err(e.into()),
            },
        }
    }

    async fn reconcile(&self, owner: &str, props: &Properties) -> Result<Outcome, AllowlistError> {
        let group = props.security_group_id.0.as_str();
        let addresses = self.wait_for_addresses(props).await?;
        let want = desired(&addresses, &props.ports, props.protocol);
        let description = rule_description(props);
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let existing = self.ingress_rules(group, owner).await?;
            let plan = plan(&want, &existing, &description);
            if plan.is_empty() {
                tracing::info!(%group, rules = want.len(), "already in the wanted state");
            }
            if !plan.authorize.is_empty() {
                self.check_quota(group, &existing, &plan, &addresses, props.ports.len())?;
            }
            match self.apply(group, owner, &plan, props.protocol, &description).await? {
                Applied::Done => return Ok(outcome(&addresses, want.len())),
                Applied::Conflict(why) => last = why,
            }
        }
        Err(AllowlistError::Contended { group: group.to_owned(), last })
    }

    /// Before the first change: the rules there plus the rules to add must fit the quota, per family.
    fn check_quota(
        &self,
        group: &str,
        existing: &[ExistingRule],
        plan: &Plan,
        addresses: &[IpAddr],
        ranges: usize,
    ) -> Result<(), AllowlistError> {
        let quota = self.rules_per_group.clone().map_err(|value| AllowlistError::QuotaSetting { value })?;
        let Some(over) = over_quota(existing, plan, quota) else {
            return Ok(());
        };
        let family = if over.family == "IPv4" { Family::V4 } else { Family::V6 };
        Err(AllowlistError::OverQuota {
            group: group.to_owned(),
            family: over.family,
            existing: over.existing,
            adding: over.adding,
            total: over.existing + over.adding,
            addresses: addresses.iter().filter(|a| Family::of(**a) == family).count(),
            ranges,
            quota,
        })
    }

    /// Removes `owner` from the group's rules: Delete, a failed Create's undo, and a Delete whose
    /// properties no longer parse (the group comes from the physical id).
    async fn remove_owner(&self, group: &str, owner: &str) -> Result<(), AllowlistError> {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let existing = self.ingress_rules(group, owner).await?;
            let plan = plan(&BTreeSet::new(), &existing, "");
            if plan.is_empty() {
                tracing::info!(%group, "no rules of this resource remain");
                return Ok(());
            }
            match self.retire(group, owner, &plan).await? {
                Applied::Done => return Ok(()),
                Applied::Conflict(why) => last = why,
            }
        }
        Err(AllowlistError::Contended { group: group.to_owned(), last })
    }
}

/// One rule as the plan sees it: its shape, its quota family, and its stackhand owners.
fn existing_rule(r: &SecurityGroupRule, owner: &str, our_key: &str) -> ExistingRule {
    let mut owners = Owners::default();
    for tag in r.tags() {
        let (Some(key), value) = (tag.key(), tag.value()) else { continue };
        if key == our_key {
            owners.ours = true;
        } else if key == OWNER_TAG {
            if value == Some(owner) {
                owners.ours_legacy = true;
            } else {
                owners.others = true;
            }
        } else if key.strip_prefix(OWNER_TAG).is_some_and(|rest| rest.starts_with(':')) {
            owners.others = true;
        }
    }
    let protocol = r.ip_protocol().and_then(Protocol::from_ec2);
    let cidr = r.cidr_ipv4().or(r.cidr_ipv6()).and_then(HostCidr::parse);
    let ports = match (r.from_port(), r.to_port()) {
        (Some(from), Some(to)) => u16::try_from(from).ok().zip(u16::try_from(to).ok()),
        _ => None,
    };
    let key = match (protocol, cidr, ports) {
        (Some(protocol), Some(cidr), Some((from, to))) => {
            Some(RuleKey { protocol, cidr, ports: PortRange { from, to } })
        }
        _ => None,
    };
    let family = match (r.cidr_ipv4(), r.cidr_ipv6()) {
        (Some(_), _) => Family::V4,
        (None, Some(_)) => Family::V6,
        // A referenced security group or prefix list: counted in both.
        (None, None) => Family::Both,
    };
    ExistingRule {
        id: r.security_group_rule_id().unwrap_or_default().to_owned(),
        key,
        description: r.description().map(str::to_owned),
        owners,
        family,
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

/// The security group a physical id `nlb-ip-allowlist:<group>:<load balancer name>:<digest>` names.
fn group_of(physical_id: &str) -> Option<SecurityGroupId> {
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

    /// Create and Update both reconcile; ownership is in the tags, so the old properties are not
    /// needed to know what to revoke.
    async fn create(&self, _: &RequestInfo, physical_id: &str, props: &Properties) -> Result<Outcome, AllowlistError> {
        self.reconcile(physical_id, props).await
    }

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

/// Error paths moto cannot produce (races with a concurrent delivery or owner, a vanished group, a
/// denied call, a full group), with aws-smithy-mocks rules in front of a real SDK client.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::props::NlbArn;
    use aws_sdk_ec2::operation::authorize_security_group_ingress::{
        AuthorizeSecurityGroupIngressError, AuthorizeSecurityGroupIngressOutput,
    };
    use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
    use aws_sdk_ec2::operation::delete_tags::DeleteTagsOutput;
    use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
    use aws_sdk_ec2::operation::describe_security_group_rules::DescribeSecurityGroupRulesOutput;
    use aws_sdk_ec2::operation::revoke_security_group_ingress::{
        RevokeSecurityGroupIngressError, RevokeSecurityGroupIngressOutput,
    };
    use aws_sdk_ec2::types::{NetworkInterface, NetworkInterfacePrivateIpAddress};
    use aws_sdk_ec2::Client;
    use aws_smithy_mocks::{mock, Rule};
    use aws_smithy_types::error::ErrorMetadata;
    use serde_json::json;

    const GROUP: &str = "sg-0123456789abcdef0";
    const OWNER: &str = "nlb-ip-allowlist:sg-0123456789abcdef0:app:0011223344556677";
    const OLD_OWNER: &str = "nlb-ip-allowlist:sg-0123456789abcdef0:app:8899aabbccddeeff";

    fn client(rules: &[&Rule]) -> Client {
        testkit::mock_ec2(rules)
    }

    fn props_with(ports: &[&str]) -> Properties {
        Properties {
            load_balancer_arn:
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/app/0123456789abcdef"
                    .parse::<NlbArn>()
                    .unwrap(),
            security_group_id: GROUP.parse::<SecurityGroupId>().unwrap(),
            ports: ports.iter().map(|p| p.parse().unwrap()).collect(),
            protocol: Protocol::Tcp,
            rule_description: None,
        }
    }

    fn props() -> Properties {
        props_with(&["80"])
    }

    fn interfaces(addresses: &'static [&'static str]) -> Rule {
        mock!(Client::describe_network_interfaces).then_output(move || {
            let enis = addresses.iter().map(|ip| {
                NetworkInterface::builder()
                    .description("ELB net/app/0123456789abcdef")
                    .private_ip_addresses(NetworkInterfacePrivateIpAddress::builder().private_ip_address(*ip).build())
                    .build()
            });
            DescribeNetworkInterfacesOutput::builder().set_network_interfaces(Some(enis.collect())).build()
        })
    }

    fn one_interface() -> Rule {
        interfaces(&["10.0.0.5"])
    }

    /// A rule in GROUP: id, CIDR, port, tags.
    #[derive(Clone)]
    struct R(String, String, i32, Vec<(String, String)>);

    fn r(id: &str, cidr: &str, tags: &[(String, String)]) -> R {
        R(id.into(), cidr.into(), 80, tags.to_vec())
    }

    fn mine() -> (String, String) {
        (owner_key(OWNER), OWNER.into())
    }

    fn old_owner() -> (String, String) {
        (owner_key(OLD_OWNER), OLD_OWNER.into())
    }

    fn listed(rules: Vec<R>) -> Rule {
        mock!(Client::describe_security_group_rules)
            .match_requests(|r| r.filters().iter().any(|f| f.name() == Some("group-id") && f.values() == [GROUP]))
            .then_output(move || {
                let rules = rules.iter().map(|R(id, cidr, port, tags)| {
                    SecurityGroupRule::builder()
                        .security_group_rule_id(id)
                        .group_id(GROUP)
                        .is_egress(false)
                        .ip_protocol("tcp")
                        .from_port(*port)
                        .to_port(*port)
                        .cidr_ipv4(cidr)
                        .description("NLB app (stackhand nlb-ip-allowlist)")
                        .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
                        .build()
                });
                DescribeSecurityGroupRulesOutput::builder().set_security_group_rules(Some(rules.collect())).build()
            })
    }

    fn rules_output(owned: &[(&'static str, &'static str)]) -> Rule {
        listed(owned.iter().map(|(id, cidr)| r(id, cidr, &[mine()])).collect())
    }

    fn revoked(ids: &'static [&'static str]) -> Rule {
        mock!(Client::revoke_security_group_ingress)
            .match_requests(move |r| r.group_id() == Some(GROUP) && r.security_group_rule_ids() == ids)
            .then_output(|| RevokeSecurityGroupIngressOutput::builder().r#return(true).build())
    }

    fn authorized() -> Rule {
        mock!(Client::authorize_security_group_ingress)
            .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().r#return(true).build())
    }

    fn info() -> RequestInfo {
        RequestInfo {
            stack_id: "s".into(),
            request_id: "r".into(),
            logical_resource_id: "l".into(),
            resource_type: "Custom::NlbIpAllowlist".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:nlb-ip-allowlist".into(),
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(30),
        }
    }

    fn code(code: &'static str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(format!("{code} (mocked)")).build()
    }

    #[test]
    fn owner_keys_are_short_stable_and_per_physical_id() {
        let key = owner_key(OWNER);
        assert!(key.starts_with("stackhand:nlb-ip-allowlist:") && key.len() <= 128, "{key}");
        assert_eq!(key, owner_key(OWNER));
        assert_ne!(key, owner_key(OLD_OWNER));
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
        let revoked = revoked(&["sgr-2"]);
        let handler = Allowlist::new(client(&[&ours, &raced, &one_left, &revoked]));
        handler.delete(&info(), OWNER, &props()).await.unwrap();
        assert_eq!(revoked.num_calls(), 1, "only the rule still there was revoked the second time");
    }

    #[tokio::test]
    async fn authorize_sends_every_address_of_a_range_in_one_call_tagged_with_the_owner() {
        let interfaces = interfaces(&["10.0.0.5", "10.0.1.5", "10.0.2.5"]);
        let empty = rules_output(&[]);
        let authorize = mock!(Client::authorize_security_group_ingress)
            .match_requests(|r| {
                let p = &r.ip_permissions()[0];
                let tag = &r.tag_specifications()[0].tags()[0];
                let tagged = tag.key() == Some(owner_key(OWNER).as_str()) && tag.value() == Some(OWNER);
                r.ip_permissions().len() == 1 && p.ip_ranges().len() == 3 && p.from_port() == Some(80) && tagged
            })
            .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().r#return(true).build());
        let ec2 = client(&[&interfaces, &empty, &authorize]);
        let outcome = Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
        assert_eq!(authorize.num_calls(), 1);
        assert_eq!(outcome.data["PrivateIpAddresses"], "10.0.0.5,10.0.1.5,10.0.2.5");
    }

    /// Item 1: the identical rule of another allowlist (the same resource under its old physical id) is
    /// shared by adding this owner's tag, not skipped.
    #[tokio::test]
    async fn a_rule_another_allowlist_owns_is_shared_by_tagging_it() {
        let interfaces = one_interface();
        let theirs = listed(vec![r("sgr-old", "10.0.0.5/32", &[old_owner()])]);
        let claim = mock!(Client::create_tags)
            .match_requests(|r| {
                let tag = &r.tags()[0];
                r.resources() == ["sgr-old".to_string()]
                    && r.tags().len() == 1
                    && tag.key() == Some(owner_key(OWNER).as_str())
                    && tag.value() == Some(OWNER)
            })
            .then_output(|| CreateTagsOutput::builder().build());
        let ec2 = client(&[&interfaces, &theirs, &claim]);
        let outcome = Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
        assert_eq!(claim.num_calls(), 1);
        assert_eq!(outcome.data["RuleCount"], "1");
    }

    /// Item 1: a Delete removes only its own tag from a rule another allowlist still owns.
    #[tokio::test]
    async fn delete_keeps_a_rule_another_allowlist_still_owns() {
        let shared =
            listed(vec![r("sgr-1", "10.0.0.5/32", &[old_owner(), mine()]), r("sgr-2", "10.0.0.6/32", &[mine()])]);
        let sole = revoked(&["sgr-2"]);
        let release = mock!(Client::delete_tags)
            .match_requests(|r| {
                let keys: Vec<_> = r.tags().iter().map(|t| (t.key(), t.value())).collect();
                r.resources() == ["sgr-1".to_string()]
                    && keys == [(Some(owner_key(OWNER).as_str()), None), (Some(OWNER_TAG), Some(OWNER))]
            })
            .then_output(|| DeleteTagsOutput::builder().build());
        let after = listed(vec![r("sgr-1", "10.0.0.5/32", &[old_owner()])]);
        let handler = Allowlist::new(client(&[&shared, &sole, &release, &after]));
        handler.delete(&info(), OWNER, &props()).await.unwrap();
        assert_eq!((sole.num_calls(), release.num_calls(), after.num_calls()), (1, 1, 1));
    }

    /// Two owners deleting at once both see the other's tag and both only untag: the re-read after
    /// untagging finds no stackhand owner left and revokes.
    #[tokio::test]
    async fn a_rule_both_owners_released_at_once_is_revoked() {
        let shared = listed(vec![r("sgr-1", "10.0.0.5/32", &[old_owner(), mine()])]);
        let release = mock!(Client::delete_tags).then_output(|| DeleteTagsOutput::builder().build());
        let orphaned = listed(vec![r("sgr-1", "10.0.0.5/32", &[])]);
        let revoke = revoked(&["sgr-1"]);
        let handler = Allowlist::new(client(&[&shared, &release, &orphaned, &revoke]));
        handler.delete(&info(), OWNER, &props()).await.unwrap();
        assert_eq!(revoke.num_calls(), 1);
    }

    /// Rules tagged by earlier versions (`stackhand:nlb-ip-allowlist=<physical id>`) stay this
    /// resource's: Delete revokes them, an Update moves them to the new key.
    #[tokio::test]
    async fn rules_under_the_old_single_tag_are_still_ours() {
        let legacy = (OWNER_TAG.to_string(), OWNER.to_string());
        let old = listed(vec![r("sgr-1", "10.0.0.5/32", std::slice::from_ref(&legacy))]);
        let revoke = revoked(&["sgr-1"]);
        Allowlist::new(client(&[&old, &revoke])).delete(&info(), OWNER, &props()).await.unwrap();
        assert_eq!(revoke.num_calls(), 1);

        let interfaces = one_interface();
        let old = listed(vec![r("sgr-1", "10.0.0.5/32", &[legacy])]);
        let claim = mock!(Client::create_tags)
            .match_requests(|r| r.tags()[0].key() == Some(owner_key(OWNER).as_str()))
            .then_output(|| CreateTagsOutput::builder().build());
        let untag = mock!(Client::delete_tags)
            .match_requests(|r| {
                r.tags().len() == 1 && r.tags()[0].key() == Some(OWNER_TAG) && r.tags()[0].value() == Some(OWNER)
            })
            .then_output(|| DeleteTagsOutput::builder().build());
        let ec2 = client(&[&interfaces, &old, &claim, &untag]);
        Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
        assert_eq!((claim.num_calls(), untag.num_calls()), (1, 1));
    }

    /// A rule nobody from stackhand owns (made by hand) is neither duplicated nor claimed.
    #[tokio::test]
    async fn a_foreign_rule_is_left_alone() {
        let interfaces = one_interface();
        let foreign = listed(vec![r("sgr-manual", "10.0.0.5/32", &[("team".into(), "net".into())])]);
        let ec2 = client(&[&interfaces, &foreign]);
        let outcome = Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
        assert_eq!(outcome.data["RuleCount"], "1");
    }

    /// Item 2: too many rules for the group's quota fail before any change, naming the group, the
    /// counts and the fix.
    #[tokio::test]
    async fn a_group_without_room_fails_before_any_change() {
        let interfaces = interfaces(&["10.0.0.5", "10.0.1.5"]);
        let nearly_full = listed((0..55).map(|i| r(&format!("sgr-{i}"), &format!("192.0.2.{i}/32"), &[])).collect());
        let authorize = authorized();
        let ec2 = client(&[&interfaces, &nearly_full, &authorize]);
        let err = Allowlist::new(ec2).reconcile(OWNER, &props_with(&["80", "443", "8080"])).await.unwrap_err();
        assert_eq!(authorize.num_calls(), 0, "nothing was changed");
        let text = err.to_string();
        for part in [
            GROUP,
            "61 inbound IPv4 rules",
            "quota of 60",
            "55 there now + 6 new",
            "2 IPv4 addresses × 3 port ranges",
            "L-0EA8095F",
            QUOTA_ENV,
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
        // A raised quota, told through the environment: the same change fits.
        let interfaces = crate::allowlist::tests::interfaces(&["10.0.0.5", "10.0.1.5"]);
        let nearly_full = listed((0..55).map(|i| r(&format!("sgr-{i}"), &format!("192.0.2.{i}/32"), &[])).collect());
        let (a, b, c) = (authorized(), authorized(), authorized());
        let ec2 = client(&[&interfaces, &nearly_full, &a, &b, &c]);
        let handler = Allowlist::new(ec2).with_quota_setting(Some("100"));
        handler.reconcile(OWNER, &props_with(&["80", "443", "8080"])).await.unwrap();
        assert_eq!(a.num_calls() + b.num_calls() + c.num_calls(), 3);
    }

    #[tokio::test]
    async fn an_unreadable_quota_setting_fails_create_but_never_delete() {
        let handler = Allowlist::new(client(&[])).with_quota_setting(Some("sixty"));
        let interfaces = one_interface();
        let empty = listed(vec![]);
        let handler = Allowlist { ec2: client(&[&interfaces, &empty]), ..handler };
        let err = handler.reconcile(OWNER, &props()).await.unwrap_err();
        assert!(err.to_string().contains(&format!("{QUOTA_ENV} is \"sixty\"")), "{err}");
        let empty = listed(vec![]);
        let handler = Allowlist { ec2: client(&[&empty]), ..handler };
        handler.delete(&info(), OWNER, &props()).await.unwrap();
        assert_eq!(Allowlist::new(client(&[])).with_quota_setting(Some(" ")).rules_per_group, Ok(60));
        assert!(Allowlist::new(client(&[])).with_quota_setting(Some("0")).rules_per_group.is_err());
    }

    /// Item 2: a Create that fails after its first change (the second port range hits the quota, e.g.
    /// another writer filled the group meanwhile) is undone by its own Delete, which the runtime runs at
    /// once: nothing is left behind.
    #[tokio::test]
    async fn a_create_failing_midway_is_undone_by_its_delete() {
        let interfaces = one_interface();
        let empty = listed(vec![]);
        let first = mock!(Client::authorize_security_group_ingress)
            .match_requests(|r| r.ip_permissions()[0].from_port() == Some(80))
            .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().r#return(true).build());
        let full = mock!(Client::authorize_security_group_ingress)
            .then_error(|| AuthorizeSecurityGroupIngressError::generic(code("RulesPerSecurityGroupLimitExceeded")));
        let left = listed(vec![r("sgr-80", "10.0.0.5/32", &[mine()])]);
        let undo = revoked(&["sgr-80"]);
        let handler = Allowlist::new(client(&[&interfaces, &empty, &first, &full, &left, &undo]));
        let props = props_with(&["80", "443"]);
        let err = handler.create(&info(), OWNER, &props).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(GROUP) && text.contains("RulesPerSecurityGroupLimitExceeded"), "{text}");
        assert!(text.contains("L-0EA8095F"), "{text}");
        handler.delete(&info(), OWNER, &props).await.unwrap();
        assert_eq!((first.num_calls(), full.num_calls(), undo.num_calls()), (1, 1, 1));
    }

    /// Item 9: an NLB still provisioning has no interfaces yet: wait for them with a backoff.
    #[tokio::test(start_paused = true)]
    async fn interfaces_that_appear_later_are_waited_for() {
        let none = interfaces(&[]);
        let still_none = interfaces(&[]);
        let there = one_interface();
        let empty = listed(vec![]);
        let authorize = authorized();
        let handler = Allowlist::new(client(&[&none, &still_none, &there, &empty, &authorize]));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        let outcome = stackhand::aws::within(deadline, handler.reconcile(OWNER, &props())).await.unwrap();
        assert_eq!(outcome.data["PrivateIpAddresses"], "10.0.0.5");
        assert_eq!(started.elapsed().as_secs(), 2 + 4, "waited 2 s, then 4 s");
    }

    /// Item 9: the wait ends early enough to answer (and to undo) before the invocation's deadline.
    #[tokio::test(start_paused = true)]
    async fn the_wait_for_interfaces_stops_before_the_deadline() {
        let polls: Vec<Rule> = (0..20).map(|_| interfaces(&[])).collect();
        let handler = Allowlist::new(client(&polls.iter().collect::<Vec<_>>()));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(45);
        let err = stackhand::aws::within(deadline, handler.reconcile(OWNER, &props())).await.unwrap_err();
        let waited = started.elapsed();
        assert_eq!(waited, Duration::from_secs(45) - AFTER_WAIT, "polled until the margin, no longer");
        let text = err.to_string();
        assert!(text.contains("no network interfaces found") && text.contains("after waiting 35 s"), "{text}");
        // 2, 4, 8, 15, then the 6 s left to the margin.
        assert_eq!(polls.iter().map(Rule::num_calls).sum::<usize>(), 6);

        // Too near the deadline to wait at all: one look, then the error.
        let none = interfaces(&[]);
        let handler = Allowlist::new(client(&[&none]));
        let near = Instant::now() + AFTER_WAIT / 2;
        let err = stackhand::aws::within(near, handler.reconcile(OWNER, &props())).await.unwrap_err();
        assert!(matches!(err, AllowlistError::NoInterfaces { waited_s: 0, .. }), "{err}");
    }

    /// Item 10: a Delete whose properties no longer parse finds the group in the physical id and
    /// removes this owner's rules as a Delete does.
    #[tokio::test]
    async fn delete_with_unreadable_properties_cleans_up_by_the_physical_id() {
        let ours =
            listed(vec![r("sgr-1", "10.0.0.5/32", &[mine()]), r("sgr-2", "10.0.0.6/32", &[old_owner(), mine()])]);
        let revoke = revoked(&["sgr-1"]);
        let release = mock!(Client::delete_tags)
            .match_requests(|r| r.resources() == ["sgr-2".to_string()])
            .then_output(|| DeleteTagsOutput::builder().build());
        let after = listed(vec![r("sgr-2", "10.0.0.6/32", &[old_owner()])]);
        let handler = Allowlist::new(client(&[&ours, &revoke, &release, &after]));
        let unreadable = json!({"LoadBalancerArn": "arn:aws:elasticloadbalancing:gone", "Ports": {"From": 80}});
        handler.delete_unparsed(&info(), OWNER, &unreadable).await.unwrap();
        assert_eq!((ours.num_calls(), revoke.num_calls(), release.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn delete_with_unreadable_properties_and_a_foreign_id_changes_nothing() {
        let handler = Allowlist::new(client(&[]));
        handler.delete_unparsed(&info(), "some-other-id", &json!({"Ports": []})).await.unwrap();
        // A physical id of another shape, but the group still reads from the properties.
        let ours = listed(vec![]);
        let handler = Allowlist::new(client(&[&ours]));
        handler
            .delete_unparsed(&info(), "some-other-id", &json!({"SecurityGroupId": GROUP, "Ports": []}))
            .await
            .unwrap();
        assert_eq!(ours.num_calls(), 1);
    }

    #[test]
    fn the_group_is_read_from_the_physical_id() {
        assert_eq!(group_of(OWNER).unwrap().0, GROUP);
        assert_eq!(group_of("nlb-ip-allowlist:sg-01234567:app-nlb:0011223344556677").unwrap().0, "sg-01234567");
        assert!(group_of("nlb-ip-allowlist:sg-nope:app:00").is_none());
        assert!(group_of("nlb-ip-allowlist:sg-01234567:app").is_none());
        assert!(group_of("stackhand-failed-create:X:r").is_none());
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
