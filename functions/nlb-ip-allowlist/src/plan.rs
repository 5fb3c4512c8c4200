//! What to change in the security group, decided without AWS: the rules wanted (every address × every
//! port range), the rules there (each with the stackhand resources that own it, by tag), the
//! difference, and whether the group's rules-per-group quota leaves room for it.
//!
//! Several resources may own one rule (a renamed logical id, a resource moved to another stack: the
//! new physical id's Create runs before the old one's Delete, and both want the same /32 rule). Each
//! owner tags the rule with its own key; a Delete removes its key and revokes the rule only when no
//! stackhand owner is left. A rule no stackhand resource owns (made by hand, by another tool) is never
//! claimed: claiming it would let our Delete revoke it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use crate::props::{PortRange, Protocol};

/// A single-address CIDR: `/32` for IPv4, `/128` for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostCidr(pub IpAddr);

impl HostCidr {
    /// Reads EC2's `CidrIpv4`/`CidrIpv6`; only host routes are ever ours.
    pub fn parse(cidr: &str) -> Option<Self> {
        let (addr, len) = cidr.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let host_len = if addr.is_ipv4() { "32" } else { "128" };
        (len == host_len).then_some(Self(addr))
    }
}

impl fmt::Display for HostCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}/32"),
            IpAddr::V6(a) => write!(f, "{a}/128"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleKey {
    pub protocol: Protocol,
    pub ports: PortRange,
    pub cidr: HostCidr,
}

/// Which stackhand resources own a rule, from its tags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owners {
    /// Tagged with this resource's own key.
    pub ours: bool,
    /// Tagged with the single key of earlier versions, valued with this resource's physical id.
    pub ours_legacy: bool,
    /// Tagged by another stackhand resource (its own key, or the old key with another physical id).
    pub others: bool,
}

impl Owners {
    pub fn is_ours(self) -> bool {
        self.ours || self.ours_legacy
    }

    /// Owned by some stackhand resource, this one or another.
    pub fn any(self) -> bool {
        self.is_ours() || self.others
    }
}

/// Which rules-per-group quota a rule counts against (the quota is enforced separately for IPv4 and
/// IPv6 rules; a rule referencing a security group or a prefix list counts against both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
    Both,
}

impl Family {
    pub fn of(addr: IpAddr) -> Self {
        if addr.is_ipv4() {
            Self::V4
        } else {
            Self::V6
        }
    }
}

/// An ingress rule found in the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRule {
    pub id: String,
    /// `None` for rules of another shape (other protocol, a source group, a wider CIDR).
    pub key: Option<RuleKey>,
    pub description: Option<String>,
    pub owners: Owners,
    pub family: Family,
    /// Carries this function's marker tag, which IAM requires of a rule whose description changes.
    pub marked: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Addresses to allow, grouped by port range: one AuthorizeSecurityGroupIngress call each.
    pub authorize: BTreeMap<PortRange, Vec<HostCidr>>,
    /// Wanted rules another stackhand resource owns (or this one under the old tag key): add our tag.
    pub claim: Vec<String>,
    /// Wanted rules we alone own whose description changed.
    pub redescribe: Vec<(String, RuleKey)>,
    /// Our rules no longer wanted that no other stackhand resource owns.
    pub revoke: Vec<String>,
    /// Our rules no longer wanted that another stackhand resource still owns: remove our tags only.
    pub release: Vec<String>,
    /// Wanted rules still carrying the old single tag with our physical id: drop it once claimed.
    pub migrate: Vec<String>,
    /// Rules to re-describe that lack the function's marker tag (made by an earlier version): add it
    /// first.
    pub mark: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.authorize.is_empty()
            && self.claim.is_empty()
            && self.redescribe.is_empty()
            && self.revoke.is_empty()
            && self.release.is_empty()
            && self.migrate.is_empty()
            && self.mark.is_empty()
    }
}

pub fn desired(addresses: &[IpAddr], ports: &[PortRange], protocol: Protocol) -> BTreeSet<RuleKey> {
    ports
        .iter()
        .flat_map(|&ports| addresses.iter().map(move |&a| RuleKey { protocol, ports, cidr: HostCidr(a) }))
        .collect()
}

