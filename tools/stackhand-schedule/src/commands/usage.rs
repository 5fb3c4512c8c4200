//! `usage`: running hours per day of a month, each day a day of the schedule's zone (23 or 25 hours on
//! DST days), and the share of an always-on month saved. Computed from the schedule's transitions
//! (`Schedule::next_change`), not by sampling, so a day's hours are exact to the minute.

use std::io::Write;

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use instance_scheduler::schedule::Schedule;

use crate::resolve::SetupError;

pub fn run(
    schedule: &Schedule,
    month: Option<&str>,
    year: Option<i32>,
    out: &mut impl Write,
) -> Result<bool, SetupError> {
    writeln!(out, "{schedule}")?;
    if let Some(year) = year {
        let (mut running, mut total) = (Duration::zero(), Duration::zero());
        for month in 1..=12 {
            let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(|| SetupError::Month(year.to_string()))?;
            let days = month_days(schedule, first);
            let (r, t) = sums(&days);
            writeln!(out, "{}  {}", first.format("%Y-%m"), line(r, t))?;
            running += r;
            total += t;
        }
        writeln!(out, "{year}     {}", line(running, total))?;
        return Ok(true);
    }
    let text = month.unwrap_or_default();
    let first =
        NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").map_err(|_| SetupError::Month(text.into()))?;
    let days = month_days(schedule, first);
    for (date, running, length) in &days {
        writeln!(out, "{}  {:>5} h of {:>5} h", date.format("%Y-%m-%d %a"), hours(*running), hours(*length))?;
    }
    let (running, total) = sums(&days);
    writeln!(out, "{}  {}", first.format("%Y-%m"), line(running, total))?;
    Ok(true)
}

/// Each day of `first`'s month: its date, how long the schedule runs in it, and the day's length.
fn month_days(schedule: &Schedule, first: NaiveDate) -> Vec<(NaiveDate, Duration, Duration)> {
    let zone = schedule.zone();
    first
        .iter_days()
        .take_while(|d| d.month() == first.month())
        .map(|date| {
            let (start, end) = (day_start(zone, date), day_start(zone, date + Duration::days(1)));
            (date, running_between(schedule, start, end), end - start)
        })
        .collect()
}

/// The instant a local day begins: its midnight, or (where a DST jump skips midnight) the first
/// minute after it that exists.
fn day_start(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight");
    (0..=180)
        .find_map(|m| zone.from_local_datetime(&(midnight + Duration::minutes(m))).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// How long the schedule runs in [start, end), from its transitions.
fn running_between(schedule: &Schedule, start: DateTime<Utc>, end: DateTime<Utc>) -> Duration {
    let (mut t, mut running, mut total) = (start, schedule.is_running_at(start), Duration::zero());
    loop {
        let change = schedule.next_change(t, end - t).filter(|c| *c < end);
        let until = change.unwrap_or(end);
        if running {
            total += until - t;
        }
        match change {
            Some(c) => {
                t = c;
                running = schedule.is_running_at(c);
            }
            None => return total,
        }
    }
}

fn sums(days: &[(NaiveDate, Duration, Duration)]) -> (Duration, Duration) {
    days.iter().fold((Duration::zero(), Duration::zero()), |(r, t), (_, run, len)| (r + *run, t + *len))
}

fn hours(d: Duration) -> String {
    format!("{:.2}", d.num_minutes() as f64 / 60.0)
}

fn line(running: Duration, total: Duration) -> String {
    let saved = total - running;
    let share = if total.is_zero() { 0.0 } else { 100.0 * saved.num_minutes() as f64 / total.num_minutes() as f64 };
    format!("running {} h of {} h; saved {} h ({share:.1}%)", hours(running), hours(total), hours(saved))
}
