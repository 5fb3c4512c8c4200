//! Facts about the current invocation that every function reads the same way, and how a failed one is
//! reported to Lambda.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::Diagnostic;
use tokio::time::Instant;

use crate::redact::redact;

/// Below this a "deadline" cannot be Unix epoch milliseconds (it would be before 2001-09-09).
const EPOCH_MILLIS_FLOOR: u64 = 1_000_000_000_000;

/// The invocation's deadline (`Context::deadline`) as an [`Instant`]. Lambda sends Unix epoch
/// milliseconds; cargo-lambda's local emulator sends the timeout itself (`600000`), so a value too
/// small to be an epoch time is read as relative to now.
pub fn deadline(millis: u64) -> Instant {
    deadline_at(millis, SystemTime::now(), Instant::now())
}

fn deadline_at(millis: u64, now_sys: SystemTime, now: Instant) -> Instant {
    if millis < EPOCH_MILLIS_FLOOR {
        return now + Duration::from_millis(millis);
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(millis);
    now + deadline.duration_since(now_sys).unwrap_or(Duration::ZERO)
}

/// The Lambda error for an invocation that failed: `error_type` (e.g. `Stackhand.EipBinding`) and the
/// error's text with every registered secret masked ([`crate::redact`]). Every invocation error a
/// function returns goes through here.
pub fn diagnostic(error_type: &str, err: &(impl std::fmt::Display + ?Sized)) -> Diagnostic {
    Diagnostic { error_type: error_type.to_owned(), error_message: redact(&err.to_string()).into_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_carries_the_type_and_the_redacted_message() {
        crate::redact::register("diagnostic-secret-value");
        let d = diagnostic("Stackhand.Test", "the call failed with diagnostic-secret-value in it");
        assert_eq!(d.error_type, "Stackhand.Test");
        assert_eq!(d.error_message, "the call failed with *** in it");
    }

    #[test]
    fn deadlines_are_epoch_millis_or_a_local_emulators_relative_timeout() {
        let now_sys = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let now = Instant::now();
        let epoch = 1_800_000_000_000 + 4_000;
        assert_eq!(deadline_at(epoch, now_sys, now), now + Duration::from_secs(4));
        assert_eq!(deadline_at(1_800_000_000_000 - 5, now_sys, now), now, "a past deadline leaves nothing");
        assert_eq!(deadline_at(600_000, now_sys, now), now + Duration::from_secs(600));
    }
}
