//! `week`: seven days × 48 half hours, running ■ / stopped ·, in the schedule's zone and in UTC. A
//! half hour that does not exist locally (a DST jump) is blank.

use std::io::Write;

use chrono::{DateTime, Duration, NaiveDate, TimeZone as _, Utc};
use instance_scheduler::schedule::Schedule;

use crate::resolve::SetupError;

pub fn run(schedule: &Schedule, from: Option<NaiveDate>, out: &mut impl Write) -> Result<bool, SetupError> {
    let zone = schedule.zone();
    let first = from.unwrap_or_else(|| Utc::now().with_timezone(&zone).date_naive());
    let header: String = (0..24).map(|h| format!("{h:<2}")).collect();
    writeln!(out, "{schedule}")?;
    writeln!(out, "in {}   {header}", zone.name())?;
    grid(schedule, first, out, |naive| zone.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc)))?;
    writeln!(out, "in UTC   {header}")?;
    grid(schedule, first, out, |naive| Some(Utc.from_utc_datetime(&naive)))?;
    Ok(true)
}

fn grid(
    schedule: &Schedule,
    first: NaiveDate,
    out: &mut impl Write,
    instant: impl Fn(chrono::NaiveDateTime) -> Option<DateTime<Utc>>,
) -> Result<(), SetupError> {
    for day in first.iter_days().take(7) {
        let cells: String = (0..48)
            .map(|half| {
                let naive = day.and_hms_opt(0, 0, 0).expect("midnight") + Duration::minutes(30 * half);
                match instant(naive) {
                    Some(t) if schedule.is_running_at(t) => '■',
                    Some(_) => '·',
                    None => ' ',
                }
            })
            .collect();
        writeln!(out, "{}  {cells}", day.format("%a %Y-%m-%d"))?;
    }
    Ok(())
}
