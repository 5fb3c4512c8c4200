//! The `Schedule` tag language: parsing, named definitions, overrides and evaluation.
//!
//! A tag value is either a full schedule such as `Mon-Fri 08:00-19:00 Europe/London`, or the name of a
//! schedule defined elsewhere (for example `office-hours`). A full schedule is one or more periods
//! (optional months such as `Jan-Mar`, days such as `Mon-Fri`, `Mon#1`, `FriL` or `Day1-7`, then one or
//! more `HH:MM-HH:MM` ranges), optionally followed by an IANA time zone (UTC when omitted), holiday lists
//! (`except uk-2026`, defined next to the named schedules) and the enforcement mark `!`. Evaluation works
//! on local wall-clock time in that zone, with real daylight-saving rules.

mod definitions;
mod error;
mod eval;
mod parse;
#[cfg(test)]
mod tests;

pub use definitions::{parse_definitions, Definitions};
pub use error::ScheduleError;
pub use eval::{DaySet, Period, Schedule, TagValue, LOOKBACK};
pub use parse::{parse, parse_override, parse_spec};

/// What must hold for any input (the cargo-fuzz target `fuzz/fuzz_targets/schedule.rs`, and the
/// regression inputs in `fuzz/regressions/schedule/`, replayed by tests/fuzz_regressions.rs; the
/// `fuzzing` feature): no panic anywhere, a parsed schedule prints in a
/// form that parses back to the same schedule, and evaluating it is total.
#[cfg(feature = "fuzzing")]
pub fn fuzz_check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse(text) {
        Ok(TagValue::Spec(schedule)) => {
            let printed = schedule.to_string();
            assert_eq!(parse_spec(&printed).as_ref(), Ok(&schedule), "{text:?} printed as {printed:?}");
            for at in ["2026-03-29T00:59:59Z", "2026-03-29T01:00:00Z", "2026-10-25T01:30:00Z", "2026-11-22T23:59:00Z"] {
                let at = at.parse().expect("an instant");
                schedule.is_running_at(at);
                if let Some(change) = schedule.last_change(at) {
                    assert!(change <= at && at - change <= LOOKBACK, "{text:?}: change {change} for {at}");
                    let minute = chrono::Duration::minutes(1);
                    assert_ne!(schedule.is_running_at(change), schedule.is_running_at(change - minute), "{text:?}");
                }
            }
        }
        Ok(TagValue::Named(name)) => assert!(!name.is_empty() && !name.contains(' '), "{name:?}"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let _ = parse_override(text);
    if let Ok(definitions) = parse_definitions(text) {
        for name in definitions.names() {
            let _ = definitions.resolve(&TagValue::Named(name.to_owned()));
            if let Ok(schedule) = definitions.resolve(&TagValue::Named(format!("{name}!"))) {
                assert!(schedule.enforced(), "{name}!");
            }
        }
    }
}
