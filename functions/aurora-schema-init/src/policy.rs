//! What the function's owner allows a stack author: the owner's settings (the function's environment,
//! set from template parameters) and the checks made against them before any secret or SQL is read
//! and before any connection. Each refusal names the property, the rule and the setting that allows it.

use crate::props::{Credentials, Properties, SqlSource, Tls};

/// Host patterns (comma-separated, `*` for any characters) an `Endpoint` may name when the credentials
/// do not name one themselves. Unset or empty: the partition's RDS host names.
pub const ALLOWED_ENDPOINTS: &str = "SCHEMA_ALLOWED_ENDPOINTS";
/// `true` allows `Tls: disabled` (the local stack's MariaDB). Anything else refuses it.
pub const ALLOW_PLAINTEXT: &str = "SCHEMA_ALLOW_PLAINTEXT";
/// The SSM prefix (no leading slash) under which SQL and password parameters may be read: template
/// parameter `SchemaParameterPrefix`, the same value as the function's IAM policy.
pub const PARAMETER_PREFIX: &str = "SCHEMA_PARAMETER_PREFIX";
/// The Secrets Manager name pattern (`*`, `?`) of the secrets that may be read: template parameter
/// `SchemaSecretNamePattern`, the same value as the function's IAM policy.
pub const SECRET_NAME_PATTERN: &str = "SCHEMA_SECRET_NAME_PATTERN";

/// The template's defaults, used when the environment does not say.
pub const DEFAULT_PARAMETER_PREFIX: &str = "app";
pub const DEFAULT_SECRET_NAME_PATTERN: &str = "rds!*";

/// A property the owner's settings do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{property} {value} is refused: {rule}. {allow}")]
pub struct Refusal {
    pub property: &'static str,
    pub value: String,
    /// Why, as a rule.
    pub rule: String,
    /// How the owner (or the author) allows it.
    pub allow: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Host patterns, lower-case.
    pub allowed_endpoints: Vec<String>,
    /// Whether [`ALLOWED_ENDPOINTS`] set them (else they are the partition's default).
    pub endpoints_set: bool,
    pub allow_plaintext: bool,
    pub parameter_prefix: String,
    pub secret_pattern: String,
}

impl Policy {
    /// From the function's environment (`AWS_REGION` picks the partition's default host names).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let listed: Vec<String> = set(ALLOWED_ENDPOINTS)
            .map(|v| v.split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        let endpoints_set = !listed.is_empty();
        let allowed_endpoints = if endpoints_set {
            listed
        } else {
            let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")).unwrap_or_default();
            vec![format!("*.rds.{}", dns_suffix(&region))]
        };
        Self {
            allowed_endpoints,
            endpoints_set,
            allow_plaintext: set(ALLOW_PLAINTEXT).is_some_and(|v| v.eq_ignore_ascii_case("true")),
            parameter_prefix: set(PARAMETER_PREFIX)
                .map(|p| p.trim_matches('/').to_owned())
                .unwrap_or_else(|| DEFAULT_PARAMETER_PREFIX.to_owned()),
            secret_pattern: set(SECRET_NAME_PATTERN).unwrap_or_else(|| DEFAULT_SECRET_NAME_PATTERN.to_owned()),
        }
    }

    /// `Tls: disabled` only where the owner allows plaintext.
    pub fn check_tls(&self, props: &Properties) -> Result<(), Refusal> {
        if props.tls == Tls::Disabled && !self.allow_plaintext {
            return Err(Refusal {
                property: "Tls",
                value: "disabled".into(),
                rule: "the database password and the SQL travel only over TLS verified against the Amazon RDS \
                       and Amazon Trust Services roots"
                    .into(),
                allow: format!(
                    "Use Tls required (the default); plaintext is for a local test database only, allowed by \
                     the function's owner with {ALLOW_PLAINTEXT}=true in its environment"
                ),
            });
        }
        Ok(())
    }

    /// The SQL and password parameters under the owner's prefix, the secret named by the owner's
    /// pattern: the same rules as the function's IAM policy, so a refusal here says why in words.
    pub fn check_sources(&self, props: &Properties) -> Result<(), Refusal> {
        let (property, name) = match &props.sql {
            SqlSource::Parameter(name) => ("SqlParameter", name),
            SqlSource::Path(path) => ("SqlParameterPath", path),
        };
        self.check_parameter(property, name)?;
        match &props.credentials {
            Credentials::Parameter { parameter, .. } => self.check_parameter("PasswordParameter", parameter),
            Credentials::Secret { arn } => self.check_secret(arn),
        }
    }