/// The changes that take the group from `existing` to `desired`. A wanted rule already present is
/// never duplicated: if a stackhand resource owns it, it is shared (claimed); if none does, it is left
/// as it is and not claimed. Our unwanted rules are revoked when we are their only owner, released
/// otherwise. Delete is the plan for nothing wanted.
pub fn plan(desired: &BTreeSet<RuleKey>, existing: &[ExistingRule], description: &str) -> Plan {
    let mut plan = Plan::default();
    // EC2 refuses a second identical rule in a group; should two ever be listed, ours wins, then one
    // some stackhand resource owns.
    let rank = |r: &ExistingRule| (r.owners.is_ours(), r.owners.others);
    let mut present: BTreeMap<RuleKey, &ExistingRule> = BTreeMap::new();
    for rule in existing {
        if let Some(key) = rule.key {
            if present.get(&key).is_none_or(|kept| rank(rule) > rank(kept)) {
                present.insert(key, rule);
            }
        }
    }
    let mut kept = BTreeSet::new();
    for key in desired {
        let Some(rule) = present.get(key) else {
            plan.authorize.entry(key.ports).or_default().push(key.cidr);
            continue;
        };
        let owners = rule.owners;
        if !owners.any() {
            // Someone else's rule (made by hand, by another tool): it already allows the address.
            continue;
        }
        kept.insert(rule.id.as_str());
        if !owners.ours {
            plan.claim.push(rule.id.clone());
        }
        if owners.ours_legacy {
            plan.migrate.push(rule.id.clone());
        }
        // A shared rule keeps the words it has: two owners with different descriptions would otherwise
        // rewrite it on every update.
        if !owners.others && rule.description.as_deref() != Some(description) {
            plan.redescribe.push((rule.id.clone(), *key));
            if !rule.marked {
                plan.mark.push(rule.id.clone());
            }
        }
    }
    for rule in existing.iter().filter(|r| r.owners.is_ours() && !kept.contains(r.id.as_str())) {
        if rule.owners.others {
            plan.release.push(rule.id.clone());
        } else {
            plan.revoke.push(rule.id.clone());
        }
    }
    plan
}

/// The group would exceed its rules-per-group quota in one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverQuota {
    /// "IPv4" or "IPv6".
    pub family: &'static str,
    /// Inbound rules of that family in the group now.
    pub existing: usize,
    /// New rules of that family the plan adds.
    pub adding: usize,
}

