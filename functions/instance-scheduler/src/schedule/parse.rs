//! Reading the language: `Schedule` tag values (a full schedule or a schedule name) and
//! `ScheduleOverride` values.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use std::str::FromStr;

use super::error::ScheduleError;
use super::eval::{
    nth_bit, wrapping_runs_mask, DaySet, Holidays, Period, Schedule, TagValue, DAY_MINUTES, LAST_DAY_BIT,
    LAST_OCCURRENCE,
};

/// Parses a `Schedule` tag value. A single token without `:` that is not a days or months expression and is
/// made of letters, digits, `-`, `_` and `.` is a name (e.g. `office-hours`), optionally followed by the
/// enforcement mark `!` (`office-hours!`, kept in the name); anything else must be a full schedule.
pub fn parse(value: &str) -> Result<TagValue, ScheduleError> {
    check_characters(value)?;
    let (tokens, enforced) = split_enforcement(tokenize(value))?;
    if let [token] = tokens.as_slice() {
        if !token.contains(':') && !is_selector(token) && is_name(token) {
            let mark = if enforced { "!" } else { "" };
            return Ok(TagValue::Named(format!("{token}{mark}")));
        }
    }
    parse_tokens(&tokens, enforced).map(TagValue::Spec)
}

/// Parses a full schedule; a schedule name is an error here. Holiday lists it names are left unresolved.
pub fn parse_spec(value: &str) -> Result<Schedule, ScheduleError> {
    check_characters(value)?;
    let (tokens, enforced) = split_enforcement(tokenize(value))?;
    parse_tokens(&tokens, enforced)
}

/// Parses a `ScheduleOverride` tag value: an RFC 3339 date and time with an offset, with or without seconds
/// (`2026-11-23T08:00:00Z`, `2026-11-23T08:00:00+01:00`, `2026-11-23T08:00Z`).
pub fn parse_override(value: &str) -> Result<DateTime<Utc>, ScheduleError> {
    let value = value.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(at.with_timezone(&Utc));
    }
    let with_offset = match value.strip_suffix(['Z', 'z']) {
        Some(rest) => format!("{rest}+00:00"),
        None => value.to_string(),
    };
    DateTime::parse_from_str(&with_offset, "%Y-%m-%dT%H:%M%:z")
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| ScheduleError::BadOverride { value: value.to_string() })
}

/// What RDS allows in tag values, plus `#` (nth weekday) and `!` (enforcement), which only EC2 and Auto
/// Scaling tags and the definitions can hold.
fn is_allowed_character(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@' | '#' | '!')
}

pub(super) fn check_characters(value: &str) -> Result<(), ScheduleError> {
    match value.chars().enumerate().find(|(_, c)| !is_allowed_character(*c)) {
        Some((index, character)) => Err(ScheduleError::BadCharacter { character, position: index + 1 }),
        None => Ok(()),
    }
}

fn tokenize(value: &str) -> Vec<&str> {
    value.split(' ').filter(|token| !token.is_empty()).collect()
}

/// Takes the enforcement mark off the end: a last token `!`, or a `!` ending the last token
/// (`office-hours!`, `Europe/London!`). A `!` anywhere else is an error.
fn split_enforcement(mut tokens: Vec<&str>) -> Result<(Vec<&str>, bool), ScheduleError> {
    let enforced = match tokens.last().copied() {
        Some("!") => {
            tokens.pop();
            true
        }
        Some(last) => match last.strip_suffix('!') {
            Some(rest) => {
                *tokens.last_mut().expect("a last token") = rest;
                true
            }
            None => false,
        },
        None => false,
    };
    if let Some(token) = tokens.iter().find(|token| token.contains('!')) {
        return Err(ScheduleError::MisplacedEnforcement { token: (*token).to_string() });
    }
    Ok((tokens, enforced))
}

/// Whether `token` reads as days or months (so it is never a schedule name).
pub(super) fn is_selector(token: &str) -> bool {
    parse_days(token).is_ok() || matches!(parse_months(token), Some(Ok(_)))
}

