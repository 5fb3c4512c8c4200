//! Named schedules and holiday lists: the JSON object that `SCHEDULES_PARAMETER` holds, name → schedule,
//! plus an optional `"holidays"` object of list name → dates.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::error::ScheduleError;
use super::eval::{Schedule, TagValue};
use super::parse::{is_name, is_selector, parse_spec};

/// The key of the holiday lists in the definitions, when its value is an object (a string there is a
/// schedule named `holidays`, as before holiday lists existed).
const HOLIDAYS_KEY: &str = "holidays";

/// A holiday list's dates: inclusive ranges.
type Dates = Vec<(NaiveDate, NaiveDate)>;

/// Named schedules and holiday lists, parsed one by one so that a bad definition or list does not spoil
/// the others (only the schedules that use a bad list).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Definitions {
    /// Each schedule with its holiday lists resolved.
    map: HashMap<String, Result<Schedule, ScheduleError>>,
    /// The enforced form of each good schedule that is not enforced itself, for tags `name!`.
    enforced: HashMap<String, Schedule>,
    holidays: HashMap<String, Result<Dates, ScheduleError>>,
}

impl Definitions {
    #[cfg(test)]
    /// The parse result for `name` (case-sensitive), or `None` when it is not defined.
    /// Errors are [`ScheduleError::Definition`], naming the definition.
    pub fn get(&self, name: &str) -> Option<&Result<Schedule, ScheduleError>> {
        self.map.get(name)
    }

    #[cfg(test)]
    /// Number of definitions, good or bad.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    /// Whether there are no definitions.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// The defined names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.map.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    #[cfg(test)]
    /// All definitions, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Result<Schedule, ScheduleError>)> {
        self.map.iter().map(|(name, result)| (name.as_str(), result))
    }

    /// The schedule a tag value stands for: the value itself, or the definition it names (enforced when
    /// the name ends with `!`, as in `office-hours!`).
    ///
    /// A schedule written in the tag is returned as it is: its holiday lists, if any, are not resolved here
    /// (see [`Definitions::resolve_value`]).
    pub fn resolve<'a>(&'a self, value: &'a TagValue) -> Result<&'a Schedule, ScheduleError> {
        match value {
            TagValue::Spec(schedule) => Ok(schedule),
            TagValue::Named(written) => {
                let (name, enforce) = match written.strip_suffix('!') {
                    Some(name) => (name, true),
                    None => (written.as_str(), false),
                };
                match self.map.get(name) {
                    Some(Ok(schedule)) if enforce && !schedule.enforced() => {
                        Ok(self.enforced.get(name).expect("an enforced copy of every good schedule"))
                    }
                    Some(Ok(schedule)) => Ok(schedule),
                    Some(Err(error)) => Err(error.clone()),
                    None => Err(ScheduleError::UnknownName {
                        name: name.to_string(),
                        suggestion: self.map.keys().find(|key| key.eq_ignore_ascii_case(name)).cloned(),
                    }),
                }
            }
        }
    }

    /// The schedule a tag value stands for, ready to evaluate: as [`Definitions::resolve`], and a schedule
    /// written in the tag gets the dates of the holiday lists it names.
    pub fn resolve_value(&self, value: &TagValue) -> Result<Schedule, ScheduleError> {
        match value {
            TagValue::Spec(schedule) => self.resolve_holidays(schedule.clone()),
            TagValue::Named(_) => self.resolve(value).cloned(),
        }
    }

    /// `schedule` with the dates of its holiday lists; an error names a list that is missing or bad.
    fn resolve_holidays(&self, mut schedule: Schedule) -> Result<Schedule, ScheduleError> {
        if schedule.holidays.lists.is_empty() {
            return Ok(schedule);
        }
        let mut dates = Vec::new();
        for list in &schedule.holidays.lists {
            match self.holidays.get(list) {
                Some(Ok(list_dates)) => dates.extend_from_slice(list_dates),
                Some(Err(error)) => return Err(error.clone()),
                None => {
                    return Err(ScheduleError::UnknownHolidayList {
                        list: list.clone(),
                        suggestion: self.holidays.keys().find(|key| key.eq_ignore_ascii_case(list)).cloned(),
                    })
                }
            }
        }
        dates.sort_unstable();
        schedule.holidays.dates = Some(dates);
        Ok(schedule)
    }
}

