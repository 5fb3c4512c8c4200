//! Where the credentials may go: the endpoint is bound to them before any SQL is read and before any
//! connection, so a stack author cannot send someone's password (or SQL kept for them) to a server of
//! the author's choosing.
//!
//! * A secret RDS manages for a cluster (tag `aws:rds:primaryDBClusterArn`): one of that cluster's
//!   endpoints (writer, reader, custom) and its port; Endpoint omitted, the writer.
//! * A secret in Secrets Manager's RDS format (`host`, `port`): that host and port; omitted, taken
//!   from it.
//! * Otherwise (Username + PasswordParameter, or a secret naming neither): an Endpoint matching the
//!   owner's `SCHEMA_ALLOWED_ENDPOINTS`.

use std::fmt;

use crate::policy::{Policy, Refusal};
use crate::props::{Credentials, Properties};
use crate::source::{Cluster, Login, Sources, CLUSTER_TAG};
use crate::SchemaError;

/// The port when nothing names one.
pub const DEFAULT_PORT: u16 = 3306;

/// The endpoint a run connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The bound endpoint, and the login if binding had to read the secret for it.
pub struct Bound {
    pub target: Target,
    pub login: Option<Login>,
    /// What bound it, for the log line.
    pub by: &'static str,
}

/// Binds the endpoint to the credentials (module docs). Reads the secret's metadata, its cluster, and
/// (for a secret RDS does not manage) its value; never the SQL, never a connection.
pub async fn bind(sources: &Sources, policy: &Policy, props: &Properties) -> Result<Bound, SchemaError> {
    match &props.credentials {
        Credentials::Parameter { .. } => {
            let target = allowed(policy, props, "Username + PasswordParameter name no endpoint of their own")?;
            Ok(Bound { target, login: None, by: "the owner's list" })
        }
        Credentials::Secret { arn } => {
            if let Some(cluster) = sources.secret_cluster(arn).await? {
                let cluster = sources.cluster(&cluster).await?;
                return Ok(Bound {
                    target: on_cluster(props, arn, &cluster)?,
                    login: None,
                    by: "the secret's cluster",
                });
            }
            let secret = sources.secret(arn).await?;
            let (target, by) = match &secret.host {
                Some(host) => (on_host(props, arn, host, secret.port)?, "the secret's host and port"),
                None => (
                    allowed(
                        policy,
                        props,
                        &format!("SecretArn {arn} names no host (RDS format) and no cluster (tag {CLUSTER_TAG})"),
                    )?,
                    "the owner's list",
                ),
            };
            Ok(Bound { target, login: Some(secret.login), by })
        }
    }
}

/// Case and a trailing dot do not make another host.
fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// An Endpoint the credentials do not bind: the owner's list decides.
fn allowed(policy: &Policy, props: &Properties, why: &str) -> Result<Target, SchemaError> {
    let Some(host) = &props.endpoint else {
        return Err(SchemaError::Input(format!("Endpoint is required: {why}; give the cluster's Endpoint.Address")));
    };
    policy.check_endpoint(host, why)?;
    Ok(Target { host: host.clone(), port: props.port.unwrap_or(DEFAULT_PORT) })
}

/// A secret in the RDS format: its host and port, and nothing else.
fn on_host(props: &Properties, arn: &str, host: &str, port: Option<u16>) -> Result<Target, SchemaError> {
    let target = Target { host: host.to_owned(), port: port.or(props.port).unwrap_or(DEFAULT_PORT) };
    let rule = || {
        format!("SecretArn {arn} is in the RDS format for {target}, and its credentials go to that host and port only")
    };
    let allow = "Set Endpoint and Port to the secret's host and port, or leave them out to take them from it; \
                 another endpoint needs a secret of its own (whoever manages the secret sets its host and port)";
    if let Some(endpoint) = props.endpoint.as_deref().filter(|e| !same_host(e, host)) {
        return Err(
            Refusal { property: "Endpoint", value: endpoint.to_owned(), rule: rule(), allow: allow.into() }.into()
        );
    }
    if let Some(p) = props.port.filter(|p| *p != target.port) {
        return Err(Refusal { property: "Port", value: p.to_string(), rule: rule(), allow: allow.into() }.into());
    }
    Ok(target)
}

