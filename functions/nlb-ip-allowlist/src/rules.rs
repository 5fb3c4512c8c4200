//! The security group's rules: read with their stackhand owners, and changed as a [`Plan`] says
//! (authorize and claim, re-describe, then revoke and release).

use std::net::IpAddr;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroupRule, SecurityGroupRuleRequest,
    SecurityGroupRuleUpdate, Tag, TagSpecification,
};
use stackhand::aws::{AwsError, AwsResultExt as _};

use crate::allowlist::{owner_key, Allowlist, OWNER_TAG, RULE_MARKER_TAG, RULE_MARKER_VALUE};
use crate::error::AllowlistError;
use crate::plan::{ExistingRule, Family, HostCidr, Owners, Plan, RuleKey};
use crate::props::{PortRange, Protocol};

/// The outcome of one pass of changes; `Conflict` means the group changed meanwhile: read it again.
pub(crate) enum Applied {
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

/// The marker tag every rule this function makes carries.
fn marker() -> Tag {
    Tag::builder().key(RULE_MARKER_TAG).value(RULE_MARKER_VALUE).build()
}

/// Tagging a rule a racing delivery (or a racing owner's Delete) just revoked.
const RULE_GONE: &[&str] = &["InvalidSecurityGroupRuleId.NotFound", "InvalidID"];

impl Allowlist {
    /// The group's ingress rules, with their stackhand owners as `owner` sees them.
    pub(crate) async fn ingress_rules(&self, group: &str, owner: &str) -> Result<Vec<ExistingRule>, AllowlistError> {
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
    pub(crate) async fn apply(
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
            .tags(marker())
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
            if let Applied::Conflict(why) =
                self.tag(&plan.claim, Tag::builder().key(owner_key(owner)).value(owner).build()).await?
            {
                return Ok(Applied::Conflict(why));
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
        if !plan.mark.is_empty() {
            // Rules of an earlier version, to be re-described: IAM requires the marker first.
            if let Applied::Conflict(why) = self.tag(&plan.mark, marker()).await? {
                return Ok(Applied::Conflict(why));
            }
            tracing::info!(%group, rules = plan.mark.len(), "marked rules of an earlier version");
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
    pub(crate) async fn retire(&self, group: &str, owner: &str, plan: &Plan) -> Result<Applied, AllowlistError> {
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

    async fn tag(&self, rule_ids: &[String], tag: Tag) -> Result<Applied, AllowlistError> {
        let sent = self.ec2.create_tags().set_resources(Some(rule_ids.to_vec())).tags(tag).send().await;
        match sent.op("CreateTags") {
            Ok(_) => Ok(Applied::Done),
            Err(e) => conflict_or(e, RULE_GONE),
        }
    }

    pub(crate) async fn untag(&self, rule_ids: &[String], tags: Vec<Tag>) -> Result<Applied, AllowlistError> {
        let sent = self.ec2.delete_tags().set_resources(Some(rule_ids.to_vec())).set_tags(Some(tags)).send().await;
        match sent.op("DeleteTags") {
            Ok(_) => Ok(Applied::Done),
            Err(e) => conflict_or(e, RULE_GONE),
        }
    }

    pub(crate) async fn revoke(&self, group: &str, rule_ids: &[String]) -> Result<Applied, AllowlistError> {
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
}

/// One rule as the plan sees it: its shape, its quota family, and its stackhand owners.
fn existing_rule(r: &SecurityGroupRule, owner: &str, our_key: &str) -> ExistingRule {
    let mut owners = Owners::default();
    let mut marked = false;
    for tag in r.tags() {
        let (Some(key), value) = (tag.key(), tag.value()) else { continue };
        if key == RULE_MARKER_TAG {
            marked = value == Some(RULE_MARKER_VALUE);
        } else if key == our_key {
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
        marked,
    }
}
