//! What the run needs from AWS: the migrations (SSM Parameter Store) and the credentials (Secrets
//! Manager or an SSM SecureString). Passwords are registered with the redactor the moment they arrive.

use sha2::{Digest, Sha256};
use stackhand::aws::AwsResultExt as _;
use stackhand::redact;

use crate::props::{Credentials, SqlSource};
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
}

pub struct Login {
    pub username: String,
    pub password: String,
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

    pub async fn login(&self, credentials: &Credentials) -> Result<Login, SchemaError> {
        let login = match credentials {
            Credentials::Parameter { username, parameter } => {
                Login { username: username.clone(), password: self.parameter("PasswordParameter", parameter).await? }
            }
            Credentials::Secret { arn } => {
                let out =
                    self.secrets.get_secret_value().secret_id(arn).send().await.op("GetSecretValue").map_err(|e| {
                        match e.code() {
                            Some("ResourceNotFoundException") => {
                                SchemaError::Input(format!("SecretArn {arn} does not exist"))
                            }
                            _ => SchemaError::Aws(e),
                        }
                    })?;
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
                Login { username, password }
            }
        };
        redact::register(&login.password);
        Ok(login)
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
