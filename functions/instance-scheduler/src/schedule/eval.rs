//! The parsed forms of the language (days, periods, schedules, tag values), how they print, and
//! evaluation: whether a schedule has a resource running at an instant.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, Timelike, Utc, Weekday};
use chrono_tz::Tz;

/// Minutes in a day; also the encoding of the `24:00` end time.
pub(super) const DAY_MINUTES: u16 = 24 * 60;

/// How far back [`Schedule::last_change`] looks: longer than any month, so a monthly rule (`Mon#1`,
/// `DayL`) has had a chance to change the state at least once.
pub const LOOKBACK: Duration = Duration::days(35);

/// Every month (no month restriction).
pub(super) const ALL_MONTHS: u16 = 0b1111_1111_1111;

/// The bit of the last day of the month in [`DaySet::month_days`] (bits 0..=30 are days 1..=31).
pub(super) const LAST_DAY_BIT: u32 = 1 << 31;

/// The occurrence index of "the last one of the month" in [`DaySet::nth`] (0..=4 are the first to the
/// fifth).
pub(super) const LAST_OCCURRENCE: u32 = 5;

/// Which local dates a period starts on: the union of its day items (every such weekday, the nth or last
/// such weekday of the month, days of the month), restricted to its months.
///
/// The name is historical: it began as a set of weekdays, and plain weekday sets still print and compare
/// as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DaySet {
    /// Bit `i`: every weekday `i` (0 = Monday).
    pub(super) weekdays: u8,
    /// Bit `6 * weekday + k`: the (k+1)th such weekday of the month (k in 0..=4), or the last one
    /// (k = [`LAST_OCCURRENCE`]).
    pub(super) nth: u64,
    /// Bit `d - 1`: day `d` of the month (1..=31); [`LAST_DAY_BIT`]: the last day of the month.
    pub(super) month_days: u32,
    /// Bit `m - 1`: month `m` (1 = January); [`ALL_MONTHS`] when unrestricted.
    pub(super) months: u16,
}

const DAY_ABBREVIATIONS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
pub(super) const MONTH_ABBREVIATIONS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

impl Default for DaySet {
    fn default() -> Self {
        DaySet::EMPTY
    }
}

impl DaySet {
    /// No days.
    pub const EMPTY: DaySet = DaySet::weekdays(0);
    /// Every day.
    pub const ALL: DaySet = DaySet::weekdays(0b111_1111);
    /// Monday to Friday.
    pub const WEEKDAYS: DaySet = DaySet::weekdays(0b001_1111);
    /// Saturday and Sunday.
    pub const WEEKENDS: DaySet = DaySet::weekdays(0b110_0000);

    const fn weekdays(bits: u8) -> DaySet {
        DaySet { weekdays: bits, nth: 0, month_days: 0, months: ALL_MONTHS }
    }

    /// Whether every `day` is in the set (as a plain weekday, not only its nth occurrence).
    pub fn contains(self, day: Weekday) -> bool {
        self.weekdays & bit(day.num_days_from_monday()) != 0
    }

    #[cfg(test)]
    /// Whether the set has no days.
    pub fn is_empty(self) -> bool {
        self.weekdays == 0 && self.nth == 0 && self.month_days == 0
    }