/// A secret RDS manages for a cluster: that cluster's endpoints and port.
fn on_cluster(props: &Properties, arn: &str, cluster: &Cluster) -> Result<Target, SchemaError> {
    let port = cluster.port.or(props.port).unwrap_or(DEFAULT_PORT);
    let rule = || {
        format!(
            "SecretArn {arn} is the master user secret of cluster {} (tag {CLUSTER_TAG}), and its credentials go \
             only to that cluster's endpoints ({}) on port {port}",
            cluster.id,
            cluster.endpoints.join(", ")
        )
    };
    let allow = "Give one of them (the cluster's Endpoint.Address, or !GetAtt <cluster>.Endpoint.Address) and its \
                 port, or leave Endpoint and Port out to use the writer";
    let host = match props.endpoint.as_deref() {
        Some(endpoint) => match cluster.endpoints.iter().find(|e| same_host(e, endpoint)) {
            Some(_) => endpoint.to_owned(),
            None => {
                return Err(Refusal {
                    property: "Endpoint",
                    value: endpoint.to_owned(),
                    rule: rule(),
                    allow: allow.into(),
                }
                .into())
            }
        },
        None => match cluster.endpoints.first() {
            Some(writer) => writer.clone(),
            None => {
                return Err(SchemaError::Input(format!(
                    "cluster {} (of SecretArn {arn}) has no endpoint yet; give Endpoint, or retry when it is available",
                    cluster.id
                )))
            }
        },
    };
    if let Some(p) = props.port.filter(|p| *p != port) {
        return Err(Refusal { property: "Port", value: p.to_string(), rule: rule(), allow: allow.into() }.into());
    }
    Ok(Target { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-1a2b-AbCdEf";

    fn props(endpoint: Option<&str>, port: Option<u16>) -> Properties {
        let mut v = json!({"SecretArn": ARN, "SqlParameter": "/app/s"});
        if let Some(e) = endpoint {
            v["Endpoint"] = json!(e);
        }
        if let Some(p) = port {
            v["Port"] = json!(p.to_string());
        }
        stackhand::props::parse(&v).unwrap()
    }

    fn cluster() -> Cluster {
        Cluster {
            id: "app".into(),
            endpoints: vec![
                "app.cluster-abc.us-east-1.rds.amazonaws.com".into(),
                "app.cluster-ro-abc.us-east-1.rds.amazonaws.com".into(),
                "reports.cluster-custom-abc.us-east-1.rds.amazonaws.com".into(),
            ],
            port: Some(3306),
        }
    }

    #[test]
    fn an_rds_format_secret_binds_its_host_and_port() {
        let t = on_host(&props(None, None), ARN, "db.internal", Some(3307)).unwrap();
        assert_eq!(t, Target { host: "db.internal".into(), port: 3307 }, "taken from the secret");
        let t = on_host(&props(Some("DB.internal."), Some(3307)), ARN, "db.internal", Some(3307)).unwrap();
        assert_eq!(t.port, 3307, "the same host, written otherwise");
        let err = on_host(&props(Some("attacker.example"), None), ARN, "db.internal", Some(3307)).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("Endpoint attacker.example is refused: SecretArn "), "{text}");
        assert!(text.contains("in the RDS format for db.internal:3307"), "{text}");
        assert!(text.contains("leave them out"), "{text}");
        let err = on_host(&props(Some("db.internal"), Some(4000)), ARN, "db.internal", Some(3307)).unwrap_err();
        assert!(err.to_string().starts_with("Port 4000 is refused"), "{err}");
        let t = on_host(&props(None, Some(3310)), ARN, "db.internal", None).unwrap();
        assert_eq!(t.port, 3310, "a secret without a port leaves the Port to the property");
    }

    #[test]
    fn an_rds_managed_secret_binds_its_clusters_endpoints() {
        let c = cluster();
        assert_eq!(on_cluster(&props(None, None), ARN, &c).unwrap().host, c.endpoints[0], "the writer");
        for e in &c.endpoints {
            assert_eq!(&on_cluster(&props(Some(e), Some(3306)), ARN, &c).unwrap().host, e);
        }
        let err = on_cluster(&props(Some("other.cluster-xyz.us-east-1.rds.amazonaws.com"), None), ARN, &c)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Endpoint other.cluster-xyz.us-east-1.rds.amazonaws.com is refused: "), "{err}");
        assert!(err.contains("master user secret of cluster app (tag aws:rds:primaryDBClusterArn)"), "{err}");
        assert!(err.contains(&c.endpoints[2]), "lists the endpoints: {err}");
        let err = on_cluster(&props(None, Some(3307)), ARN, &c).unwrap_err().to_string();
        assert!(err.starts_with("Port 3307 is refused"), "{err}");
    }

    #[test]
    fn an_unbound_endpoint_needs_the_owners_list() {
        let policy = Policy::from_lookup(|k| (k == crate::policy::ALLOWED_ENDPOINTS).then(|| "10.0.*".to_owned()));
        assert_eq!(allowed(&policy, &props(Some("10.0.1.5"), None), "why").unwrap().port, DEFAULT_PORT);
        let err = allowed(&policy, &props(Some("10.1.0.1"), None), "why").unwrap_err().to_string();
        assert!(err.starts_with("Endpoint 10.1.0.1 is refused: why"), "{err}");
        let err = allowed(&policy, &props(None, None), "the secret names no host").unwrap_err().to_string();
        assert!(err.starts_with("Endpoint is required: the secret names no host"), "{err}");
    }
}
