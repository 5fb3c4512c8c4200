//! Named schedules: the JSON object of name → schedule that `SCHEDULES_PARAMETER` holds.

use std::collections::HashMap;

use super::error::ScheduleError;
use super::eval::{Schedule, TagValue};
use super::parse::{is_name, parse_days, parse_spec};

/// Named schedules, parsed one by one so that a bad definition does not spoil the others.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Definitions {
    map: HashMap<String, Result<Schedule, ScheduleError>>,
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

    /// The schedule a tag value stands for: the value itself, or the definition it names.
    pub fn resolve<'a>(&'a self, value: &'a TagValue) -> Result<&'a Schedule, ScheduleError> {
        match value {
            TagValue::Spec(schedule) => Ok(schedule),
            TagValue::Named(name) => match self.map.get(name) {
                Some(Ok(schedule)) => Ok(schedule),
                Some(Err(error)) => Err(error.clone()),
                None => Err(ScheduleError::UnknownName {
                    name: name.clone(),
                    suggestion: self.map.keys().find(|key| key.eq_ignore_ascii_case(name)).cloned(),
                }),
            },
        }
    }
}

/// Parses schedule definitions from a JSON object of name → schedule string, e.g.
/// `{"office-hours": "Mon-Fri 08:00-19:00 Europe/London"}`.
///
/// Fails only when the text is not a JSON object; problems with single definitions (a non-string value, a
/// name that cannot be used, a bad schedule, a definition that is itself a name) are kept per name.
pub fn parse_definitions(json: &str) -> Result<Definitions, ScheduleError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| ScheduleError::DefinitionsNotJson { detail: e.to_string() })?;
    let serde_json::Value::Object(object) = value else {
        return Err(ScheduleError::DefinitionsNotObject { found: json_kind(&value).to_string() });
    };
    let map = object
        .into_iter()
        .map(|(name, value)| {
            let result = parse_definition(&name, &value)
                .map_err(|error| ScheduleError::Definition { name: name.clone(), error: Box::new(error) });
            (name, result)
        })
        .collect();
    Ok(Definitions { map })
}

fn parse_definition(name: &str, value: &serde_json::Value) -> Result<Schedule, ScheduleError> {
    if name.is_empty() || !is_name(name) {
        return Err(ScheduleError::BadName { name: name.to_string() });
    }
    if parse_days(name).is_ok() {
        return Err(ScheduleError::NameIsDays { name: name.to_string() });
    }
    match value {
        serde_json::Value::String(spec) => parse_spec(spec),
        other => Err(ScheduleError::DefinitionNotString { found: json_kind(other).to_string() }),
    }
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
