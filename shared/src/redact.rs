//! A process-wide list of secret strings that must never leave the function: the ResponseURL and its
//! signature, database passwords, the AWS secret key. Every log field (see [`crate::logging`]), every
//! Reason and every panic message passes through [`redact`] before it is written or sent.
//!
//! A secret is masked as it is and in the escaped forms a formatter may give it (JSON's `\"` and `\\`,
//! Rust's `{:?}`), so that a value formatted before it reached the redactor is still caught.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this cannot be masked safely: masking "ab" everywhere would hide ordinary
/// text and still tell a reader where the secret was. [`register`] ignores them (parts of a URL's
/// query that are no secret); [`register_secret`] refuses them.
pub const MIN_SECRET_LEN: usize = 6;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// A secret too short to be masked safely, refused rather than logged bare.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "it is {len} characters long, and a secret shorter than {MIN_SECRET_LEN} characters cannot be masked in \
     logs and Reasons safely; use a longer one"
)]
pub struct TooShort {
    pub len: usize,
}

/// Registers a value that must never appear in output, if it is long enough to be a secret
/// ([`MIN_SECRET_LEN`]): parts of a URL, keys. Idempotent.
pub fn register(secret: impl AsRef<str>) {
    let secret = secret.as_ref();
    if secret.chars().count() >= MIN_SECRET_LEN {
        add(secret);
    }
}

/// Registers a secret that must be masked (a password): one too short to mask safely is refused, and
/// the caller fails rather than using it. An empty value has nothing to leak and is accepted.
pub fn register_secret(secret: impl AsRef<str>) -> Result<(), TooShort> {
    let secret = secret.as_ref();
    let len = secret.chars().count();
    if len == 0 {
        return Ok(());
    }
    if len < MIN_SECRET_LEN {
        return Err(TooShort { len });
    }
    add(secret);
    Ok(())
}

fn add(secret: &str) {
    let json = serde_json::to_string(secret).unwrap_or_default();
    let debug = format!("{secret:?}");
    let forms = [secret, trim_quotes(&json), trim_quotes(&debug)];
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if !form.is_empty() && !secrets.iter().any(|s| s == form) {
            secrets.push(form.to_owned());
        }
    }
    // Longest first, so that a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

fn trim_quotes(s: &str) -> &str {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

/// Registers the secrets the Lambda environment itself carries (the AWS secret key and session token).
pub fn register_environment() {
    for var in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Ok(value) = std::env::var(var) {
            register(value);
        }
    }
}

/// Returns `text` with every registered secret replaced by [`MASK`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_secrets_and_leaves_the_rest() {
        register("hunter2-password");
        assert_eq!(redact("login with hunter2-password now"), "login with *** now");
        assert_eq!(redact("nothing here"), "nothing here");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn masks_the_longer_secret_whole_when_one_contains_another() {
        register("abcdef-inner");
        register("outer-abcdef-inner-outer");
        assert_eq!(redact("x outer-abcdef-inner-outer y"), "x *** y");
    }

    #[test]
    fn ignores_values_too_short_to_be_secrets() {
        register("ab");
        assert_eq!(redact("abc ab"), "abc ab");
    }

    #[test]
    fn a_password_too_short_to_mask_is_refused_not_ignored() {
        assert_eq!(register_secret("pw1"), Err(TooShort { len: 3 }));
        assert!(TooShort { len: 3 }.to_string().contains("shorter than 6 characters"));
        assert_eq!(register_secret(""), Ok(()), "nothing to leak");
        assert_eq!(register_secret("long-enough-pw"), Ok(()));
        assert_eq!(redact("pw=long-enough-pw"), "pw=***");
    }

    #[test]
    fn escaped_forms_of_a_secret_are_masked_too() {
        let secret = "p\"a\\ss\tword";
        register_secret(secret).unwrap();
        let json = serde_json::to_string(&serde_json::json!({ "f": format!("x {secret} y") })).unwrap();
        assert_eq!(redact(&json), r#"{"f":"x *** y"}"#);
        assert_eq!(redact(&format!("{:?}", format!("[{secret}]"))), "\"[***]\"");
        assert_eq!(redact(&format!("raw {secret}")), "raw ***");
    }
}