    fn check_parameter(&self, property: &'static str, name: &str) -> Result<(), Refusal> {
        let plain = name.strip_prefix("arn:").map_or(name, |_| name.split_once(":parameter").map_or("", |(_, n)| n));
        let plain = plain.strip_prefix('/').unwrap_or(plain);
        let prefix = &self.parameter_prefix;
        if plain == prefix || plain.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/')) {
            return Ok(());
        }
        Err(Refusal {
            property,
            value: name.to_owned(),
            rule: format!("the function reads SQL and passwords only from SSM parameters under /{prefix}/"),
            allow: format!(
                "Move the parameter under /{prefix}/, or have the function's owner set the template parameter \
                 SchemaParameterPrefix (env {PARAMETER_PREFIX})"
            ),
        })
    }

    fn check_secret(&self, arn: &str) -> Result<(), Refusal> {
        let name = arn.split_once(":secret:").map_or("", |(_, n)| n);
        if glob(&self.secret_pattern, name, false) {
            return Ok(());
        }
        Err(Refusal {
            property: "SecretArn",
            value: arn.to_owned(),
            rule: format!("the function reads only Secrets Manager secrets named {}", self.secret_pattern),
            allow: format!(
                "Use such a secret (\"rds!*\" matches the master user secrets RDS manages), or have the function's \
                 owner set the template parameter SchemaSecretNamePattern (env {SECRET_NAME_PATTERN})"
            ),
        })
    }

    /// An `Endpoint` the credentials do not bind: it must match the owner's list.
    pub fn check_endpoint(&self, host: &str, why: &str) -> Result<(), Refusal> {
        let host = host.to_ascii_lowercase();
        if self.allowed_endpoints.iter().any(|p| glob(p, &host, true)) {
            return Ok(());
        }
        let list = self.allowed_endpoints.join(",");
        let source = if self.endpoints_set { "the owner's list" } else { "the default list" };
        Err(Refusal {
            property: "Endpoint",
            value: host,
            rule: format!("{why}, so the Endpoint must match {source} {ALLOWED_ENDPOINTS} ({list})"),
            allow: format!(
                "Give the cluster's Endpoint.Address, use a secret in the RDS format whose host is this endpoint, \
                 or have the function's owner add it to the template parameter SchemaAllowedEndpoints (env \
                 {ALLOWED_ENDPOINTS})"
            ),
        })
    }
}

