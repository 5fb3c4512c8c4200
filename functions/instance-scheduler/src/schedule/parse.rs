//! Reading the language: `Schedule` tag values (a full schedule or a schedule name) and
//! `ScheduleOverride` values.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::error::ScheduleError;
use super::eval::{DaySet, Period, Schedule, TagValue, DAY_MINUTES};

/// Parses a `Schedule` tag value. A single token without `:` that is not a days expression and is made of
/// letters, digits, `-`, `_` and `.` is a name (e.g. `office-hours`); anything else must be a full schedule.
pub fn parse(value: &str) -> Result<TagValue, ScheduleError> {
    check_characters(value)?;
    let tokens = tokenize(value);
    if let [token] = tokens.as_slice() {
        if !token.contains(':') && parse_days(token).is_err() && is_name(token) {
            return Ok(TagValue::Named((*token).to_string()));
        }
    }
    parse_tokens(&tokens).map(TagValue::Spec)
}

/// Parses a full schedule; a schedule name is an error here.
pub fn parse_spec(value: &str) -> Result<Schedule, ScheduleError> {
    check_characters(value)?;
    parse_tokens(&tokenize(value))
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

fn is_allowed_character(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
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

pub(super) fn is_name(token: &str) -> bool {
    token.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_time_range_token(token: &str) -> bool {
    token.contains(':') || token.starts_with(|c: char| c.is_ascii_digit())
}

fn parse_tokens(tokens: &[&str]) -> Result<Schedule, ScheduleError> {
    let Some(last) = tokens.len().checked_sub(1) else {
        return Err(ScheduleError::Empty);
    };
    if let [token] = tokens {
        if !token.contains(':') {
            if let Err(day_error) = parse_days(token) {
                return Err(single_token_error(token, day_error));
            }
        }
    }

    let mut periods = Vec::new();
    let mut zone = None;
    // The days of the current period, and the days token still waiting for its first time range.
    let mut current_days: Option<DaySet> = None;
    let mut pending_days: Option<&str> = None;

    for (index, &token) in tokens.iter().enumerate() {
        if is_time_range_token(token) {
            let (start, end) = parse_time_range(token)?;
            let days = current_days.ok_or_else(|| ScheduleError::TimeRangeWithoutDays { range: token.to_string() })?;
            periods.push(Period { days, start, end });
            pending_days = None;
            continue;
        }
        match parse_days(token) {
            Ok(days) => {
                if let Some(first) = pending_days {
                    return Err(ScheduleError::DaysWithoutTimeRange {
                        first: first.to_string(),
                        second: token.to_string(),
                    });
                }
                current_days = Some(days);
                pending_days = Some(token);
            }
            Err(day_error) => match Tz::from_str_insensitive(token) {
                Ok(tz) if index == last => zone = Some(tz),
                Ok(_) => return Err(ScheduleError::ZoneNotLast { zone: token.to_string() }),
                Err(_) => {
                    if let Some(days) = pending_days {
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

    if let Some(days) = pending_days {
        return Err(ScheduleError::NoTimeRange { days: days.to_string() });
    }
    let zone = zone.unwrap_or(Tz::UTC);
    if periods.is_empty() {
        // Only reachable for a lone zone, which single_token_error reports; kept as a safe fallback.
        return Err(ScheduleError::ZoneOnly { zone: zone.name().to_string() });
    }
    Ok(Schedule { periods, zone })
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

pub(super) fn parse_days(token: &str) -> Result<DaySet, ScheduleError> {
    let unknown = |item: &str| ScheduleError::UnknownDay { item: item.to_string(), token: token.to_string() };
    let mut set = DaySet::EMPTY;
    for item in token.split('+') {
        if item.is_empty() {
            return Err(ScheduleError::EmptyDayListItem { token: token.to_string() });
        }
        if let Some(days) = day_keyword(item) {
            set = DaySet(set.0 | days.0);
            continue;
        }
        let days = match item.split_once('-') {
            None => DaySet::EMPTY.with(day_index(item).ok_or_else(|| unknown(item))?),
            Some((from, to)) => {
                let bad_range = || ScheduleError::BadDayRange { item: item.to_string() };
                if from.is_empty() || to.is_empty() || to.contains('-') {
                    return Err(bad_range());
                }
                if day_keyword(from).is_some() || day_keyword(to).is_some() {
                    return Err(bad_range());
                }
                let from = day_index(from).ok_or_else(|| unknown(from))?;
                let to = day_index(to).ok_or_else(|| unknown(to))?;
                DaySet::range(from, to)
            }
        };
        set = DaySet(set.0 | days.0);
    }
    Ok(set)
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
