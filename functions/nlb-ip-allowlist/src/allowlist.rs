//! The allowlist: find the NLB's interfaces (waiting for a load balancer still provisioning), reconcile
//! /32 and /128 rules in the security group, and own the rules it added or shares with other stackhand
//! allowlists (each owner tags a rule with its own key). The EC2 work is in `interfaces` and `rules`,
//! the decisions in `plan`, CloudFormation's side in `resource`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use stackhand::cfn::{stable_digest, Outcome};

use crate::plan::{desired, over_quota, plan, ExistingRule, Family, Plan};
use crate::props::Properties;
use crate::rules::Applied;

pub use crate::error::AllowlistError;
pub use crate::settings::{DEFAULT_GROUP_TAG_VALUE, DEFAULT_RULES_PER_GROUP, GROUP_TAG_ENV, GROUP_TAG_KEY, QUOTA_ENV};

/// The tag key of earlier versions (one key, valued with the owner's physical id), and the prefix of
/// every owner key now: `stackhand:nlb-ip-allowlist:<digest of the physical id>`.
pub const OWNER_TAG: &str = "stackhand:nlb-ip-allowlist";

/// The marker every rule this function creates carries (beside its owner key): IAM lets
/// ModifySecurityGroupRules change only rules carrying it (`aws:ResourceTag`).
pub const RULE_MARKER_TAG: &str = "stackhand:nlb-ip-allowlist-rule";
pub const RULE_MARKER_VALUE: &str = "true";

/// How often to re-read the group when it changed under us (a duplicate delivery racing this one).
const ATTEMPTS: usize = 3;

/// The tag key by which `physical_id` owns a rule: short (tag keys are at most 128 characters) and the
/// same for the same physical id; its value is the physical id itself, for people reading the tags.
pub fn owner_key(physical_id: &str) -> String {
    format!("{OWNER_TAG}:{}", stable_digest(&[physical_id]))
}

pub struct Allowlist {
    pub(crate) ec2: aws_sdk_ec2::Client,
    /// The rules-per-group quota, or the unreadable setting (reported by the Create or Update that
    /// needs it, so a Delete never fails over it).
    pub(crate) rules_per_group: Result<usize, String>,
    /// The value of [`GROUP_TAG_KEY`] a group must carry for rules to be added or changed in it.
    pub(crate) group_tag_value: String,
}

impl Allowlist {
    pub fn new(ec2: aws_sdk_ec2::Client) -> Self {
        Self { ec2, rules_per_group: Ok(DEFAULT_RULES_PER_GROUP), group_tag_value: DEFAULT_GROUP_TAG_VALUE.to_owned() }
    }

    /// With the quota from `setting` ([`QUOTA_ENV`]'s value): unset or blank means AWS's default.
    pub fn with_quota_setting(mut self, setting: Option<&str>) -> Self {
        self.rules_per_group = crate::settings::rules_per_group(setting);
        self
    }

    /// With the group opt-in value from `setting` ([`GROUP_TAG_ENV`]'s value): unset or blank means
    /// [`DEFAULT_GROUP_TAG_VALUE`].
    pub fn with_group_tag_setting(mut self, setting: Option<&str>) -> Self {
        self.group_tag_value = crate::settings::group_tag_value(setting);
        self
    }

    pub(crate) async fn reconcile(&self, owner: &str, props: &Properties) -> Result<Outcome, AllowlistError> {
        let group = props.security_group_id.0.as_str();
        let vpc = self.opted_in_group(group).await?;
        let found = self.wait_for_addresses(props, &vpc).await?;
        let addresses = found.addresses;
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
                Applied::Done => return Ok(outcome(&addresses, want.len(), found.ignored.len())),
                Applied::Conflict(why) => last = why,
            }
        }
        Err(AllowlistError::Contended { group: group.to_owned(), last })
    }

    /// Before the first change: the rules there plus the rules to add must fit the quota, per family.
    pub(crate) fn check_quota(
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
    pub(crate) async fn remove_owner(&self, group: &str, owner: &str) -> Result<(), AllowlistError> {
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

fn rule_description(props: &Properties) -> String {
    match &props.rule_description {
        Some(d) => d.0.clone(),
        None => format!("NLB {} (stackhand nlb-ip-allowlist)", props.load_balancer_arn.name),
    }
}

/// `PrivateIpAddresses`: IPv4 in numeric order, then IPv6; `RuleCount`: addresses × port ranges;
/// `IgnoredInterfaceCount`: interfaces with the load balancer's description that did not count (a
/// count, not their ids: anyone may create such interfaces, and ids could fill the 4096-byte answer).
fn outcome(addresses: &[IpAddr], rule_count: usize, ignored: usize) -> Outcome {
    let listed = addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",");
    Outcome::default()
        .with("PrivateIpAddresses", listed)
        .with("RuleCount", rule_count)
        .with("IgnoredInterfaceCount", ignored)
}

/// Error paths moto cannot produce (races with a concurrent delivery or owner, a vanished group, a
/// denied call, a full group), with aws-smithy-mocks rules in front of a real SDK client.
#[cfg(test)]
mod tests;
