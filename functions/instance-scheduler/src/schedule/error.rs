//! Why a schedule, a schedule name, an override or the schedule definitions could not be used: every
//! message names the offending part and the fix.

const DAY_HELP: &str =
    "use Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range (Mon-Fri), a list (Mon+Wed), Daily, Weekdays or Weekends";
const PERIOD_HELP: &str = "write days then HH:MM-HH:MM, e.g. Mon-Fri 08:00-19:00";
const ZONE_HELP: &str = "use an IANA name such as Europe/London or America/New_York";
const DEFINITION_EXAMPLE: &str = r#"{"office-hours": "Mon-Fri 08:00-19:00 Europe/London"}"#;
const MONTH_HELP: &str = "use Jan, Feb, … Dec, a range (Jan-Mar) or a list (Jan+Jul), in a token of their own \
    before the days, e.g. Jan-Mar Mon-Fri 08:00-19:00";
const HOLIDAY_DATE_HELP: &str =
    "use YYYY-MM-DD or an inclusive range YYYY-MM-DD..YYYY-MM-DD, e.g. 2026-12-24..2026-12-31";
const HOLIDAYS_EXAMPLE: &str = r#"{"holidays": {"uk-2026": ["2026-12-25", "2026-12-28..2026-12-31"]}}"#;

