//! `Custom::AuroraSchema` properties, validated before any AWS or database call.

use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;
use stackhand::props;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    /// Optional with a secret that names its host (RDS format) or its cluster (RDS-managed): then it
    /// is taken from there.
    pub endpoint: Option<String>,
    /// Optional: from the secret or the cluster, else 3306.
    pub port: Option<u16>,
    pub database: Option<String>,
    pub credentials: Credentials,
    pub sql: SqlSource,
    pub tls: Tls,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A Secrets Manager secret in the RDS-managed shape `{"username": …, "password": …}`.
    Secret { arn: String },
    /// A user name and an SSM SecureString parameter holding the password.
    Parameter { username: String, parameter: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlSource {
    /// One parameter holding one script: one migration, named after the parameter.
    Parameter(String),
    /// The children of an SSM path, applied in name order, each a migration named by its last segment.
    Path(String),
}

impl SqlSource {
    /// What the history table records the migrations under.
    pub fn key(&self) -> &str {
        match self {
            Self::Parameter(name) | Self::Path(name) => name,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tls {
    /// Verify the server against the Amazon RDS CA bundle and the Amazon Trust Services roots (built in).
    #[default]
    Required,
    /// Plain TCP: local testing only.
    Disabled,
}

impl std::str::FromStr for Tls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "required" => Ok(Self::Required),
            "disabled" => Ok(Self::Disabled),
            _ => Err(format!("{s:?} is not a TLS mode; use required (the default) or disabled (local testing only)")),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default, deserialize_with = "props::optional_number")]
    port: Option<u16>,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    secret_arn: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_parameter: Option<String>,
    /// Accepted only to refuse it with a clear message; its value is never read or shown.
    #[serde(default)]
    password: Option<IgnoredAny>,
    #[serde(default)]
    sql_parameter: Option<String>,
    #[serde(default)]
    sql_parameter_path: Option<String>,
    #[serde(default, deserialize_with = "optional_tls")]
    tls: Option<Tls>,
    #[serde(default, deserialize_with = "props::optional_number")]
    connect_timeout_seconds: Option<u64>,
}

fn optional_tls<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Tls>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| s.trim().parse().map_err(serde::de::Error::custom)).transpose()
}

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Raw::deserialize(deserializer)?;
        validate(raw).map_err(serde::de::Error::custom)
    }
}