/// The DNS suffix of `region`'s partition, as RDS host names end in it.
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-isof-") {
        "csp.hci.ic.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else if region.starts_with("eu-isoe-") {
        "cloud.adc-e.uk"
    } else {
        "amazonaws.com"
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and `?` one (IAM's rules).
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| if ignore_case { s.to_lowercase() } else { s.to_owned() };
    let (p, t): (Vec<char>, Vec<char>) = (fold(pattern).chars().collect(), fold(text).chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(vars: &[(&str, &str)]) -> Policy {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Policy::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn props(v: serde_json::Value) -> Properties {
        stackhand::props::parse(&v).unwrap()
    }

    const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-1a2b-AbCdEf";

    #[test]
    fn globs_follow_iam() {
        assert!(glob("rds!*", "rds!cluster-1a2b-AbCdEf", false));
        assert!(!glob("rds!*", "app-db-AbCdEf", false));
        assert!(glob("*.rds.amazonaws.com", "app.cluster-abc.us-east-1.rds.amazonaws.com", true));
        assert!(!glob("*.rds.amazonaws.com", "rds.amazonaws.com.evil.example", true));
        assert!(!glob("*.rds.amazonaws.com", "evil.example", true));
        assert!(glob("db-?", "db-1", false) && !glob("db-?", "db-12", false));
        assert!(glob("a*b*c", "axxbyyc", false) && !glob("a*b*c", "axxbyy", false));
        assert!(glob("APP*", "app-x", true) && !glob("APP*", "app-x", false));
    }

    #[test]
    fn the_default_endpoints_are_the_partitions_rds_host_names() {
        assert_eq!(policy(&[("AWS_REGION", "us-east-1")]).allowed_endpoints, ["*.rds.amazonaws.com"]);
        assert_eq!(policy(&[("AWS_REGION", "cn-north-1")]).allowed_endpoints, ["*.rds.amazonaws.com.cn"]);
        assert_eq!(policy(&[("AWS_REGION", "us-gov-west-1")]).allowed_endpoints, ["*.rds.amazonaws.com"]);
        assert_eq!(policy(&[("AWS_REGION", "us-iso-east-1")]).allowed_endpoints, ["*.rds.c2s.ic.gov"]);
        let p = policy(&[(ALLOWED_ENDPOINTS, " 127.0.0.1, *.Internal.Example ,")]);
        assert_eq!(p.allowed_endpoints, ["127.0.0.1", "*.internal.example"]);
        assert!(p.endpoints_set);
        assert!(!policy(&[(ALLOWED_ENDPOINTS, "  ")]).endpoints_set, "empty is the default");
    }

    #[test]
    fn an_endpoint_outside_the_list_is_refused_naming_the_setting() {
        let p = policy(&[("AWS_REGION", "us-east-1")]);
        assert!(p.check_endpoint("App.cluster-abc.us-east-1.rds.amazonaws.com", "x").is_ok());
        let err = p.check_endpoint("db.attacker.example", "the credentials name no host").unwrap_err().to_string();
        assert!(err.starts_with("Endpoint db.attacker.example is refused: the credentials name no host"), "{err}");
        assert!(err.contains("SCHEMA_ALLOWED_ENDPOINTS (*.rds.amazonaws.com)"), "{err}");
        assert!(err.contains("SchemaAllowedEndpoints"), "{err}");
        let local = policy(&[(ALLOWED_ENDPOINTS, "127.0.0.1")]);
        assert!(local.check_endpoint("127.0.0.1", "x").is_ok());
        assert!(local.check_endpoint("127.0.0.2", "x").is_err());
    }

    #[test]
    fn plaintext_only_where_the_owner_allows_it() {
        let plain = props(json!({"Endpoint": "h", "SecretArn": SECRET, "SqlParameter": "/app/s", "Tls": "disabled"}));
        let err = policy(&[]).check_tls(&plain).unwrap_err().to_string();
        assert!(err.starts_with("Tls disabled is refused: "), "{err}");
        assert!(err.contains("SCHEMA_ALLOW_PLAINTEXT=true"), "{err}");
        assert!(policy(&[(ALLOW_PLAINTEXT, "yes")]).check_tls(&plain).is_err(), "only true");
        assert!(policy(&[(ALLOW_PLAINTEXT, "TRUE")]).check_tls(&plain).is_ok());
        let tls = props(json!({"Endpoint": "h", "SecretArn": SECRET, "SqlParameter": "/app/s"}));
        assert!(policy(&[]).check_tls(&tls).is_ok());
    }

    #[test]
    fn parameters_only_under_the_prefix_and_secrets_only_by_the_pattern() {
        let p = policy(&[]);
        let with = |sql: serde_json::Value| {
            let mut v = json!({"Endpoint": "h", "SecretArn": SECRET});
            for (k, val) in sql.as_object().unwrap() {
                v[k] = val.clone();
            }
            p.check_sources(&props(v))
        };
        assert!(with(json!({"SqlParameterPath": "/app/schema"})).is_ok());
        assert!(with(json!({"SqlParameterPath": "/app"})).is_ok());
        assert!(with(json!({"SqlParameter": "arn:aws:ssm:us-east-1:123456789012:parameter/app/s.sql"})).is_ok());
        let err = with(json!({"SqlParameter": "/apps/s.sql"})).unwrap_err().to_string();
        assert!(err.starts_with("SqlParameter /apps/s.sql is refused: "), "{err}");
        assert!(err.contains("under /app/") && err.contains("SchemaParameterPrefix"), "{err}");
        assert!(with(json!({"SqlParameterPath": "/other/app"})).is_err());
        assert!(with(json!({"SqlParameter": "app-secret-sql"})).is_err());

        let pw = props(json!({"Endpoint": "h", "Username": "u", "PasswordParameter": "/team-b/db-password",
                              "SqlParameter": "/app/s"}));
        let err = p.check_sources(&pw).unwrap_err().to_string();
        assert!(err.starts_with("PasswordParameter /team-b/db-password is refused"), "{err}");

        let other = "arn:aws:secretsmanager:us-east-1:123456789012:secret:team-b/db-AbCdEf";
        let err = with(json!({"SecretArn": other, "SqlParameter": "/app/s"})).unwrap_err().to_string();
        assert!(err.starts_with(&format!("SecretArn {other} is refused: ")), "{err}");
        assert!(err.contains("named rds!*") && err.contains("SchemaSecretNamePattern"), "{err}");
        let owner = policy(&[(SECRET_NAME_PATTERN, "team-b/*"), (PARAMETER_PREFIX, "/team-b/")]);
        assert_eq!(owner.parameter_prefix, "team-b");
        let v = json!({"Endpoint": "h", "SecretArn": other, "SqlParameter": "/team-b/s"});
        assert!(owner.check_sources(&props(v)).is_ok());
    }
}