pub(super) fn is_name(token: &str) -> bool {
    token.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_time_range_token(token: &str) -> bool {
    token.contains(':') || token.starts_with(|c: char| c.is_ascii_digit())
}

/// The days and months tokens read since the last time range, waiting for one.
#[derive(Default)]
struct Pending<'a> {
    days: Option<(&'a str, DaySet)>,
    months: Option<(&'a str, u16)>,
}

impl<'a> Pending<'a> {
    fn is_empty(&self) -> bool {
        self.days.is_none() && self.months.is_none()
    }

    /// The first token read, for errors.
    fn first_token(&self) -> Option<&'a str> {
        match (self.days, self.months) {
            (Some((days, _)), Some((months, _))) => Some(if days.as_ptr() < months.as_ptr() { days } else { months }),
            (Some((days, _)), None) => Some(days),
            (None, Some((months, _))) => Some(months),
            (None, None) => None,
        }
    }

    /// The days these tokens select: months alone mean every day of those months.
    fn selection(&self) -> Option<DaySet> {
        let days = self.days.map(|(_, days)| days);
        match self.months {
            Some((_, months)) => Some(days.unwrap_or(DaySet::ALL).in_months(months)),
            None => days,
        }
    }
}

fn parse_tokens(tokens: &[&str], enforced: bool) -> Result<Schedule, ScheduleError> {
    let (tokens, lists) = split_holidays(tokens)?;
    let tokens = tokens.as_slice();
    let Some(last) = tokens.len().checked_sub(1) else {
        return Err(ScheduleError::Empty);
    };
    if let [token] = tokens {
        if let Some(Err(month_error)) = parse_months(token) {
            return Err(month_error);
        }
        if !token.contains(':') && !is_selector(token) {
            if let Err(day_error) = parse_days(token) {
                return Err(single_token_error(token, day_error));
            }
        }
    }

    let mut periods = Vec::new();
    let mut zone = None;
    // The days of the current period, and the days and months tokens still waiting for a time range.
    let mut current_days: Option<DaySet> = None;
    let mut pending = Pending::default();

    for (index, &token) in tokens.iter().enumerate() {
        if is_time_range_token(token) {
            let (start, end) = parse_time_range(token)?;
            if let Some(days) = pending.selection() {
                current_days = Some(days);
            }
            let days = current_days.ok_or_else(|| ScheduleError::TimeRangeWithoutDays { range: token.to_string() })?;
            periods.push(Period { days, start, end });
            pending = Pending::default();
            continue;
        }
        if let Some(months) = parse_months(token) {
            let months = months?;
            if let Some((first, _)) = pending.months {
                return Err(ScheduleError::MonthsWithoutTimeRange {
                    first: first.to_string(),
                    second: token.to_string(),
                });
            }
            pending.months = Some((token, months));
            continue;
        }
        match parse_days(token) {
            Ok(days) => {
                if let Some((first, _)) = pending.days {
                    return Err(ScheduleError::DaysWithoutTimeRange {
                        first: first.to_string(),
                        second: token.to_string(),
                    });
                }
                pending.days = Some((token, days));
            }
            Err(day_error) => match Tz::from_str_insensitive(token) {
                Ok(tz) if index == last => zone = Some(tz),
                Ok(_) => return Err(ScheduleError::ZoneNotLast { zone: token.to_string() }),
                Err(_) => {
                    if let Some(days) = pending.first_token() {
                        return Err(ScheduleError::NoTimeRange { days: days.to_string() });
                    }
                    return Err(if looks_like_zone(token, index == last, &day_error) {
                        ScheduleError::UnknownZone { zone: token.to_string() }
                    } else {
                        day_error
                    });
                }
            },
        }
    }

    if let Some(days) = pending.first_token() {
        return Err(ScheduleError::NoTimeRange { days: days.to_string() });
    }
    debug_assert!(pending.is_empty());
    let zone = zone.unwrap_or(Tz::UTC);
    if periods.is_empty() {
        // Only reachable for a lone zone, which single_token_error reports; kept as a safe fallback.
        return Err(ScheduleError::ZoneOnly { zone: zone.name().to_string() });
    }
    let holidays = Holidays { lists, dates: None };
    Ok(Schedule { periods, zone, holidays, enforced })
}

/// Takes the holiday clause `except LIST[+LIST…]` out of the tokens. It must follow every period; the
/// zone may come before or after it.
fn split_holidays<'a>(tokens: &[&'a str]) -> Result<(Vec<&'a str>, Vec<String>), ScheduleError> {
    let Some(at) = tokens.iter().position(|token| token.eq_ignore_ascii_case("except")) else {
        return Ok((tokens.to_vec(), Vec::new()));
    };
    let Some(&lists_token) = tokens.get(at + 1) else {
        return Err(ScheduleError::ExceptWithoutList);
    };
    let mut lists: Vec<String> = Vec::new();
    for list in lists_token.split('+') {
        if list.is_empty() || !is_name(list) {
            return Err(ScheduleError::BadHolidayListName { token: lists_token.to_string() });
        }
        if !lists.iter().any(|known| known == list) {
            lists.push(list.to_string());
        }
    }
    let after = &tokens[at + 2..];
    let zone_only = match after {
        [] => true,
        [zone] => Tz::from_str_insensitive(zone).is_ok(),
        _ => false,
    };
    if !zone_only {
        return Err(ScheduleError::ExceptNotLast { lists: lists_token.to_string() });
    }
    let mut rest = tokens[..at].to_vec();
    rest.extend_from_slice(after);
    Ok((rest, lists))
}