/// Why a schedule, a schedule name, an override or the schedule definitions could not be used.
///
/// Every message quotes the offending part (never the whole value more than once) and says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The value is empty or only spaces.
    #[error("the schedule is empty: {PERIOD_HELP}, or give the name of a defined schedule")]
    Empty,

    /// A character that RDS does not accept in tag values, or that has no meaning in a schedule.
    #[error(
        "character \"{}\" at position {position} is not allowed: {}",
        .character.escape_debug(),
        character_help(*.character)
    )]
    BadCharacter {
        /// The offending character.
        character: char,
        /// Its 1-based position, counted in characters.
        position: usize,
    },

    /// A day name that is not recognised. `token` is the whole days token it appeared in.
    #[error("unknown day \"{item}\"{}: {DAY_HELP}", in_token(.item, .token))]
    UnknownDay {
        /// The unrecognised word.
        item: String,
        /// The days token containing it.
        token: String,
    },

    /// A `-` range of days that is not exactly two day names.
    #[error(
        "\"{item}\" is not a day range: join two days with -, e.g. Mon-Fri (Daily, Weekdays and Weekends \
        cannot be range ends)"
    )]
    BadDayRange {
        /// The malformed range.
        item: String,
    },

    /// A `+` list of days with an empty item.
    #[error("\"{token}\" has an empty item: join days with a single +, e.g. Mon+Wed+Fri")]
    EmptyDayListItem {
        /// The days token.
        token: String,
    },

    /// Days with no time range after them.
    #[error("\"{days}\" has no time range: {PERIOD_HELP}")]
    NoTimeRange {
        /// The days token.
        days: String,
    },

    /// Two days tokens in a row, e.g. `Mon Tue 08:00-09:00`.
    #[error(
        "\"{first}\" is followed by more days \"{second}\" with no time range between them: join days \
        with +, e.g. Mon+Tue 08:00-19:00"
    )]
    DaysWithoutTimeRange {
        /// The first days token.
        first: String,
        /// The days token that followed it.
        second: String,
    },

    /// A time range before any days token.
    #[error("the time range \"{range}\" has no days before it: {PERIOD_HELP}")]
    TimeRangeWithoutDays {
        /// The time range token.
        range: String,
    },

    /// A token that should be a time range but is not `HH:MM-HH:MM`.
    #[error("\"{token}\" is not a time range: use HH:MM-HH:MM, e.g. 08:00-19:00")]
    BadTimeRange {
        /// The malformed token.
        token: String,
    },

    /// A time that is not `HH:MM` between 00:00 and 24:00.
    #[error("\"{time}\" is not a time: use HH:MM from 00:00 to 24:00")]
    BadTime {
        /// The malformed time.
        time: String,
    },

    /// `24:00` used as a start time.
    #[error("\"{range}\" starts at 24:00, which can only end a period: start at 00:00 instead")]
    StartAt24 {
        /// The time range token.
        range: String,
    },

    /// A period whose start equals its end.
    #[error(
        "the period \"{range}\" is empty because it starts and ends at the same time: use 00:00-24:00 for all day"
    )]
    EmptyPeriod {
        /// The time range token.
        range: String,
    },

    /// A time zone name that chrono-tz does not know.
    #[error("unknown time zone \"{zone}\": {ZONE_HELP}")]
    UnknownZone {
        /// The unrecognised zone.
        zone: String,
    },

    /// A time zone that is followed by more tokens.
    #[error("the time zone must come last: move \"{zone}\" after all periods, e.g. Mon-Fri 08:00-19:00 {zone}")]
    ZoneNotLast {
        /// The zone, as written.
        zone: String,
    },

    /// A value that is only a time zone.
    #[error("\"{zone}\" is only a time zone: put days and HH:MM-HH:MM before it, e.g. Mon-Fri 08:00-19:00 {zone}")]
    ZoneOnly {
        /// The zone, as written.
        zone: String,
    },

    /// A schedule name where a full schedule is required (e.g. inside a definition: there is no indirection).
    #[error(
        "\"{name}\" is a schedule name, but a full schedule is needed here: {PERIOD_HELP} (a definition \
        cannot refer to another name)"
    )]
    NameNotAllowed {
        /// The name.
        name: String,
    },

    /// A single token that is neither a schedule nor a valid schedule name.
    #[error(
        "\"{token}\" is neither a schedule nor a schedule name: {PERIOD_HELP}, or use a name made of \
        letters, digits, -, _ and ."
    )]
    NotASchedule {
        /// The token.
        token: String,
    },

    /// A definition key that cannot be used as a schedule name.
    #[error("\"{name}\" cannot be a schedule name: use only letters, digits, -, _ and .")]
    BadName {
        /// The key.
        name: String,
    },

    /// A definition key that would be read as days, so a tag could never refer to it.
    #[error(
        "\"{name}\" cannot be a schedule name because a tag with that value reads as days: choose another \
        name, e.g. office-hours"
    )]
    NameIsDays {
        /// The key.
        name: String,
    },

    /// A tag refers to a name with no definition.
    #[error("no schedule named \"{name}\" is defined{}: add it to the schedule definitions, or write the \
        schedule itself, e.g. Mon-Fri 08:00-19:00 Europe/London", did_you_mean(.suggestion))]
    UnknownName {
        /// The name in the tag.
        name: String,
        /// A defined name that differs only in letter case, if any.
        suggestion: Option<String>,
    },

    /// A `ScheduleOverride` value that is not an RFC 3339 date and time.
    #[error(
        "\"{value}\" is not a date and time with an offset: use RFC 3339, e.g. 2026-11-23T08:00:00Z or \
        2026-11-23T08:00+01:00"
    )]
    BadOverride {
        /// The value, trimmed.
        value: String,
    },

    /// The definitions are not valid JSON.
    #[error("the schedule definitions are not valid JSON ({detail}): write an object such as {DEFINITION_EXAMPLE}")]
    DefinitionsNotJson {
        /// The JSON parser's description of the problem.
        detail: String,
    },

    /// The definitions are JSON, but not an object.
    #[error("the schedule definitions must be a JSON object such as {DEFINITION_EXAMPLE}, not {found}")]
    DefinitionsNotObject {
        /// What was found instead, e.g. "an array".
        found: String,
    },

    /// A definition whose JSON value is not a string.
    #[error("the value must be a string such as \"Mon-Fri 08:00-19:00 Europe/London\", not {found}")]
    DefinitionNotString {
        /// What was found instead, e.g. "a number".
        found: String,
    },

    /// An nth weekday whose occurrence is not 1 to 5 or L.
    #[error(
        "\"{item}\" is not an nth weekday: use {day}#1 to {day}#5 for the first to the fifth {day} of the month, \
        or {day}L for the last"
    )]
    BadNthDay {
        /// The item, e.g. `Mon#6`.
        item: String,
        /// The day as written, e.g. `Mon`.
        day: String,
    },

    /// A day of the month that is not `Day1` … `Day31`, `DayL` or a range of them.
    #[error(
        "\"{item}\" is not a day of the month: use Day1 to Day31, DayL for the last day, or a range such as \
        Day1-7 or Day25-L"
    )]
    BadMonthDay {
        /// The item, e.g. `Day32`.
        item: String,
    },

    /// A word in a months token that is not a month. `token` is the whole token.
    #[error("unknown month \"{item}\"{}: {MONTH_HELP}", in_token(.item, .token))]
    UnknownMonth {
        /// The unrecognised word.
        item: String,
        /// The months token containing it.
        token: String,
    },

    /// A `-` range of months that is not exactly two month names.
    #[error("\"{item}\" is not a month range: join two months with -, e.g. Jan-Mar")]
    BadMonthRange {
        /// The malformed range.
        item: String,
    },

    /// A `+` list of months with an empty item.
    #[error("\"{token}\" has an empty item: join months with a single +, e.g. Jan+Jul")]
    EmptyMonthListItem {
        /// The months token.
        token: String,
    },

    /// Two months tokens for one period.
    #[error(
        "\"{first}\" is followed by more months \"{second}\" with no time range between them: join months \
        with +, e.g. {first}+{second}"
    )]
    MonthsWithoutTimeRange {
        /// The first months token.
        first: String,
        /// The months token that followed it.
        second: String,
    },

    /// The enforcement mark `!` somewhere other than at the very end.
    #[error("\"{token}\" has a ! inside the schedule: put ! only at the very end, e.g. Mon-Fri 08:00-19:00 UTC !")]
    MisplacedEnforcement {
        /// The token containing the `!`.
        token: String,
    },

    /// `except` with nothing after it.
    #[error(
        "\"except\" needs the name of a holiday list after it, e.g. Mon-Fri 08:00-19:00 Europe/London except \
        uk-2026"
    )]
    ExceptWithoutList,

    /// The token after `except` is not list names joined by `+`.
    #[error(
        "\"{token}\" is not a holiday list name: use names made of letters, digits, -, _ and ., joined with +, \
        e.g. except uk-2026+office-closed"
    )]
    BadHolidayListName {
        /// The token after `except`.
        token: String,
    },

    /// Something other than the zone after the `except` clause.
    #[error(
        "\"except {lists}\" must come after all periods (only the time zone may follow it): e.g. Mon-Fri \
        08:00-19:00 Europe/London except {lists}"
    )]
    ExceptNotLast {
        /// The list names, as written.
        lists: String,
    },

    /// A schedule names a holiday list that is not defined.
    #[error(
        "no holiday list named \"{list}\" is defined{}: add it under \"holidays\" in the schedule definitions, \
        e.g. {HOLIDAYS_EXAMPLE}, or remove \"except {list}\"",
        did_you_mean(.suggestion)
    )]
    UnknownHolidayList {
        /// The list name.
        list: String,
        /// A defined list that differs only in letter case, if any.
        suggestion: Option<String>,
    },

    /// A problem with one holiday list.
    #[error("holiday list \"{list}\": {error}")]
    HolidayList {
        /// The list's name.
        list: String,
        /// What is wrong with it.
        error: Box<ScheduleError>,
    },

    /// `holidays` is neither an object of lists nor (as before) a schedule string.
    #[error("\"holidays\" must be an object of list name to dates such as {HOLIDAYS_EXAMPLE}, not {found}")]
    HolidaysNotObject {
        /// What was found instead, e.g. "an array".
        found: String,
    },

    /// A holiday list that is not an array of strings.
    #[error("the list must be an array of dates such as [\"2026-12-25\", \"2026-12-28..2026-12-31\"], not {found}")]
    HolidayListNotArray {
        /// What was found instead, e.g. "a string".
        found: String,
    },

    /// A holiday list name that a schedule could not refer to.
    #[error("\"{name}\" cannot be a holiday list name: use only letters, digits, -, _ and .")]
    BadHolidayListKey {
        /// The key.
        name: String,
    },

    /// A holiday entry that is not a date or a range of dates.
    #[error("\"{value}\" is not a date: {HOLIDAY_DATE_HELP}")]
    BadHolidayDate {
        /// The entry as written (JSON text when it is not a string).
        value: String,
    },

    /// A holiday range whose end is before its start.
    #[error("\"{range}\" ends before it starts: write the earlier date first, e.g. 2026-12-24..2026-12-31")]
    HolidayRangeReversed {
        /// The range as written.
        range: String,
    },

    /// A problem with one named definition.
    #[error("schedule definition \"{name}\": {error}")]
    Definition {
        /// The definition's name (its JSON key).
        name: String,
        /// What is wrong with it.
        error: Box<ScheduleError>,
    },
}

fn character_help(c: char) -> &'static str {
    match c {
        ',' => "separate days with + (Mon+Wed) and periods with a space",
        ';' | '|' | '&' => "separate periods with a space",
        '\t' | '\n' | '\r' => "separate parts with spaces",
        '\u{2010}'..='\u{2015}' | '\u{2212}' => "use a plain hyphen - for ranges",
        _ => "use only letters, digits, spaces and _ . : / = + - @",
    }
}

fn in_token(item: &str, token: &str) -> String {
    if item == token {
        String::new()
    } else {
        format!(" in \"{token}\"")
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean \"{s}\"? names are case-sensitive)"),
        None => String::new(),
    }
}