    /// Whether a period with these days starts on local `date`.
    pub fn matches(self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month0()) == 0 {
            return false;
        }
        let weekday = date.weekday().num_days_from_monday();
        if self.has(weekday) {
            return true;
        }
        let occurrence = date.day0() / 7;
        let is_last_weekday = (date + Duration::days(7)).month() != date.month();
        if self.nth & nth_bit(weekday, occurrence) != 0
            || (is_last_weekday && self.nth & nth_bit(weekday, LAST_OCCURRENCE) != 0)
        {
            return true;
        }
        let is_last_day = date.succ_opt().is_none_or(|next| next.month() != date.month());
        self.month_days & (1 << date.day0()) != 0 || (is_last_day && self.month_days & LAST_DAY_BIT != 0)
    }

    pub(super) fn with(self, index: u32) -> DaySet {
        DaySet { weekdays: self.weekdays | bit(index), ..self }
    }

    /// The union of the day items of both (the months of `self` are kept).
    pub(super) fn union(self, other: DaySet) -> DaySet {
        DaySet {
            weekdays: self.weekdays | other.weekdays,
            nth: self.nth | other.nth,
            month_days: self.month_days | other.month_days,
            months: self.months,
        }
    }

    /// The same days, only in `months` (a bit set as in [`DaySet::months`]).
    pub(super) fn in_months(self, months: u16) -> DaySet {
        DaySet { months, ..self }
    }

    fn has(self, index: u32) -> bool {
        self.weekdays & bit(index) != 0
    }

    /// The days from `from` to `to` inclusive, wrapping past Sunday (Fri-Mon = Fri, Sat, Sun, Mon).
    pub(super) fn range(from: u32, to: u32) -> DaySet {
        DaySet::weekdays(wrapping_runs_mask(from, to, 7) as u8)
    }

    fn fmt_weekdays(self, items: &mut Vec<String>) {
        if self.weekdays == DaySet::ALL.weekdays {
            items.push("Daily".to_string());
            return;
        }
        for (start, end) in wrapping_runs(u32::from(self.weekdays), 7) {
            let mut item = DAY_ABBREVIATIONS[start as usize].to_string();
            if end != start {
                item = format!("{item}-{}", DAY_ABBREVIATIONS[end as usize]);
            }
            items.push(item);
        }
    }

    fn fmt_nth(self, items: &mut Vec<String>) {
        for weekday in 0..7 {
            for occurrence in 0..=LAST_OCCURRENCE {
                if self.nth & nth_bit(weekday, occurrence) != 0 {
                    let day = DAY_ABBREVIATIONS[weekday as usize];
                    items.push(if occurrence == LAST_OCCURRENCE {
                        format!("{day}L")
                    } else {
                        format!("{day}#{}", occurrence + 1)
                    });
                }
            }
        }
    }

    fn fmt_month_days(self, items: &mut Vec<String>) {
        let mut day = 0;
        while day < 31 {
            if self.month_days & (1 << day) == 0 {
                day += 1;
                continue;
            }
            let start = day;
            while day + 1 < 31 && self.month_days & (1 << (day + 1)) != 0 {
                day += 1;
            }
            items.push(if start == day {
                format!("Day{}", start + 1)
            } else {
                format!("Day{}-{}", start + 1, day + 1)
            });
            day += 1;
        }
        if self.month_days & LAST_DAY_BIT != 0 {
            items.push("DayL".to_string());
        }
    }
}

/// The bit of the (occurrence+1)th `weekday` of the month in [`DaySet::nth`].
pub(super) fn nth_bit(weekday: u32, occurrence: u32) -> u64 {
    1 << (6 * weekday + occurrence)
}

fn bit(index: u32) -> u8 {
    1 << index
}

/// The bits from `from` to `to` inclusive in a cycle of `len` (wrapping past the end).
pub(super) fn wrapping_runs_mask(from: u32, to: u32, len: u32) -> u32 {
    let mut mask = 0;
    let mut i = from;
    loop {
        mask |= 1 << i;
        if i == to {
            return mask;
        }
        i = (i + 1) % len;
    }
}

/// The runs of consecutive set bits of `mask` in a cycle of `len`, as (first, last), in order of their
/// first bit; a run may wrap past the end (Fri-Mon, Nov-Feb).
fn wrapping_runs(mask: u32, len: u32) -> Vec<(u32, u32)> {
    let has = |i: u32| mask & (1 << i) != 0;
    let mut runs = Vec::new();
    for start in 0..len {
        // A run starts at a set bit whose predecessor is not set.
        if has(start) && !has((start + len - 1) % len) {
            let mut end = start;
            while has((end + 1) % len) {
                end = (end + 1) % len;
            }
            runs.push((start, end));
        }
    }
    runs
}