/// Whether an unparseable token is better reported as an unknown zone than as an unknown day.
fn looks_like_zone(token: &str, is_last: bool, day_error: &ScheduleError) -> bool {
    if token.contains('/') {
        return true;
    }
    // A plain word (not a day range or list) in the last place is most likely a zone.
    is_last && matches!(day_error, ScheduleError::UnknownDay { item, .. } if item == token)
}

fn single_token_error(token: &str, day_error: ScheduleError) -> ScheduleError {
    if Tz::from_str_insensitive(token).is_ok() {
        ScheduleError::ZoneOnly { zone: token.to_string() }
    } else if is_name(token) {
        ScheduleError::NameNotAllowed { name: token.to_string() }
    } else if token.contains('+') {
        day_error
    } else if token.contains('/') {
        ScheduleError::UnknownZone { zone: token.to_string() }
    } else {
        ScheduleError::NotASchedule { token: token.to_string() }
    }
}

fn day_index(word: &str) -> Option<u32> {
    let index = match word.to_ascii_lowercase().as_str() {
        "mon" | "monday" => 0,
        "tue" | "tues" | "tuesday" => 1,
        "wed" | "wednesday" => 2,
        "thu" | "thur" | "thurs" | "thursday" => 3,
        "fri" | "friday" => 4,
        "sat" | "saturday" => 5,
        "sun" | "sunday" => 6,
        _ => return None,
    };
    Some(index)
}

fn day_keyword(word: &str) -> Option<DaySet> {
    match word.to_ascii_lowercase().as_str() {
        "daily" => Some(DaySet::ALL),
        "weekdays" => Some(DaySet::WEEKDAYS),
        "weekends" => Some(DaySet::WEEKENDS),
        _ => None,
    }
}

