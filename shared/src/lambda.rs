//! Facts about the current invocation that every function reads the same way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

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

#[cfg(test)]
mod tests {
    use super::*;

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