/// Prints a month set (not [`ALL_MONTHS`]) as runs joined by `+`, e.g. `Jan-Mar+Nov`.
struct Months(u16);

impl fmt::Display for Months {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (start, end)) in wrapping_runs(u32::from(self.0), 12).into_iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(MONTH_ABBREVIATIONS[start as usize])?;
            if end != start {
                write!(f, "-{}", MONTH_ABBREVIATIONS[end as usize])?;
            }
        }
        Ok(())
    }
}

/// Normalized form: the months token first when there is a restriction (`Jan-Mar `), then `Daily` or runs
/// of consecutive weekdays (`Mon-Fri`, wrapping as in `Fri-Mon`), then nth and last weekdays (`Mon#1`,
/// `FriL`), then days of the month (`Day1-7`, `DayL`), all joined by `+`.
impl fmt::Display for DaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.months != ALL_MONTHS {
            write!(f, "{} ", Months(self.months))?;
        }
        let mut items = Vec::new();
        self.fmt_weekdays(&mut items);
        self.fmt_nth(&mut items);
        self.fmt_month_days(&mut items);
        f.write_str(&items.join("+"))
    }
}

/// One period: days, a start and an end time in minutes after local midnight.
///
/// When `start > end` the period crosses midnight and belongs to its start day: `Fri 22:00-06:00` runs
/// from Friday 22:00 to Saturday 06:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub(super) days: DaySet,
    pub(super) start: u16,
    pub(super) end: u16,
}

impl Period {
    #[cfg(test)]
    /// The days on which the period starts.
    pub fn days(&self) -> DaySet {
        self.days
    }

    #[cfg(test)]
    /// Start time in minutes after local midnight (0..=1439).
    pub fn start_minute(&self) -> u16 {
        self.start
    }

    #[cfg(test)]
    /// End time in minutes after local midnight (0..=1440; 1440 is 24:00), exclusive.
    pub fn end_minute(&self) -> u16 {
        self.end
    }

    /// Whether the period crosses midnight.
    pub fn is_overnight(&self) -> bool {
        self.start > self.end
    }

    /// Whether the period covers local `minute` (after midnight) on local `date` (holidays aside).
    pub fn covers(&self, date: NaiveDate, minute: u16) -> bool {
        self.covers_after(date, date.pred_opt(), minute)
    }

    /// As [`Period::covers`], where `yesterday` is `None` when no period may start on the day before
    /// (a holiday): an overnight period belongs to its start day.
    fn covers_after(&self, today: NaiveDate, yesterday: Option<NaiveDate>, minute: u16) -> bool {
        let started_yesterday = || yesterday.is_some_and(|day| self.days.matches(day));
        if self.is_overnight() {
            (minute >= self.start && self.days.matches(today)) || (minute < self.end && started_yesterday())
        } else {
            self.start <= minute && minute < self.end && self.days.matches(today)
        }
    }

    fn fmt_times(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", HhMm(self.start), HhMm(self.end))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.days)?;
        self.fmt_times(f)
    }
}

struct HhMm(u16);

impl fmt::Display for HhMm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// The holiday lists a schedule names after `except`, and their dates once resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Holidays {
    /// The list names, as written, without duplicates, in order.
    pub(super) lists: Vec<String>,
    /// All their dates as inclusive ranges, sorted by start; `None` until resolved against the definitions
    /// (then a schedule is evaluated as if it had no holidays).
    pub(super) dates: Option<Vec<(NaiveDate, NaiveDate)>>,
}

impl Holidays {
    fn contains(&self, date: NaiveDate) -> bool {
        let Some(ranges) = &self.dates else { return false };
        // Ranges may overlap, so look at every range starting on or before `date`; lists are short.
        let candidates = &ranges[..ranges.partition_point(|(start, _)| *start <= date)];
        candidates.iter().any(|(_, end)| date <= *end)
    }
}