/// Parses a days token: items joined by `+`, each a day (`Mon`), a range of days (`Mon-Fri`), a keyword
/// (`Daily`, `Weekdays`, `Weekends`), an nth weekday (`Mon#1` … `Mon#5`), a last weekday (`FriL`), a day of
/// the month (`Day1`, `DayL`) or a range of them (`Day1-7`, `Day25-L`).
pub(super) fn parse_days(token: &str) -> Result<DaySet, ScheduleError> {
    let unknown = |item: &str| ScheduleError::UnknownDay { item: item.to_string(), token: token.to_string() };
    let mut set = DaySet::EMPTY;
    for item in token.split('+') {
        if item.is_empty() {
            return Err(ScheduleError::EmptyDayListItem { token: token.to_string() });
        }
        if let Some(days) = day_keyword(item) {
            set = set.union(days);
            continue;
        }
        if let Some(days) = parse_month_days(item) {
            set = set.union(days?);
            continue;
        }
        let days = match item.split_once('-') {
            None => match parse_nth_weekday(item, token) {
                Some(days) => days?,
                None => DaySet::EMPTY.with(day_index(item).ok_or_else(|| unknown(item))?),
            },
            Some((from, to)) => {
                let bad_range = || ScheduleError::BadDayRange { item: item.to_string() };
                if from.is_empty() || to.is_empty() || to.contains('-') {
                    return Err(bad_range());
                }
                if day_keyword(from).is_some() || day_keyword(to).is_some() {
                    return Err(bad_range());
                }
                if parse_nth_weekday(from, token).is_some() || parse_nth_weekday(to, token).is_some() {
                    return Err(bad_range());
                }
                let from = day_index(from).ok_or_else(|| unknown(from))?;
                let to = day_index(to).ok_or_else(|| unknown(to))?;
                DaySet::range(from, to)
            }
        };
        set = set.union(days);
    }
    Ok(set)
}

/// An nth weekday (`Mon#1` … `Mon#5`) or a last weekday (`FriL`, also `Fri#L`); `None` when `item` is
/// neither (no `#`, and not a day name followed by `L`).
fn parse_nth_weekday(item: &str, token: &str) -> Option<Result<DaySet, ScheduleError>> {
    let (day, occurrence) = match item.split_once('#') {
        Some((day, which)) => (day, Some(which)),
        None => {
            let day = item.strip_suffix(['L', 'l'])?;
            day_index(day)?;
            (day, None)
        }
    };
    let Some(weekday) = day_index(day) else {
        return Some(Err(ScheduleError::UnknownDay { item: day.to_string(), token: token.to_string() }));
    };
    let occurrence = match occurrence {
        None => LAST_OCCURRENCE,
        Some("L" | "l") => LAST_OCCURRENCE,
        // One digit only, so that `Mon#01` and `Mon#+1` are errors rather than synonyms.
        Some(n @ ("1" | "2" | "3" | "4" | "5")) => u32::from(n.as_bytes()[0] - b'1'),
        Some(_) => return Some(Err(ScheduleError::BadNthDay { item: item.to_string(), day: day.to_string() })),
    };
    Some(Ok(DaySet { nth: nth_bit(weekday, occurrence), ..DaySet::EMPTY }))
}

/// Days of the month: `Day1` … `Day31`, `DayL` (the last day), a range `Day1-7`, or a range to the last
/// day `Day25-L` (the same as `Day25-31`: later days do not exist in shorter months). `None` when `item`
/// does not start with `Day` followed by a digit, `L` or `L-`.
fn parse_month_days(item: &str) -> Option<Result<DaySet, ScheduleError>> {
    let prefix = item.get(..3)?;
    if !prefix.eq_ignore_ascii_case("day") {
        return None;
    }
    let rest = &item[3..];
    let starts_with_last =
        rest.eq_ignore_ascii_case("l") || rest.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("l-"));
    if !(rest.starts_with(|c: char| c.is_ascii_digit()) || starts_with_last) {
        return None;
    }
    Some(
        month_days_mask(rest)
            .map(|month_days| DaySet { month_days, ..DaySet::EMPTY })
            .ok_or_else(|| ScheduleError::BadMonthDay { item: item.to_string() }),
    )
}

