//! `Custom::NlbIpAllowlist` properties, validated before any AWS call.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use stackhand::props;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Properties {
    #[serde(rename = "LoadBalancerArn", deserialize_with = "props::parsed")]
    pub load_balancer_arn: NlbArn,
    #[serde(deserialize_with = "props::parsed")]
    pub security_group_id: SecurityGroupId,
    #[serde(deserialize_with = "ports")]
    pub ports: Vec<PortRange>,
    #[serde(default, deserialize_with = "props::parsed")]
    pub protocol: Protocol,
    #[serde(default, deserialize_with = "optional_description")]
    pub rule_description: Option<RuleDescription>,
}

/// At least one port or range; duplicates folded, sorted.
fn ports<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<PortRange>, D::Error> {
    let mut ports: Vec<PortRange> = props::list(deserializer)?;
    if ports.is_empty() {
        return Err(serde::de::Error::custom("needs at least one port or range, e.g. [\"9090\", \"8000-8100\"]"));
    }
    ports.sort();
    ports.dedup();
    Ok(ports)
}

fn optional_description<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<RuleDescription>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    text.filter(|t| !t.trim().is_empty()).map(|t| t.parse().map_err(serde::de::Error::custom)).transpose()
}

/// `arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/net/<name>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlbArn {
    pub arn: String,
    pub region: String,
    pub account: String,
    pub name: String,
    pub id: String,
}

impl NlbArn {
    /// The description AWS gives each of the load balancer's network interfaces.
    pub fn interface_description(&self) -> String {
        format!("ELB net/{}/{}", self.name, self.id)
    }
}

impl FromStr for NlbArn {
    type Err = String;
    fn from_str(arn: &str) -> Result<Self, String> {
        let expected = "expected arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/net/<name>/<id>";
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(format!("{arn:?} is not an ARN; {expected}"));
        };
        if prefix != "arn" || !partition.starts_with("aws") {
            return Err(format!("{arn:?} is not an ARN; {expected}"));
        }
        if service != "elasticloadbalancing" {
            return Err(format!("{arn:?} is a {service} ARN, not a load balancer's; {expected}"));
        }
        if region.is_empty() || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{arn:?} lacks a Region or a 12-digit account; {expected}"));
        }
        let Some(rest) = resource.strip_prefix("loadbalancer/") else {
            return Err(format!("{arn:?} is not a load balancer ARN (a target group or listener?); {expected}"));
        };
        let mut segments = rest.split('/');
        let kind = segments.next().unwrap_or_default();
        match kind {
            "net" => {}
            "app" => {
                return Err(format!(
                    "{arn:?} is an Application Load Balancer; only a Network Load Balancer (loadbalancer/net/…) \
                     sends from its own private addresses"
                ))
            }
            "gwy" => return Err(format!("{arn:?} is a Gateway Load Balancer, not a Network Load Balancer")),
            _ => return Err(format!("{arn:?} is not a Network Load Balancer ARN; {expected}")),
        }
        let (Some(name), Some(id), None) = (segments.next(), segments.next(), segments.next()) else {
            return Err(format!("{arn:?} is malformed; {expected}"));
        };
        let name_ok = (1..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !name_ok {
            return Err(format!("{arn:?} has an invalid load balancer name {name:?} (1-32 letters, digits, hyphens)"));
        }
        if !(8..=32).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{arn:?} has an invalid load balancer id {id:?} (hexadecimal)"));
        }
        Ok(Self {
            arn: arn.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            name: name.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// `sg-` and 8 or 17 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroupId(pub String);

impl FromStr for SecurityGroupId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if props::is_ec2_id(s, "sg-") {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("{s:?} is not a security group id (sg- and 8 or 17 lowercase hexadecimal digits)"))
        }
    }
}