/// Parses schedule definitions from a JSON object of name → schedule string, with optional holiday lists
/// under `"holidays"`, e.g. `{"holidays": {"uk-2026": ["2026-12-25", "2026-12-28..2026-12-31"]},
/// "office-hours": "Mon-Fri 08:00-19:00 Europe/London except uk-2026"}`.
///
/// Fails only when the text is not a JSON object; problems with single definitions (a non-string value, a
/// name that cannot be used, a bad schedule, a definition that is itself a name, a missing or bad holiday
/// list) are kept per name.
pub fn parse_definitions(json: &str) -> Result<Definitions, ScheduleError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| ScheduleError::DefinitionsNotJson { detail: e.to_string() })?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(ScheduleError::DefinitionsNotObject { found: json_kind(&value).to_string() });
    };
    let holidays = match object.remove(HOLIDAYS_KEY) {
        Some(serde_json::Value::Object(lists)) => parse_holiday_lists(lists),
        Some(other) => {
            object.insert(HOLIDAYS_KEY.to_string(), other);
            HashMap::new()
        }
        None => HashMap::new(),
    };
    let mut definitions = Definitions { map: HashMap::new(), enforced: HashMap::new(), holidays };
    for (name, value) in object {
        let result = parse_definition(&name, &value)
            .and_then(|schedule| definitions.resolve_holidays(schedule))
            .map_err(|error| ScheduleError::Definition { name: name.clone(), error: Box::new(error) });
        if let Ok(schedule) = &result {
            if !schedule.enforced() {
                definitions.enforced.insert(name.clone(), schedule.clone().into_enforced());
            }
        }
        definitions.map.insert(name, result);
    }
    Ok(definitions)
}

fn parse_definition(name: &str, value: &serde_json::Value) -> Result<Schedule, ScheduleError> {
    if name.is_empty() || !is_name(name) {
        return Err(ScheduleError::BadName { name: name.to_string() });
    }
    if is_selector(name) {
        return Err(ScheduleError::NameIsDays { name: name.to_string() });
    }
    match value {
        serde_json::Value::String(spec) => parse_spec(spec),
        other if name == HOLIDAYS_KEY => Err(ScheduleError::HolidaysNotObject { found: json_kind(other).to_string() }),
        other => Err(ScheduleError::DefinitionNotString { found: json_kind(other).to_string() }),
    }
}

fn parse_holiday_lists(
    lists: serde_json::Map<String, serde_json::Value>,
) -> HashMap<String, Result<Dates, ScheduleError>> {
    lists
        .into_iter()
        .map(|(list, value)| {
            let result = parse_holiday_list(&list, &value)
                .map_err(|error| ScheduleError::HolidayList { list: list.clone(), error: Box::new(error) });
            (list, result)
        })
        .collect()
}

fn parse_holiday_list(list: &str, value: &serde_json::Value) -> Result<Dates, ScheduleError> {
    if list.is_empty() || !is_name(list) {
        return Err(ScheduleError::BadHolidayListKey { name: list.to_string() });
    }
    let serde_json::Value::Array(entries) = value else {
        return Err(ScheduleError::HolidayListNotArray { found: json_kind(value).to_string() });
    };
    entries
        .iter()
        .map(|entry| match entry {
            serde_json::Value::String(text) => parse_holiday_entry(text),
            other => Err(ScheduleError::BadHolidayDate { value: other.to_string() }),
        })
        .collect()
}

/// `YYYY-MM-DD`, or an inclusive range `YYYY-MM-DD..YYYY-MM-DD`.
fn parse_holiday_entry(text: &str) -> Result<(NaiveDate, NaiveDate), ScheduleError> {
    let bad = || ScheduleError::BadHolidayDate { value: text.to_string() };
    let date = |s: &str| {
        let s = s.trim();
        // The exact width, so that 2026-1-5 or +2026-01-05 are errors rather than guesses.
        if s.len() != 10 {
            return Err(bad());
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())
    };
    let (first, last) = match text.split_once("..") {
        Some((first, last)) => (date(first)?, date(last)?),
        None => (date(text)?, date(text)?),
    };
    if last < first {
        return Err(ScheduleError::HolidayRangeReversed { range: text.to_string() });
    }
    Ok((first, last))
}
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