/// A parsed schedule: one or more periods in one time zone, the holiday lists it skips, and whether it is
/// enforced at every run.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub(super) periods: Vec<Period>,
    pub(super) zone: Tz,
    pub(super) holidays: Holidays,
    pub(super) enforced: bool,
}

impl Schedule {
    /// The time zone whose wall clock the periods refer to.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    #[cfg(test)]
    /// The periods, in the order written.
    pub fn periods(&self) -> &[Period] {
        &self.periods
    }

    /// Whether the schedule asks to be enforced at every run (a trailing `!`, on the tag or in the
    /// definition), rather than only acted on when its state changes.
    pub fn enforced(&self) -> bool {
        self.enforced
    }

    /// The holiday lists named after `except`, in the order written. A schedule parsed from a tag has
    /// them unresolved (no dates) until [`Definitions::resolve_value`](super::Definitions::resolve_value).
    pub fn holiday_lists(&self) -> &[String] {
        &self.holidays.lists
    }

    /// Whether the holiday lists this schedule names have their dates (always true when it names none).
    pub fn holidays_resolved(&self) -> bool {
        self.holidays.lists.is_empty() || self.holidays.dates.is_some()
    }

    /// The same schedule, enforced.
    pub(super) fn into_enforced(self) -> Schedule {
        Schedule { enforced: true, ..self }
    }

    /// Whether the instance should be running at `at`: true iff the local date of `at` in the schedule's
    /// zone is not a holiday and some period covers its local wall-clock time (to the minute; start
    /// inclusive, end exclusive). A period starting on a holiday does not happen at all, not even the
    /// part of an overnight period after midnight.
    pub fn is_running_at(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.zone);
        let today = local.date_naive();
        if self.holidays.contains(today) {
            return false;
        }
        let yesterday = today.pred_opt().filter(|day| !self.holidays.contains(*day));
        let minute = minute_of_day(local.hour(), local.minute());
        self.periods.iter().any(|p| p.covers_after(today, yesterday, minute))
    }

    /// The most recent minute-aligned instant `t <= at` where the state changed (`is_running_at(t) !=
    /// is_running_at(t - 1 minute)`), looking back at most [`LOOKBACK`]; `None` when it did not change
    /// in that time.
    ///
    /// Cheap: rather than every minute, it evaluates only the local times where a change can happen —
    /// midnight (a new date: other days, months, holidays) and each period's start and end — stepping
    /// back from one to the previous while the zone's UTC offset stays the same. Across an offset change
    /// (DST) it goes minute by minute until the previous such time, so a period starting or ending in a
    /// skipped or repeated hour is found where it really happens. (The one assumption: a zone does not
    /// change its offset and back again within a day; tzdata has no such day in living memory.) About 3
    /// evaluations per boundary per day, plus at most a day of minutes per offset change: tens of
    /// microseconds for 35 days, against milliseconds for a minute-by-minute scan.
    pub fn last_change(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let newest = floor_to_minute(at);
        let oldest = newest - LOOKBACK;
        let minute = Duration::minutes(1);
        let boundaries = self.boundaries();
        let state = self.is_running_at(newest);
        let mut t = newest;
        while t >= oldest {
            let local = t.with_timezone(&self.zone);
            let now = minute_of_day(local.hour(), local.minute());
            // `boundaries` holds 0, so there always is one at or before `now`.
            let previous = boundaries.iter().rev().copied().find(|&b| b <= now).unwrap_or(0);
            let candidate = t - Duration::minutes(i64::from(now - previous));
            let same_offset = candidate.with_timezone(&self.zone).offset().fix() == local.offset().fix();
            if same_offset {
                // Local time ran from `previous` to `now` with no boundary in between: one state.
                if candidate < oldest {
                    return None;
                }
                if self.is_running_at(candidate - minute) != state {
                    return Some(candidate);
                }
                t = candidate - minute;
            } else {
                let floor = candidate.max(oldest);
                while t >= floor {
                    if self.is_running_at(t - minute) != state {
                        return Some(t);
                    }
                    t -= minute;
                }
            }
        }
        None
    }

    /// The earliest minute-aligned instant `t > after` where the state changes (`is_running_at(t) !=
    /// is_running_at(t - 1 minute)`), looking ahead at most `within`; `None` when it does not change in
    /// that time. [`Schedule::last_change`] forwards: from one local time where a change can happen to
    /// the next while the zone's offset stays the same, minute by minute across an offset change.
    pub fn next_change(&self, after: DateTime<Utc>, within: Duration) -> Option<DateTime<Utc>> {
        let minute = Duration::minutes(1);
        let mut t = floor_to_minute(after) + minute;
        let newest = t + within;
        let boundaries = self.boundaries();
        let state = self.is_running_at(t - minute);
        while t <= newest {
            if self.is_running_at(t) != state {
                return Some(t);
            }
            let local = t.with_timezone(&self.zone);
            let now = minute_of_day(local.hour(), local.minute());
            // The next local time a change can happen: a boundary after now, else the next midnight.
            let next = boundaries.iter().copied().find(|&b| b > now).unwrap_or(DAY_MINUTES);
            let candidate = t + Duration::minutes(i64::from(next - now));
            if candidate.with_timezone(&self.zone).offset().fix() == local.offset().fix() {
                // No boundary between `now` and `next` on this day, in one offset: one state.
                t = candidate;
            } else {
                let ceiling = candidate.min(newest + minute);
                while t < ceiling {
                    t += minute;
                    if t <= newest && self.is_running_at(t) != state {
                        return Some(t);
                    }
                }
            }
        }
        None
    }

    /// The local minutes of the day at which the state can change: midnight, and every start and end.
    fn boundaries(&self) -> Vec<u16> {
        let mut boundaries: Vec<u16> =
            std::iter::once(0).chain(self.periods.iter().flat_map(|p| [p.start, p.end % DAY_MINUTES])).collect();
        boundaries.sort_unstable();
        boundaries.dedup();
        boundaries
    }
}