/// Checks that the group's inbound rules plus the ones `plan` adds fit `quota` per family. New rules are
/// added before unwanted ones are revoked (staying addresses never lose access), so revokes do not
/// make room. A rule referencing a security group or a prefix list counts once in each family (a
/// prefix list really counts as its maximum size, which only DescribeManagedPrefixLists tells: the
/// count is then a lower bound, and AWS's own `RulesPerSecurityGroupLimitExceeded` still names it).
pub fn over_quota(existing: &[ExistingRule], plan: &Plan, quota: usize) -> Option<OverQuota> {
    let count = |family: Family| {
        let there = existing.iter().filter(|r| r.family == family || r.family == Family::Both).count();
        let adding = plan.authorize.values().flatten().filter(|c| Family::of(c.0) == family).count();
        (there, adding)
    };
    [(Family::V4, "IPv4"), (Family::V6, "IPv6")].into_iter().find_map(|(family, name)| {
        let (existing, adding) = count(family);
        (adding > 0 && existing + adding > quota).then_some(OverQuota { family: name, existing, adding })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn range(s: &str) -> PortRange {
        s.parse().unwrap()
    }
    fn key(addr: &str, ports: &str) -> RuleKey {
        RuleKey { protocol: Protocol::Tcp, ports: range(ports), cidr: HostCidr(ip(addr)) }
    }
    const OURS: Owners = Owners { ours: true, ours_legacy: false, others: false };
    const LEGACY: Owners = Owners { ours: false, ours_legacy: true, others: false };
    const OTHER: Owners = Owners { ours: false, ours_legacy: false, others: true };
    const SHARED: Owners = Owners { ours: true, ours_legacy: false, others: true };
    const NOBODY: Owners = Owners { ours: false, ours_legacy: false, others: false };

    fn rule(id: &str, k: RuleKey, owners: Owners) -> ExistingRule {
        ExistingRule {
            id: id.into(),
            key: Some(k),
            description: Some("d".into()),
            owners,
            family: Family::of(k.cidr.0),
            marked: true,
        }
    }

    #[test]
    fn host_cidrs_round_trip_and_wider_ones_are_not_ours() {
        assert_eq!(HostCidr::parse("10.0.1.5/32").unwrap().to_string(), "10.0.1.5/32");
        assert_eq!(HostCidr::parse("2600:1f18:0:0::5/128").unwrap().to_string(), "2600:1f18::5/128");
        assert_eq!(HostCidr::parse("10.0.0.0/16"), None);
        assert_eq!(HostCidr::parse("::/0"), None);
        assert_eq!(HostCidr::parse("garbage"), None);
    }

    #[test]
    fn an_empty_group_gets_one_call_per_port_range_with_every_address() {
        let want = desired(
            &[ip("10.0.1.5"), ip("10.0.2.5"), ip("2600::5")],
            &[range("80"), range("8000-8100")],
            Protocol::Tcp,
        );
        let p = plan(&want, &[], "d");
        assert_eq!(p.authorize.len(), 2);
        assert_eq!(p.authorize[&range("80")].len(), 3);
        assert_eq!(p.authorize[&range("8000-8100")].len(), 3);
        assert!(p.revoke.is_empty());
    }

    #[test]
    fn present_rules_are_kept_and_unwanted_owned_ones_revoked() {
        let want = desired(&[ip("10.0.1.5")], &[range("80"), range("443")], Protocol::Tcp);
        let existing = [
            rule("sgr-keep", key("10.0.1.5", "80"), OURS),
            rule("sgr-drop", key("10.0.1.5", "8080"), OURS),
            rule("sgr-foreign", key("10.0.9.9", "22"), NOBODY),
            rule("sgr-another", key("10.0.9.9", "23"), OTHER),
        ];
        let p = plan(&want, &existing, "d");
        assert_eq!(p.authorize.keys().collect::<Vec<_>>(), vec![&range("443")]);
        assert_eq!(p.revoke, vec!["sgr-drop".to_string()]);
        assert!(p.redescribe.is_empty() && p.claim.is_empty() && p.release.is_empty());
    }

    #[test]
    fn a_foreign_rule_that_matches_is_neither_duplicated_nor_claimed() {
        let want = desired(&[ip("10.0.1.5")], &[range("80")], Protocol::Tcp);
        let p = plan(&want, &[rule("sgr-theirs", key("10.0.1.5", "80"), NOBODY)], "d");
        assert!(p.is_empty(), "{p:?}");
    }

    /// Issue 12 item 1: a new physical id (renamed logical id, moved resource) wants the rules the old
    /// one owns; it must share them, or the old resource's Delete takes the NLB's access away.
    #[test]
    fn a_rule_another_stackhand_resource_owns_is_claimed_not_skipped() {
        let want = desired(&[ip("10.0.1.5"), ip("10.0.1.6")], &[range("80")], Protocol::Tcp);
        let existing = [
            rule("sgr-old-owner", key("10.0.1.5", "80"), OTHER),
            rule("sgr-already-shared", key("10.0.1.6", "80"), SHARED),
        ];
        let p = plan(&want, &existing, "new words");
        assert_eq!(p.claim, vec!["sgr-old-owner".to_string()]);
        assert!(p.authorize.is_empty() && p.revoke.is_empty() && p.release.is_empty());
        assert!(p.redescribe.is_empty(), "a shared rule keeps its description: {p:?}");
    }

    #[test]
    fn an_unwanted_shared_rule_is_released_and_a_sole_one_revoked() {
        let existing = [
            rule("sgr-shared", key("10.0.1.5", "80"), SHARED),
            rule("sgr-sole", key("10.0.1.6", "80"), OURS),
            rule("sgr-theirs", key("10.0.1.7", "80"), OTHER),
            rule("sgr-legacy-shared", key("10.0.1.8", "80"), Owners { ours_legacy: true, ..OTHER }),
        ];
        // Delete: nothing wanted.
        let p = plan(&BTreeSet::new(), &existing, "d");
        assert_eq!(p.release, vec!["sgr-shared".to_string(), "sgr-legacy-shared".to_string()]);
        assert_eq!(p.revoke, vec!["sgr-sole".to_string()]);
        assert!(p.authorize.is_empty() && p.claim.is_empty());
    }

    #[test]
    fn rules_under_the_old_single_tag_stay_ours_and_move_to_the_new_key() {
        let want = desired(&[ip("10.0.1.5")], &[range("80")], Protocol::Tcp);
        let existing =
            [rule("sgr-legacy", key("10.0.1.5", "80"), LEGACY), rule("sgr-legacy-old", key("10.0.1.5", "81"), LEGACY)];
        let p = plan(&want, &existing, "d");
        assert!(p.authorize.is_empty(), "not duplicated: {p:?}");
        assert_eq!(p.claim, vec!["sgr-legacy".to_string()]);
        assert_eq!(p.migrate, vec!["sgr-legacy".to_string()]);
        assert_eq!(p.revoke, vec!["sgr-legacy-old".to_string()]);
    }

    #[test]
    fn a_changed_description_is_applied_to_our_rules_only() {
        let want = desired(&[ip("10.0.1.5"), ip("10.0.1.6")], &[range("80")], Protocol::Tcp);
        let existing =
            [rule("sgr-ours", key("10.0.1.5", "80"), OURS), rule("sgr-theirs", key("10.0.1.6", "80"), NOBODY)];
        let p = plan(&want, &existing, "new words");
        assert_eq!(p.redescribe, vec![("sgr-ours".to_string(), key("10.0.1.5", "80"))]);
        assert!(p.authorize.is_empty());
    }

    /// IAM lets ModifySecurityGroupRules change only rules carrying the marker: a rule of an earlier
    /// version (no marker) gets it before its description changes; a marked one needs nothing more.
    #[test]
    fn a_rule_to_redescribe_without_the_marker_is_marked_first() {
        let want = desired(&[ip("10.0.1.5"), ip("10.0.1.6")], &[range("80")], Protocol::Tcp);
        let old = ExistingRule { marked: false, ..rule("sgr-old", key("10.0.1.5", "80"), LEGACY) };
        let existing = [old, rule("sgr-new", key("10.0.1.6", "80"), OURS)];
        let p = plan(&want, &existing, "new words");
        assert_eq!(p.redescribe.len(), 2);
        assert_eq!(p.mark, vec!["sgr-old".to_string()]);
        assert!(plan(&want, &existing, "d").mark.is_empty(), "nothing to re-describe, nothing to mark");
    }

    #[test]
    fn the_protocol_is_part_of_the_rule() {
        let want = desired(&[ip("10.0.1.5")], &[range("53")], Protocol::Udp);
        let p = plan(&want, &[rule("sgr-tcp", key("10.0.1.5", "53"), OURS)], "d");
        assert_eq!(p.authorize.len(), 1);
        assert_eq!(p.revoke, vec!["sgr-tcp".to_string()]);
    }

    #[test]
    fn our_rules_of_another_shape_are_revoked() {
        let want = desired(&[ip("10.0.1.5")], &[range("80")], Protocol::Tcp);
        let odd = ExistingRule {
            id: "sgr-odd".into(),
            key: None,
            description: None,
            owners: OURS,
            family: Family::V4,
            marked: true,
        };
        assert_eq!(plan(&want, &[odd], "d").revoke, vec!["sgr-odd".to_string()]);
    }

    /// Issue 12 item 2: addresses × port ranges are checked against the quota, per family, before any
    /// change.
    #[test]
    fn the_quota_counts_existing_and_new_rules_per_family() {
        let addresses = [ip("10.0.1.5"), ip("10.0.2.5"), ip("10.0.3.5"), ip("2600::5")];
        let want = desired(&addresses, &[range("80"), range("443")], Protocol::Tcp);
        let p = plan(&want, &[], "d");
        assert_eq!(over_quota(&[], &p, 6), None, "6 IPv4 and 2 IPv6 rules fit 6 per family");
        assert_eq!(over_quota(&[], &p, 5), Some(OverQuota { family: "IPv4", existing: 0, adding: 6 }));
        let sg_reference = ExistingRule {
            id: "sgr-sg".into(),
            key: None,
            description: None,
            owners: NOBODY,
            family: Family::Both,
            marked: false,
        };
        let v6 = rule("sgr-v6", key("2600::9", "22"), NOBODY);
        let existing = [sg_reference, v6];
        assert_eq!(over_quota(&existing, &p, 6), Some(OverQuota { family: "IPv4", existing: 1, adding: 6 }));
        assert_eq!(over_quota(&existing, &p, 7), None);
        assert_eq!(over_quota(&existing, &plan(&want, &[], "d"), 3).unwrap().family, "IPv4");
        let only_v6 = plan(&desired(&[ip("2600::5")], &[range("80"), range("443")], Protocol::Tcp), &[], "d");
        assert_eq!(over_quota(&existing, &only_v6, 3), Some(OverQuota { family: "IPv6", existing: 2, adding: 2 }));
        // Nothing to add: never over, however full the group already is.
        let full: Vec<_> =
            (0..10).map(|i| rule(&format!("sgr-{i}"), key(&format!("10.9.0.{i}"), "22"), NOBODY)).collect();
        assert_eq!(over_quota(&full, &Plan::default(), 5), None);
    }
}
