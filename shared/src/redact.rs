//! A process-wide list of secret strings that must never leave the function: the ResponseURL and its
//! signature, database passwords, the AWS secret key. Every log line (see [`crate::logging`]), every
//! Reason and every panic message passes through [`redact`] before it is written or sent.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are not registered: masking "a" everywhere would make logs unreadable,
/// and such a value is no secret.
const MIN_SECRET_LEN: usize = 6;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a value that must never appear in output. Idempotent; short values are ignored.
pub fn register(secret: impl AsRef<str>) {
    let secret = secret.as_ref();
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_owned());
        // Longest first, so that a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
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
}