impl fmt::Display for SecurityGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One port (`9090`) or an inclusive range (`8000-8100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    pub from: u16,
    pub to: u16,
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let port = |p: &str| {
            p.trim().parse::<u16>().map_err(|_| "not a port (0-65535) or a range such as \"8000-8100\"".to_owned())
        };
        let range = match s.split_once('-') {
            Some((from, to)) => Self { from: port(from)?, to: port(to)? },
            None => {
                let p = port(s)?;
                Self { from: p, to: p }
            }
        };
        if range.from > range.to {
            return Err("a range whose start is above its end".to_owned());
        }
        Ok(range)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    /// The name EC2 uses in `IpProtocol`.
    pub fn as_ec2(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }

    /// Reads EC2's `IpProtocol` (`tcp`, `6`, …); other protocols are not this function's.
    pub fn from_ec2(s: &str) -> Option<Self> {
        match s {
            "tcp" | "6" => Some(Self::Tcp),
            "udp" | "17" => Some(Self::Udp),
            _ => None,
        }
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::from_ec2(&s.to_ascii_lowercase())
            .ok_or_else(|| format!("{s:?} is not a protocol this allows; use tcp or udp"))
    }
}

/// A security group rule description: at most 255 characters of the set EC2 accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDescription(pub String);

impl FromStr for RuleDescription {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.chars().count() > 255 {
            return Err("is longer than the 255 characters EC2 allows".into());
        }
        if let Some(bad) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(*c))) {
            return Err(format!(
                "contains {bad:?}, which EC2 does not accept; use letters, digits, spaces and ._-:/()#,@[]+=&;{{}}!$*"
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/app-nlb/50dc6c495c0c9188";

    fn parse(v: serde_json::Value) -> Result<Properties, stackhand::props::PropertyError> {
        stackhand::props::parse(&v)
    }

    #[test]
    fn cloudformation_shaped_properties_parse() {
        let p = parse(json!({
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "LoadBalancerArn": ARN, "SecurityGroupId": "sg-0123456789abcdef0",
            "Ports": ["9090", "8000-8100", "9090"], "Protocol": "TCP"
        }))
        .unwrap();
        assert_eq!(p.load_balancer_arn.interface_description(), "ELB net/app-nlb/50dc6c495c0c9188");
        assert_eq!(p.ports, vec![PortRange { from: 8000, to: 8100 }, PortRange { from: 9090, to: 9090 }]);
        assert_eq!(p.protocol, Protocol::Tcp);
        assert_eq!(p.rule_description, None);
        let p =
            parse(json!({"LoadBalancerArn": ARN, "SecurityGroupId": "sg-01234567", "Ports": 53, "Protocol": "udp"}))
                .unwrap();
        assert_eq!(p.ports, vec![PortRange { from: 53, to: 53 }]);
        assert_eq!(p.protocol, Protocol::Udp);
    }

    #[test]
    fn every_bad_property_is_named_with_the_fix() {
        let base = json!({"LoadBalancerArn": ARN, "SecurityGroupId": "sg-01234567", "Ports": ["80"]});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            parse(b).unwrap_err()
        };
        let alb = ARN.replace("/net/", "/app/");
        let e = with("LoadBalancerArn", json!(alb));
        assert_eq!(e.path, "LoadBalancerArn");
        assert!(e.message.contains("Application Load Balancer"), "{e}");
        let e = with("LoadBalancerArn", json!("arn:aws:ec2:us-east-1:123456789012:instance/i-1"));
        assert!(e.message.contains("not a load balancer's"), "{e}");
        let e = with("LoadBalancerArn", json!("app-nlb"));
        assert!(e.message.contains("is not an ARN"), "{e}");
        let e = with("LoadBalancerArn", json!(format!("{ARN}/extra")));
        assert!(e.message.contains("malformed"), "{e}");
        let e = with("SecurityGroupId", json!("sg-XYZ"));
        assert_eq!(e.path, "SecurityGroupId");
        assert!(e.message.contains("8 or 17"), "{e}");
        let e = with("Ports", json!(["80", "70000"]));
        assert_eq!(e.path, "Ports");
        assert!(e.message.contains("\"70000\""), "{e}");
        let e = with("Ports", json!(["9000-8000"]));
        assert!(e.message.contains("start is above its end"), "{e}");
        let e = with("Ports", json!([]));
        assert!(e.message.contains("at least one"), "{e}");
        let e = with("Ports", json!({"From": 1}));
        assert_eq!(e.path, "Ports");
        let e = with("Protocol", json!("icmp"));
        assert!(e.message.contains("tcp or udp"), "{e}");
        let e = with("RuleDescription", json!("tab\there"));
        assert_eq!(e.path, "RuleDescription");
        let e = with("RuleDescription", json!("x".repeat(256)));
        assert!(e.message.contains("255"), "{e}");
        let e = with("SecurityGroupIds", json!(["sg-01234567"]));
        assert!(e.message.contains("unknown field `SecurityGroupIds`"), "{e}");
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove("Ports");
        assert_eq!(parse(b).unwrap_err().to_string(), "invalid property Ports: is required but missing");
    }

    #[test]
    fn port_ranges_print_as_written() {
        assert_eq!("8000-8100".parse::<PortRange>().unwrap().to_string(), "8000-8100");
        assert_eq!(" 443 ".parse::<PortRange>().unwrap().to_string(), "443");
    }
}