fn blank_to_none(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn validate(raw: Raw) -> Result<Properties, String> {
    if raw.password.is_some() {
        return Err("Password is not accepted: a password in a template shows in every stack event. Put it in \
                    Secrets Manager (SecretArn) or an SSM SecureString (Username + PasswordParameter)"
            .into());
    }
    let endpoint = blank_to_none(raw.endpoint);
    if let Some(endpoint) = &endpoint {
        let host_ok = endpoint.len() <= 253
            && endpoint.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        if !host_ok {
            return Err(format!(
                "Endpoint {endpoint:?} is not a host name or address (the cluster's Endpoint.Address)"
            ));
        }
    }
    let port = raw.port;
    if port == Some(0) {
        return Err("Port must be 1-65535 (Aurora MySQL listens on 3306 unless set otherwise)".into());
    }
    let database = blank_to_none(raw.database);
    if let Some(db) = &database {
        if db.chars().count() > 64 || db.contains(['`', '\0', '/', '\\', '.']) || db.ends_with(' ') {
            return Err(format!(
                "Database {db:?} is not a valid MySQL database name (at most 64 characters, no `/\\.)"
            ));
        }
    }
    let credentials = match (
        blank_to_none(raw.secret_arn),
        blank_to_none(raw.username),
        blank_to_none(raw.password_parameter),
    ) {
        (Some(arn), None, None) => {
            if !(arn.starts_with("arn:") && arn.contains(":secretsmanager:") && arn.contains(":secret:")) {
                return Err(format!("SecretArn {arn:?} is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"));
            }
            Credentials::Secret { arn }
        }
        (None, Some(username), Some(parameter)) => {
            check_parameter_name("PasswordParameter", &parameter)?;
            if endpoint.is_none() {
                return Err("Endpoint is required with Username + PasswordParameter (the cluster's \
                            Endpoint.Address); only a secret can name its own endpoint"
                    .into());
            }
            Credentials::Parameter { username, parameter }
        }
        (None, Some(_), None) => {
            return Err("Username needs PasswordParameter (an SSM SecureString holding the password)".into())
        }
        (None, None, Some(_)) => return Err("PasswordParameter needs Username".into()),
        (None, None, None) => {
            return Err(
                "give credentials: SecretArn (Secrets Manager, RDS-managed shape), or Username + PasswordParameter"
                    .into(),
            )
        }
        (Some(_), _, _) => return Err("give either SecretArn or Username + PasswordParameter, not both".into()),
    };
    let sql = match (blank_to_none(raw.sql_parameter), blank_to_none(raw.sql_parameter_path)) {
        (Some(name), None) => {
            check_parameter_name("SqlParameter", &name)?;
            SqlSource::Parameter(name)
        }
        (None, Some(path)) => {
            let path = path.trim_end_matches('/').to_owned();
            if !path.starts_with('/') || path.is_empty() {
                return Err(format!("SqlParameterPath {path:?} must be a hierarchy path such as /app/schema"));
            }
            check_parameter_name("SqlParameterPath", &path)?;
            SqlSource::Path(path)
        }
        (None, None) => {
            return Err("give the SQL: SqlParameter (one script) or SqlParameterPath (a migration per child)".into())
        }
        (Some(_), Some(_)) => return Err("give either SqlParameter or SqlParameterPath, not both".into()),
    };
    if sql.key().chars().count() > 255 {
        return Err("the SQL parameter name or path is longer than the 255 characters the history table keeps".into());
    }
    let timeout = raw.connect_timeout_seconds.unwrap_or(5);
    if !(1..=300).contains(&timeout) {
        return Err(format!("ConnectTimeoutSeconds {timeout} is outside 1-300"));
    }
    Ok(Properties {
        endpoint,
        port,
        database,
        credentials,
        sql,
        tls: raw.tls.unwrap_or_default(),
        connect_timeout: Duration::from_secs(timeout),
    })
}

/// SSM parameter names: letters, digits and `_.-/`, or a parameter ARN.
fn check_parameter_name(property: &str, name: &str) -> Result<(), String> {
    let plain = name.strip_prefix("arn:").map_or(name, |_| name.split_once(":parameter").map_or("", |(_, n)| n));
    let ok = !plain.is_empty()
        && plain.len() <= 2048
        && plain.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(format!("{property} {name:?} is not an SSM parameter name (letters, digits, _.-/)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Properties, stackhand::props::PropertyError> {
        stackhand::props::parse(&v)
    }

    const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-1a2b-AbCdEf";

    #[test]
    fn the_usual_shapes_parse_with_defaults() {
        let p = parse(json!({"Endpoint": "db.cluster-abc.us-east-1.rds.amazonaws.com", "SecretArn": SECRET, "SqlParameter": "/app/schema.sql"})).unwrap();
        assert_eq!(p.port, None, "from the secret or the cluster, else 3306");
        assert_eq!(p.tls, Tls::Required);
        assert_eq!(p.connect_timeout, Duration::from_secs(5));
        assert_eq!(p.sql, SqlSource::Parameter("/app/schema.sql".into()));
        let p = parse(json!({
            "Endpoint": "127.0.0.1", "Port": "3307", "Database": "app", "Username": "admin",
            "PasswordParameter": "/app/db-password", "SqlParameterPath": "/app/schema/", "Tls": "Disabled",
            "ConnectTimeoutSeconds": "2"
        }))
        .unwrap();
        assert_eq!(p.port, Some(3307));
        assert_eq!(p.database.as_deref(), Some("app"));
        assert_eq!(p.sql, SqlSource::Path("/app/schema".into()), "a trailing slash is dropped");
        assert_eq!(
            p.credentials,
            Credentials::Parameter { username: "admin".into(), parameter: "/app/db-password".into() }
        );
        assert_eq!(p.tls, Tls::Disabled);
    }

    #[test]
    fn each_rule_has_its_own_message() {
        let base = json!({"Endpoint": "h", "SecretArn": SECRET, "SqlParameter": "p"});
        let with = |changes: serde_json::Value| {
            let mut v = base.clone();
            for (k, val) in changes.as_object().unwrap() {
                if val.is_null() {
                    v.as_object_mut().unwrap().remove(k);
                } else {
                    v[k] = val.clone();
                }
            }
            parse(v).unwrap_err().to_string()
        };
        assert!(with(json!({"Password": "hunter2-secret"})).contains("Password is not accepted"));
        assert!(!with(json!({"Password": "hunter2-secret"})).contains("hunter2"));
        assert!(with(json!({"Username": "u"})).contains("not both"));
        assert!(with(json!({"SecretArn": null})).contains("give credentials"));
        assert!(with(json!({"SecretArn": null, "Username": "u"})).contains("needs PasswordParameter"));
        assert!(with(json!({"SecretArn": "my-secret"})).contains("not a Secrets Manager secret ARN"));
        assert!(with(json!({"SqlParameterPath": "/x"})).contains("either SqlParameter or SqlParameterPath"));
        assert!(with(json!({"SqlParameter": null})).contains("give the SQL"));
        assert!(with(json!({"SqlParameter": null, "SqlParameterPath": "relative/path"})).contains("hierarchy path"));
        assert!(with(json!({"SqlParameter": "bad name!"})).contains("not an SSM parameter name"));
        assert!(with(json!({"Endpoint": "bad host/"})).contains("Endpoint"));
        assert!(with(json!({"Port": "0"})).contains("Port"));
        assert!(with(json!({"Port": "x"})).contains("Port"));
        assert!(with(json!({"Tls": "preferred"})).contains("required (the default) or disabled"));
        assert!(with(json!({"Database": "a.b"})).contains("Database"));
        assert!(with(json!({"ConnectTimeoutSeconds": "0"})).contains("ConnectTimeoutSeconds"));
        let no_endpoint = json!({"Endpoint": null, "SecretArn": null, "Username": "u", "PasswordParameter": "/p"});
        assert!(with(no_endpoint).contains("Endpoint is required with Username + PasswordParameter"));
    }

    #[test]
    fn a_secret_may_name_the_endpoint_itself() {
        let p = parse(json!({"SecretArn": SECRET, "SqlParameter": "/app/schema.sql"})).unwrap();
        assert_eq!((p.endpoint, p.port), (None, None));
    }
}
