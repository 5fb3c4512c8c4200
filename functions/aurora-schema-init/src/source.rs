//! What the run needs from AWS: the migrations (SSM Parameter Store), the credentials (Secrets
//! Manager or an SSM SecureString), and what binds them to an endpoint (the secret's tags and host,
//! the cluster's endpoints). Passwords are registered with the redactor the moment they arrive, and a
//! password too short to mask is refused.

use sha2::{Digest, Sha256};
use stackhand::aws::AwsResultExt as _;
use stackhand::redact;

use crate::props::SqlSource;
use crate::SchemaError;

/// One migration: its id (the parameter's last path segment, or the parameter name for a single
/// script), where it came from, and its SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub id: String,
    pub parameter: String,
    pub sql: String,
}

impl Migration {
    /// SHA-256 of the SQL with CRLF and CR turned into LF: the same script saved on Windows or Unix
    /// is the same migration.
    pub fn checksum(&self) -> String {
        hex(&Sha256::digest(normalise(&self.sql).as_bytes()))
    }
}

pub fn normalise(sql: &str) -> String {
    sql.replace("\r\n", "\n").replace('\r', "\n")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct Sources {
    pub ssm: aws_sdk_ssm::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub rds: aws_sdk_rds::Client,
}

pub struct Login {
    pub username: String,
    pub password: String,
}

/// A secret's value: the login, and the host and port it names if it is in Secrets Manager's RDS
/// format (`{"host": …, "port": …, "username": …, "password": …}`).
pub struct SecretValue {
    pub login: Login,
    pub host: Option<String>,
    pub port: Option<u16>,
}

/// An Aurora cluster as `DescribeDBClusters` gives it: its identifier, every endpoint (writer, reader,
/// custom) and its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub id: String,
    /// The writer endpoint first.
    pub endpoints: Vec<String>,
    pub port: Option<u16>,
}

/// The tag RDS puts on the master user secret it manages, naming its cluster (`aws:` tags can be set
/// by AWS only).
pub const CLUSTER_TAG: &str = "aws:rds:primaryDBClusterArn";

/// Registers `password` with the redactor, or refuses it if it is too short to be masked safely.
fn register(property: &str, name: &str, password: &str) -> Result<(), SchemaError> {
    redact::register_secret(password)
        .map_err(|e| SchemaError::Input(format!("the password in {property} {name} is refused: {e}")))
}

impl Sources {
    pub async fn migrations(&self, source: &SqlSource) -> Result<Vec<Migration>, SchemaError> {
        match source {
            SqlSource::Parameter(name) => {
                let sql = self.parameter("SqlParameter", name).await?;
                Ok(vec![Migration { id: name.clone(), parameter: name.clone(), sql }])
            }
            SqlSource::Path(path) => {
                let mut pages = self
                    .ssm
                    .get_parameters_by_path()
                    .path(path)
                    .recursive(false)
                    .with_decryption(true)
                    .into_paginator()
                    .send();
                let mut found = Vec::new();
                while let Some(page) = pages.next().await {
                    let page = page.op("GetParametersByPath")?;
                    for p in page.parameters() {
                        let (Some(name), Some(sql)) = (p.name(), p.value()) else { continue };
                        let id = name.rsplit('/').next().unwrap_or(name).to_owned();
                        found.push(Migration { id, parameter: name.to_owned(), sql: sql.to_owned() });
                    }
                }
                if found.is_empty() {
                    return Err(SchemaError::Input(format!(
                        "SqlParameterPath {path} has no parameters under it; add one per migration, e.g. {path}/0001-init"
                    )));
                }
                found.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(found)
            }
        }
    }

    /// The password of Username + PasswordParameter.
    pub async fn login(&self, username: &str, parameter: &str) -> Result<Login, SchemaError> {
        let password = self.parameter("PasswordParameter", parameter).await?;
        register("PasswordParameter", parameter, &password)?;
        Ok(Login { username: username.to_owned(), password })
    }

