//! The parsed forms of the language (days, periods, schedules, tag values), how they print, and
//! evaluation: whether a schedule has a resource running at an instant.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::error::ScheduleError;
use super::parse::{parse, parse_spec};

/// Minutes in a day; also the encoding of the `24:00` end time.
pub(super) const DAY_MINUTES: u16 = 24 * 60;

/// A set of weekdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DaySet(pub(super) u8);

const DAY_ABBREVIATIONS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

impl DaySet {
    /// No days.
    pub const EMPTY: DaySet = DaySet(0);
    /// Every day.
    pub const ALL: DaySet = DaySet(0b111_1111);
    /// Monday to Friday.
    pub const WEEKDAYS: DaySet = DaySet(0b001_1111);
    /// Saturday and Sunday.
    pub const WEEKENDS: DaySet = DaySet(0b110_0000);

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & bit(day.num_days_from_monday()) != 0
    }

    #[cfg(test)]
    /// Whether the set has no days.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(super) fn with(self, index: u32) -> DaySet {
        DaySet(self.0 | bit(index))
    }

    fn has(self, index: u32) -> bool {
        self.0 & bit(index) != 0
    }

    /// The days from `from` to `to` inclusive, wrapping past Sunday (Fri-Mon = Fri, Sat, Sun, Mon).
    pub(super) fn range(from: u32, to: u32) -> DaySet {
        let mut set = DaySet::EMPTY;
        let mut day = from;
        loop {
            set = set.with(day);
            if day == to {
                return set;
            }
            day = (day + 1) % 7;
        }
    }
}

fn bit(index: u32) -> u8 {
    1 << index
}

/// Normalized form: `Daily`, or runs of consecutive days (`Mon-Fri`, wrapping as in `Fri-Mon`) joined by `+`,
/// in Monday-first order of their first day.
impl fmt::Display for DaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == DaySet::ALL {
            return f.write_str("Daily");
        }
        let mut runs = Vec::new();
        for start in 0..7 {
            // A run starts at a day in the set whose previous day is not in the set.
            if self.has(start) && !self.has((start + 6) % 7) {
                let mut end = start;
                while self.has((end + 1) % 7) {
                    end = (end + 1) % 7;
                }
                runs.push((start, end));
            }
        }
        for (i, (start, end)) in runs.into_iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(DAY_ABBREVIATIONS[start as usize])?;
            if end != start {
                write!(f, "-{}", DAY_ABBREVIATIONS[end as usize])?;
            }
        }
        Ok(())
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

    /// Whether the period covers local `minute` (after midnight) on local `day`.
    pub fn covers(&self, day: Weekday, minute: u16) -> bool {
        if self.is_overnight() {
            (self.days.contains(day) && minute >= self.start) || (self.days.contains(day.pred()) && minute < self.end)
        } else {
            self.days.contains(day) && self.start <= minute && minute < self.end
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

/// A parsed schedule: one or more periods in one time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub(super) periods: Vec<Period>,
    pub(super) zone: Tz,
}

impl Schedule {
    #[cfg(test)]
    /// The time zone whose wall clock the periods refer to.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    #[cfg(test)]
    /// The periods, in the order written.
    pub fn periods(&self) -> &[Period] {
        &self.periods
    }

    /// Whether the instance should be running at `at`: true iff some period covers the local wall-clock
    /// time of `at` in the schedule's zone (to the minute; start inclusive, end exclusive).
    pub fn is_running_at(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.zone);
        // hour() < 24 and minute() < 60, so this fits in u16.
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let day = local.weekday();
        self.periods.iter().any(|p| p.covers(day, minute))
    }
}

/// Normalized form, e.g. `Mon-Fri 08:00-12:00 13:00-18:00 Europe/London`: consecutive periods with the same
/// days share one days token, and the zone is always written. Parsing it gives back an equal schedule.
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
        write!(f, " {}", self.zone.name())
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_spec(s)
    }
}

/// A `Schedule` tag value: a full schedule, or the name of one defined elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub enum TagValue {
    /// A schedule written in the tag.
    Spec(Schedule),
    /// The name of a schedule in the definitions.
    Named(String),
}

impl fmt::Display for TagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagValue::Spec(schedule) => schedule.fmt(f),
            TagValue::Named(name) => f.write_str(name),
        }
    }
}

impl FromStr for TagValue {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}
