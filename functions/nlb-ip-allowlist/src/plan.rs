//! What to change in the security group, decided without AWS: the rules wanted (every address × every
//! port range), the rules there (ours are the ones tagged with our physical id), and the difference.

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

/// An ingress rule found in the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRule {
    pub id: String,
    /// `None` for rules of another shape (other protocol, a source group, a wider CIDR).
    pub key: Option<RuleKey>,
    pub description: Option<String>,
    /// Tagged with this resource's physical id.
    pub owned: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Addresses to allow, grouped by port range: one AuthorizeSecurityGroupIngress call each.
    pub authorize: BTreeMap<PortRange, Vec<HostCidr>>,
    /// Our rules no longer wanted.
    pub revoke: Vec<String>,
    /// Our wanted rules whose description changed.
    pub redescribe: Vec<(String, RuleKey)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.authorize.is_empty() && self.revoke.is_empty() && self.redescribe.is_empty()
    }
}

pub fn desired(addresses: &[IpAddr], ports: &[PortRange], protocol: Protocol) -> BTreeSet<RuleKey> {
    ports
        .iter()
        .flat_map(|&ports| addresses.iter().map(move |&a| RuleKey { protocol, ports, cidr: HostCidr(a) }))
        .collect()
}

/// The changes that take the group from `existing` to `desired`. A wanted rule already present under
/// another owner (or none) is left as it is and not claimed; only our own rules are ever revoked.
pub fn plan(desired: &BTreeSet<RuleKey>, existing: &[ExistingRule], description: &str) -> Plan {
    let mut plan = Plan::default();
    let present: BTreeMap<RuleKey, &ExistingRule> = existing
        .iter()
        .filter_map(|r| r.key.map(|k| (k, r)))
        // An owned copy wins over a foreign one when both somehow exist.
        .fold(BTreeMap::new(), |mut m, (k, r)| {
            let keep = m.get(&k).is_some_and(|e: &&ExistingRule| e.owned);
            if !keep {
                m.insert(k, r);
            }
            m
        });
    for key in desired {
        match present.get(key) {
            None => plan.authorize.entry(key.ports).or_default().push(key.cidr),
            Some(rule) if rule.owned && rule.description.as_deref() != Some(description) => {
                plan.redescribe.push((rule.id.clone(), *key));
            }
            Some(_) => {}
        }
    }
    for rule in existing.iter().filter(|r| r.owned) {
        if !rule.key.is_some_and(|k| desired.contains(&k)) {
            plan.revoke.push(rule.id.clone());
        }
    }
    plan
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
    fn rule(id: &str, k: RuleKey, owned: bool) -> ExistingRule {
        ExistingRule { id: id.into(), key: Some(k), description: Some("d".into()), owned }
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
            rule("sgr-keep", key("10.0.1.5", "80"), true),
            rule("sgr-drop", key("10.0.1.5", "8080"), true),
            rule("sgr-foreign", key("10.0.9.9", "22"), false),
        ];
        let p = plan(&want, &existing, "d");
        assert_eq!(p.authorize.keys().collect::<Vec<_>>(), vec![&range("443")]);
        assert_eq!(p.revoke, vec!["sgr-drop".to_string()]);
        assert!(p.redescribe.is_empty());
    }

    #[test]
    fn a_foreign_rule_that_matches_is_neither_duplicated_nor_claimed() {
        let want = desired(&[ip("10.0.1.5")], &[range("80")], Protocol::Tcp);
        let p = plan(&want, &[rule("sgr-theirs", key("10.0.1.5", "80"), false)], "d");
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn a_changed_description_is_applied_to_our_rules_only() {
        let want = desired(&[ip("10.0.1.5"), ip("10.0.1.6")], &[range("80")], Protocol::Tcp);
        let existing =
            [rule("sgr-ours", key("10.0.1.5", "80"), true), rule("sgr-theirs", key("10.0.1.6", "80"), false)];
        let p = plan(&want, &existing, "new words");
        assert_eq!(p.redescribe, vec![("sgr-ours".to_string(), key("10.0.1.5", "80"))]);
        assert!(p.authorize.is_empty());
    }

    #[test]
    fn the_protocol_is_part_of_the_rule() {
        let want = desired(&[ip("10.0.1.5")], &[range("53")], Protocol::Udp);
        let p = plan(&want, &[rule("sgr-tcp", key("10.0.1.5", "53"), true)], "d");
        assert_eq!(p.authorize.len(), 1);
        assert_eq!(p.revoke, vec!["sgr-tcp".to_string()]);
    }

    #[test]
    fn our_rules_of_another_shape_are_revoked() {
        let want = desired(&[ip("10.0.1.5")], &[range("80")], Protocol::Tcp);
        let odd = ExistingRule { id: "sgr-odd".into(), key: None, description: None, owned: true };
        assert_eq!(plan(&want, &[odd], "d").revoke, vec!["sgr-odd".to_string()]);
    }
}