    /// The cluster a secret RDS manages belongs to ([`CLUSTER_TAG`]), from its metadata: no value read.
    pub async fn secret_cluster(&self, arn: &str) -> Result<Option<String>, SchemaError> {
        let out = self.secrets.describe_secret().secret_id(arn).send().await.op("DescribeSecret");
        let out = out.map_err(|e| secret_error(arn, e))?;
        Ok(out.tags().iter().find(|t| t.key() == Some(CLUSTER_TAG)).and_then(|t| t.value()).map(str::to_owned))
    }

    /// The secret's value: its login (the password registered at once) and the host and port it names.
    pub async fn secret(&self, arn: &str) -> Result<SecretValue, SchemaError> {
        let out = self.secrets.get_secret_value().secret_id(arn).send().await.op("GetSecretValue");
        let out = out.map_err(|e| secret_error(arn, e))?;
        let text = out.secret_string().unwrap_or_default();
        let shape = || {
            SchemaError::Input(format!(
                "secret {arn} is not in the RDS-managed shape {{\"username\": …, \"password\": …}}"
            ))
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(|_| shape())?;
        let field = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            return Err(shape());
        };
        register("SecretArn", arn, &password)?;
        let host = field("host").map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
        let port = match value.get("port") {
            Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        if value.get("port").is_some_and(|p| !p.is_null()) && port.is_none() {
            return Err(SchemaError::Input(format!("secret {arn} has a port that is not a number 1-65535")));
        }
        Ok(SecretValue { login: Login { username, password }, host, port })
    }

    /// The cluster `arn` names, with its endpoints.
    pub async fn cluster(&self, arn: &str) -> Result<Cluster, SchemaError> {
        let missing =
            || SchemaError::Input(format!("the secret's cluster {arn} (its tag {CLUSTER_TAG}) does not exist"));
        let out = self.rds.describe_db_clusters().db_cluster_identifier(arn).send().await.op("DescribeDBClusters");
        let out = out.map_err(|e| match e.code() {
            Some("DBClusterNotFoundFault") => missing(),
            _ => SchemaError::Aws(e),
        })?;
        let Some(c) = out.db_clusters().first() else { return Err(missing()) };
        let mut endpoints: Vec<String> =
            c.endpoint().into_iter().chain(c.reader_endpoint()).map(str::to_owned).collect();
        endpoints.extend(c.custom_endpoints().iter().cloned());
        Ok(Cluster {
            id: c.db_cluster_identifier().unwrap_or(arn).to_owned(),
            endpoints,
            port: c.port().and_then(|p| u16::try_from(p).ok()),
        })
    }

    async fn parameter(&self, property: &str, name: &str) -> Result<String, SchemaError> {
        let out =
            self.ssm.get_parameter().name(name).with_decryption(true).send().await.op("GetParameter").map_err(|e| {
                match e.code() {
                    Some("ParameterNotFound") => SchemaError::Input(format!("{property} {name} does not exist")),
                    _ => SchemaError::Aws(e),
                }
            })?;
        Ok(out.parameter().and_then(|p| p.value()).unwrap_or_default().to_owned())
    }
}

/// A Secrets Manager error about `arn`: one that does not exist is the author's input to fix.
fn secret_error(arn: &str, e: stackhand::aws::AwsError) -> SchemaError {
    match e.code() {
        Some("ResourceNotFoundException") => SchemaError::Input(format!("SecretArn {arn} does not exist")),
        _ => SchemaError::Aws(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_ignores_line_ending_style_only() {
        let m = |sql: &str| Migration { id: "1".into(), parameter: "p".into(), sql: sql.into() };
        assert_eq!(m("USE a;\r\nSELECT 1;\r\n").checksum(), m("USE a;\nSELECT 1;\n").checksum());
        assert_eq!(m("a\rb").checksum(), m("a\nb").checksum());
        assert_ne!(m("SELECT 1;").checksum(), m("SELECT 2;").checksum());
        assert_eq!(m("").checksum(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
