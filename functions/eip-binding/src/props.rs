//! `Custom::EipBinding` properties: one target, one source, validated before any AWS call.

use std::net::Ipv4Addr;

use serde::Deserialize;
use stackhand::props;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    pub target: Target,
    pub source: Source,
    pub allow_reassociation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Resolved to the instance's primary network interface (device index 0).
    Instance(String),
    Interface {
        id: String,
        private_ip: Option<Ipv4Addr>,
    },
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Self::Instance(id) => id.clone(),
            Self::Interface { id, private_ip: Some(ip) } => format!("{id}/{ip}"),
            Self::Interface { id, private_ip: None } => id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Allocation(String),
    /// Addresses carrying the tag `key=value`.
    Pool {
        key: String,
        value: String,
    },
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Self::Allocation(id) => id.clone(),
            Self::Pool { key, value } => format!("{key}={value}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    instance_id: Option<String>,
    #[serde(default)]
    network_interface_id: Option<String>,
    #[serde(default)]
    private_ip_address: Option<String>,
    #[serde(default)]
    allocation_id: Option<String>,
    #[serde(default)]
    pool_tag: Option<String>,
    #[serde(default, deserialize_with = "props::flag")]
    allow_reassociation: bool,
}

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        validate(Raw::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn check_id(property: &str, id: &str, prefix: &str) -> Result<(), String> {
    if props::is_ec2_id(id, prefix) {
        Ok(())
    } else {
        Err(format!("{property} {id:?} is not a valid id ({prefix} and 8 or 17 lowercase hexadecimal digits)"))
    }
}

fn validate(raw: Raw) -> Result<Properties, String> {
    let private_ip = given(raw.private_ip_address);
    let target = match (given(raw.instance_id), given(raw.network_interface_id)) {
        (Some(id), None) => {
            check_id("InstanceId", &id, "i-")?;
            if private_ip.is_some() {
                return Err("PrivateIpAddress goes with NetworkInterfaceId; an InstanceId binds to its primary \
                            interface's primary address"
                    .into());
            }
            Target::Instance(id)
        }
        (None, Some(id)) => {
            check_id("NetworkInterfaceId", &id, "eni-")?;
            let private_ip = private_ip
                .map(|ip| ip.parse::<Ipv4Addr>().map_err(|_| format!("PrivateIpAddress {ip:?} is not an IPv4 address")))
                .transpose()?;
            Target::Interface { id, private_ip }
        }
        (None, None) => return Err("give the target: InstanceId, or NetworkInterfaceId (+ PrivateIpAddress)".into()),
        (Some(_), Some(_)) => return Err("give either InstanceId or NetworkInterfaceId, not both".into()),
    };
    let source = match (given(raw.allocation_id), given(raw.pool_tag)) {
        (Some(id), None) => {
            check_id("AllocationId", &id, "eipalloc-")?;
            Source::Allocation(id)
        }
        (None, Some(tag)) => match tag.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() && !value.trim().is_empty() => {
                Source::Pool { key: key.trim().to_owned(), value: value.trim().to_owned() }
            }
            _ => return Err(format!("PoolTag {tag:?} must be key=value, e.g. eip-pool=app-egress")),
        },
        (None, None) => return Err("give the source: AllocationId, or PoolTag (key=value)".into()),
        (Some(_), Some(_)) => return Err("give either AllocationId or PoolTag, not both".into()),
    };
    Ok(Properties { target, source, allow_reassociation: raw.allow_reassociation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Properties, String> {
        stackhand::props::parse(&v).map_err(|e| e.to_string())
    }

    #[test]
    fn targets_and_sources_parse() {
        let p = parse(
            json!({"InstanceId": "i-0123456789abcdef0", "PoolTag": "eip-pool = app", "AllowReassociation": "false"}),
        )
        .unwrap();
        assert_eq!(p.target, Target::Instance("i-0123456789abcdef0".into()));
        assert_eq!(p.source, Source::Pool { key: "eip-pool".into(), value: "app".into() });
        assert!(!p.allow_reassociation);
        let p = parse(json!({"NetworkInterfaceId": "eni-01234567", "PrivateIpAddress": "10.0.1.5", "AllocationId": "eipalloc-01234567", "AllowReassociation": "true"})).unwrap();
        assert_eq!(p.target.describe(), "eni-01234567/10.0.1.5");
        assert_eq!(p.source.describe(), "eipalloc-01234567");
        assert!(p.allow_reassociation);
    }

    #[test]
    fn both_or_neither_and_bad_ids_are_refused_by_name() {
        let cases = [
            (json!({"PoolTag": "a=b"}), "give the target"),
            (json!({"InstanceId": "i-01234567", "NetworkInterfaceId": "eni-01234567", "PoolTag": "a=b"}), "not both"),
            (json!({"InstanceId": "i-01234567"}), "give the source"),
            (
                json!({"InstanceId": "i-01234567", "PoolTag": "a=b", "AllocationId": "eipalloc-01234567"}),
                "either AllocationId or PoolTag",
            ),
            (json!({"InstanceId": "instance-1", "PoolTag": "a=b"}), "InstanceId \"instance-1\""),
            (json!({"InstanceId": "i-01234567", "AllocationId": "eip-1"}), "AllocationId"),
            (json!({"InstanceId": "i-01234567", "PoolTag": "novalue"}), "key=value"),
            (
                json!({"InstanceId": "i-01234567", "PoolTag": "a=b", "PrivateIpAddress": "10.0.0.1"}),
                "PrivateIpAddress goes with",
            ),
            (json!({"NetworkInterfaceId": "eni-01234567", "PoolTag": "a=b", "PrivateIpAddress": "x"}), "not an IPv4"),
            (
                json!({"InstanceId": "i-01234567", "PoolTag": "a=b", "AllowReassociation": "maybe"}),
                "AllowReassociation",
            ),
        ];
        for (props, expected) in cases {
            let err = parse(props.clone()).unwrap_err();
            assert!(err.contains(expected), "{props}: {err}");
        }
    }
}