/// The [`DaySet::month_days`] bits of what follows `Day`: `L`, `N`, `N-M` or `N-L`; `None` when invalid.
fn month_days_mask(rest: &str) -> Option<u32> {
    let number = |s: &str| -> Option<u32> {
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().filter(|n| (1..=31).contains(n))
    };
    if rest.eq_ignore_ascii_case("l") {
        return Some(LAST_DAY_BIT);
    }
    let (from, to) = match rest.split_once('-') {
        None => (number(rest)?, number(rest)?),
        Some((from, to)) => (number(from)?, if to.eq_ignore_ascii_case("l") { 31 } else { number(to)? }),
    };
    (from <= to).then(|| (from - 1..to).fold(0, |mask, day| mask | 1 << day))
}

fn month_index(word: &str) -> Option<u32> {
    let index = match word.to_ascii_lowercase().as_str() {
        "jan" | "january" => 0,
        "feb" | "february" => 1,
        "mar" | "march" => 2,
        "apr" | "april" => 3,
        "may" => 4,
        "jun" | "june" => 5,
        "jul" | "july" => 6,
        "aug" | "august" => 7,
        "sep" | "sept" | "september" => 8,
        "oct" | "october" => 9,
        "nov" | "november" => 10,
        "dec" | "december" => 11,
        _ => return None,
    };
    Some(index)
}

/// Parses a months token: months (`Jan`), ranges (`Jan-Mar`, wrapping as in `Nov-Feb`) joined by `+`.
/// `None` when no word of the token is a month, so it is something else (days, a zone).
pub(super) fn parse_months(token: &str) -> Option<Result<u16, ScheduleError>> {
    if token.contains('/') || !token.split(['+', '-']).any(|word| month_index(word).is_some()) {
        return None;
    }
    let unknown = |item: &str| ScheduleError::UnknownMonth { item: item.to_string(), token: token.to_string() };
    let mut months = 0u16;
    for item in token.split('+') {
        if item.is_empty() {
            return Some(Err(ScheduleError::EmptyMonthListItem { token: token.to_string() }));
        }
        let mask = match item.split_once('-') {
            None => match month_index(item) {
                Some(index) => 1 << index,
                None => return Some(Err(unknown(item))),
            },
            Some((from, to)) => {
                if from.is_empty() || to.is_empty() || to.contains('-') {
                    return Some(Err(ScheduleError::BadMonthRange { item: item.to_string() }));
                }
                let (Some(from), Some(to)) = (month_index(from), month_index(to)) else {
                    let word = if month_index(from).is_none() { from } else { to };
                    return Some(Err(unknown(word)));
                };
                wrapping_runs_mask(from, to, 12) as u16
            }
        };
        months |= mask;
    }
    Some(Ok(months))
}

/// Parses `HH:MM` (or `H:MM`) into minutes after midnight; `24:00` is 1440.
pub(super) fn parse_time(time: &str) -> Result<u16, ScheduleError> {
    let bad = || ScheduleError::BadTime { time: time.to_string() };
    let (hours, minutes) = time.split_once(':').ok_or_else(bad)?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hours) || hours.len() > 2 || !all_digits(minutes) || minutes.len() != 2 {
        return Err(bad());
    }
    let hours: u16 = hours.parse().map_err(|_| bad())?;
    let minutes: u16 = minutes.parse().map_err(|_| bad())?;
    if minutes > 59 || hours > 24 || (hours == 24 && minutes != 0) {
        return Err(bad());
    }
    Ok(hours * 60 + minutes)
}

pub(super) fn parse_time_range(token: &str) -> Result<(u16, u16), ScheduleError> {
    let bad_range = || ScheduleError::BadTimeRange { token: token.to_string() };
    let (start, end) = token.split_once('-').ok_or_else(bad_range)?;
    if start.is_empty() || end.is_empty() || end.contains('-') {
        return Err(bad_range());
    }
    let start = parse_time(start)?;
    let end = parse_time(end)?;
    if start == DAY_MINUTES {
        return Err(ScheduleError::StartAt24 { range: token.to_string() });
    }
    if start == end {
        return Err(ScheduleError::EmptyPeriod { range: token.to_string() });
    }
    Ok((start, end))
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_spec(s)
    }
}

impl FromStr for TagValue {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}