fn minute_of_day(hour: u32, minute: u32) -> u16 {
    // hour < 24 and minute < 60, so this fits in u16.
    (hour * 60 + minute) as u16
}

fn floor_to_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    at - Duration::seconds(i64::from(at.second())) - Duration::nanoseconds(i64::from(at.nanosecond()))
}

/// Normalized form, e.g. `Mon-Fri 08:00-12:00 13:00-18:00 Europe/London except uk-2026 !`: consecutive
/// periods with the same days share one days token, the zone is always written, then the holiday lists
/// and the enforcement mark when there are. Parsing it gives back an equal schedule (holiday dates aside:
/// they come from the definitions).
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous: Option<DaySet> = None;
        for period in &self.periods {
            if previous != Some(period.days) {
                if previous.is_some() {
                    f.write_str(" ")?;
                }
                write!(f, "{}", period.days)?;
            }
            f.write_str(" ")?;
            period.fmt_times(f)?;
            previous = Some(period.days);
        }
        write!(f, " {}", self.zone.name())?;
        if !self.holidays.lists.is_empty() {
            write!(f, " except {}", self.holidays.lists.join("+"))?;
        }
        if self.enforced {
            f.write_str(" !")?;
        }
        Ok(())
    }
}

/// A `Schedule` tag value: a full schedule, or the name of one defined elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub enum TagValue {
    /// A schedule written in the tag.
    Spec(Schedule),
    /// The name of a schedule in the definitions, followed by `!` when the tag asks for enforcement
    /// (`office-hours!`); [`Definitions::resolve`](super::Definitions::resolve) understands both.
    Named(String),
}

impl TagValue {
    /// Whether the value needs the schedule definitions: it is a name, or it names holiday lists.
    pub fn needs_definitions(&self) -> bool {
        match self {
            TagValue::Spec(schedule) => !schedule.holidays.lists.is_empty(),
            TagValue::Named(_) => true,
        }
    }
}

impl fmt::Display for TagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagValue::Spec(schedule) => schedule.fmt(f),
            TagValue::Named(name) => f.write_str(name),
        }
    }
}
