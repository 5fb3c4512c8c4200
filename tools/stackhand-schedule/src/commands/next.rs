//! `next`: the next transitions, in the schedule's zone (DST marked) and in UTC.

use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::OffsetComponents as _;
use instance_scheduler::schedule::Schedule;

use crate::resolve::SetupError;

/// How far ahead a transition is looked for.
const HORIZON: Duration = Duration::days(400);

pub fn run(schedule: &Schedule, from: DateTime<Utc>, n: usize, out: &mut impl Write) -> Result<bool, SetupError> {
    let mut at = from;
    for _ in 0..n {
        let Some(change) = schedule.next_change(at, HORIZON) else {
            writeln!(out, "no transition within {} days", HORIZON.num_days())?;
            break;
        };
        let local = change.with_timezone(&schedule.zone());
        let dst = if local.offset().dst_offset().is_zero() { "" } else { " DST" };
        let word = if schedule.is_running_at(change) { "start" } else { "stop" };
        writeln!(
            out,
            "{}  {} {}{dst}  ({})",
            word,
            local.format("%a %Y-%m-%d %H:%M"),
            local.format("%Z"),
            change.format("%Y-%m-%dT%H:%MZ")
        )?;
        at = change;
    }
    Ok(true)
}
