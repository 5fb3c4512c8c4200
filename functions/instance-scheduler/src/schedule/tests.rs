//! The language's tests: parsing, printing, evaluation (DST and overnight rules), definitions, errors.

use chrono::{DateTime, Datelike, Duration, Offset, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::parse::{check_characters, parse_days, parse_time, parse_time_range};
use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("bad test time {s}: {e}")).with_timezone(&Utc)
}

fn spec(s: &str) -> Schedule {
    parse_spec(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn running(schedule: &str, at: &str) -> bool {
    spec(schedule).is_running_at(utc(at))
}

fn err(s: &str) -> String {
    match parse(s) {
        Ok(v) => panic!("{s:?} should fail, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn offset_seconds(tz: Tz, at: &str) -> i32 {
    utc(at).with_timezone(&tz).offset().fix().local_minus_utc()
}

fn days(s: &str) -> DaySet {
    parse_days(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn set(indices: &[u32]) -> DaySet {
    indices.iter().fold(DaySet::EMPTY, |set, &i| set.with(i))
}

// ---- parsing ----

#[test]
fn spec_examples_parse() {
    let s = spec("Mon-Fri 08:00-19:00 Europe/London");
    assert_eq!(s.zone(), Tz::Europe__London);
    assert_eq!(s.periods(), &[Period { days: DaySet::WEEKDAYS, start: 480, end: 1140 }]);

    let s = spec("Weekdays 07:30-18:00 Sat 10:00-14:00 America/New_York");
    assert_eq!(s.zone(), Tz::America__New_York);
    assert_eq!(
        s.periods(),
        &[Period { days: DaySet::WEEKDAYS, start: 450, end: 1080 }, Period { days: set(&[5]), start: 600, end: 840 },]
    );

    let s = spec("Daily 22:00-06:00 UTC");
    assert_eq!(s.zone(), Tz::UTC);
    assert_eq!(s.periods(), &[Period { days: DaySet::ALL, start: 1320, end: 360 }]);
    assert!(s.periods()[0].is_overnight());

    let s = spec("Mon+Wed+Fri 09:00-17:00");
    assert_eq!(s.zone(), Tz::UTC, "zone defaults to UTC");
    assert_eq!(s.periods(), &[Period { days: set(&[0, 2, 4]), start: 540, end: 1020 }]);

    let s = spec("Daily 00:00-24:00");
    assert_eq!(s.periods(), &[Period { days: DaySet::ALL, start: 0, end: 1440 }]);
    assert!(!s.periods()[0].is_overnight());
}

#[test]
fn extra_time_ranges_reuse_previous_days() {
    let s = spec("Mon-Fri 08:00-12:00 13:00-18:00 Sat 10:00-12:00 14:00-16:00");
    let got: Vec<(DaySet, u16, u16)> =
        s.periods().iter().map(|p| (p.days(), p.start_minute(), p.end_minute())).collect();
    assert_eq!(
        got,
        vec![(DaySet::WEEKDAYS, 480, 720), (DaySet::WEEKDAYS, 780, 1080), (set(&[5]), 600, 720), (set(&[5]), 840, 960),]
    );
}

#[test]
fn single_days_in_every_spelling() {
    let cases: [(&[&str], u32); 7] = [
        (&["Mon", "mon", "MON", "Monday", "monday"], 0),
        (&["Tue", "tues", "Tuesday", "TUESDAY"], 1),
        (&["Wed", "wednesday", "WeD"], 2),
        (&["Thu", "thur", "Thurs", "Thursday"], 3),
        (&["Fri", "friday", "FRI"], 4),
        (&["Sat", "Saturday", "sat"], 5),
        (&["Sun", "Sunday", "sUN"], 6),
    ];
    for (words, index) in cases {
        for word in words {
            assert_eq!(days(word), set(&[index]), "{word}");
        }
    }
}

#[test]
fn day_keywords_ranges_and_lists() {
    assert_eq!(days("Daily"), DaySet::ALL);
    assert_eq!(days("DAILY"), DaySet::ALL);
    assert_eq!(days("weekdays"), DaySet::WEEKDAYS);
    assert_eq!(days("Weekends"), DaySet::WEEKENDS);
    assert_eq!(days("Mon-Fri"), DaySet::WEEKDAYS);
    assert_eq!(days("monday-friday"), DaySet::WEEKDAYS);
    assert_eq!(days("Tue-Thu"), set(&[1, 2, 3]));
    assert_eq!(days("Fri-Mon"), set(&[4, 5, 6, 0]), "ranges wrap past Sunday");
    assert_eq!(days("Sun-Tue"), set(&[6, 0, 1]));
    assert_eq!(days("Sat-Sun"), DaySet::WEEKENDS);
    assert_eq!(days("Wed-Wed"), set(&[2]));
    assert_eq!(days("Mon+Wed+Fri"), set(&[0, 2, 4]));
    assert_eq!(days("Mon-Wed+Fri"), set(&[0, 1, 2, 4]));
    assert_eq!(days("Sat+Mon-Tue"), set(&[5, 0, 1]));
    assert_eq!(days("Weekends+Mon"), set(&[5, 6, 0]));
    assert_eq!(days("Weekdays+Weekends"), DaySet::ALL);
    assert_eq!(days("Mon+Mon"), set(&[0]));
    assert!(days("Mon-Fri").contains(Weekday::Wed));
    assert!(!days("Mon-Fri").contains(Weekday::Sat));
    assert!(DaySet::EMPTY.is_empty());
    assert!(!days("Sun").is_empty());
}

#[test]
fn day_set_display_is_normalized() {
    let cases = [
        ("Daily", "Daily"),
        ("Weekdays+Weekends", "Daily"),
        ("Mon-Sun", "Daily"),
        ("Weekdays", "Mon-Fri"),
        ("Weekends", "Sat-Sun"),
        ("Mon+Tue+Wed", "Mon-Wed"),
        ("Mon+Wed+Fri", "Mon+Wed+Fri"),
        ("Fri-Mon", "Fri-Mon"),
        ("Sun+Mon+Wed", "Wed+Sun-Mon"),
        ("thursday", "Thu"),
        ("Tue-Mon", "Daily"),
    ];
    for (input, expected) in cases {
        assert_eq!(days(input).to_string(), expected, "{input}");
        assert_eq!(days(expected), days(input), "{expected} parses back");
    }
}

#[test]
fn tokens_may_be_separated_by_several_spaces() {
    let s = spec("   Mon-Fri    08:00-19:00   europe/london  ");
    assert_eq!(s, spec("Mon-Fri 08:00-19:00 Europe/London"));
    assert_eq!(s.zone(), Tz::Europe__London, "zone names are case-insensitive");
}

#[test]
fn times_accept_one_digit_hours_and_24_00_end() {
    assert_eq!(parse_time("8:05"), Ok(485));
    assert_eq!(parse_time("00:00"), Ok(0));
    assert_eq!(parse_time("23:59"), Ok(1439));
    assert_eq!(parse_time("24:00"), Ok(1440));
    assert_eq!(parse_time_range("22:00-24:00"), Ok((1320, 1440)));
    assert_eq!(parse_time_range("22:00-00:00"), Ok((1320, 0)));
}

#[test]
fn zones_in_various_forms() {
    assert_eq!(spec("Daily 08:00-09:00 UTC").zone(), Tz::UTC);
    assert_eq!(spec("Daily 08:00-09:00 utc").zone(), Tz::UTC);
    assert_eq!(spec("Daily 08:00-09:00 Etc/GMT+5").zone(), Tz::Etc__GMTPlus5);
    assert_eq!(spec("Daily 08:00-09:00 AMERICA/NEW_YORK").zone(), Tz::America__New_York);
    assert_eq!(spec("Daily 08:00-09:00 America/Port-au-Prince").zone(), Tz::America__PortauPrince);
    assert_eq!(spec("Daily 08:00-09:00 Australia/Sydney").zone(), Tz::Australia__Sydney);
}

#[test]
fn display_is_normalized_and_round_trips() {
    let cases = [
        ("Mon-Fri 08:00-19:00 Europe/London", "Mon-Fri 08:00-19:00 Europe/London"),
        (
            "Weekdays 07:30-18:00 Sat 10:00-14:00 America/New_York",
            "Mon-Fri 07:30-18:00 Sat 10:00-14:00 America/New_York",
        ),
        ("Daily 22:00-06:00 UTC", "Daily 22:00-06:00 UTC"),
        ("Mon+Wed+Fri 09:00-17:00", "Mon+Wed+Fri 09:00-17:00 UTC"),
        ("Daily 00:00-24:00", "Daily 00:00-24:00 UTC"),
        ("monday-friday 8:00-12:00 13:00-18:00 europe/berlin", "Mon-Fri 08:00-12:00 13:00-18:00 Europe/Berlin"),
        ("Mon 08:00-09:00 Mon 10:00-11:00", "Mon 08:00-09:00 10:00-11:00 UTC"),
        ("Mon 08:00-09:00 Tue 08:00-09:00 Mon 10:00-11:00", "Mon 08:00-09:00 Tue 08:00-09:00 Mon 10:00-11:00 UTC"),
        ("fri-mon 22:00-6:00 etc/gmt+5", "Fri-Mon 22:00-06:00 Etc/GMT+5"),
        ("Weekends+Wed 10:00-11:00", "Wed+Sat-Sun 10:00-11:00 UTC"),
    ];
    for (input, expected) in cases {
        let schedule = spec(input);
        let shown = schedule.to_string();
        assert_eq!(shown, expected, "{input}");
        assert_eq!(spec(&shown), schedule, "{shown} parses back to the same schedule");
        assert_eq!(shown.parse::<Schedule>().map(|s| s.to_string()), Ok(shown.clone()));
    }
}

#[test]
fn tag_value_display_and_from_str() {
    assert_eq!("office-hours".parse::<TagValue>().unwrap().to_string(), "office-hours");
    assert_eq!("Mon 08:00-09:00".parse::<TagValue>().unwrap().to_string(), "Mon 08:00-09:00 UTC");
}

// ---- names ----

#[test]
fn single_word_values_are_names() {
    for name in ["office-hours", "dev_nights", "team.a", "9to5", "OfficeHours", "Mondays", "utc"] {
        assert_eq!(parse(name), Ok(TagValue::Named(name.to_string())), "{name}");
    }
    assert_eq!(parse("  office-hours  "), Ok(TagValue::Named("office-hours".to_string())));
}

#[test]
fn days_alone_are_not_names() {
    for value in ["Mon-Fri", "Daily", "weekends", "Mon+Wed", "Fri-Mon"] {
        assert_eq!(
            parse(value),
            Err(ScheduleError::NoTimeRange { days: value.to_string() }),
            "{value} is days without a time range"
        );
    }
    assert_eq!(err("Mon-Fri"), "\"Mon-Fri\" has no time range: write days then HH:MM-HH:MM, e.g. Mon-Fri 08:00-19:00");
}

#[test]
fn parse_spec_rejects_names() {
    assert_eq!(
        parse_spec("office-hours").unwrap_err().to_string(),
        "\"office-hours\" is a schedule name, but a full schedule is needed here: write days then HH:MM-HH:MM, \
         e.g. Mon-Fri 08:00-19:00 (a definition cannot refer to another name)"
    );
    assert!(parse_spec("Mon-Fri 08:00-19:00").is_ok());
}

#[test]
fn single_tokens_that_are_neither() {
    assert_eq!(
        err("foo@bar"),
        "\"foo@bar\" is neither a schedule nor a schedule name: write days then HH:MM-HH:MM, e.g. Mon-Fri \
         08:00-19:00, or use a name made of letters, digits, -, _ and ."
    );
    assert_eq!(
        err("Europe/London"),
        "\"Europe/London\" is only a time zone: put days and HH:MM-HH:MM before it, e.g. Mon-Fri 08:00-19:00 \
         Europe/London"
    );
    assert_eq!(parse_spec("UTC"), Err(ScheduleError::ZoneOnly { zone: "UTC".to_string() }));
    assert_eq!(
        err("Europe/Londn"),
        "unknown time zone \"Europe/Londn\": use an IANA name such as Europe/London or America/New_York"
    );
    assert_eq!(
        err("Mon+Wdd"),
        "unknown day \"Wdd\" in \"Mon+Wdd\": use Mon, Tue, Wed, Thu, Fri, Sat, \
        Sun, a range (Mon-Fri), a list (Mon+Wed), Daily, Weekdays or Weekends"
    );
    assert_eq!(
        err("08:00-19:00"),
        "the time range \"08:00-19:00\" has no days before it: write days then HH:MM-HH:MM, e.g. Mon-Fri \
            08:00-19:00"
    );
}

// ---- errors ----

#[test]
fn empty_values() {
    let expected = "the schedule is empty: write days then HH:MM-HH:MM, e.g. Mon-Fri 08:00-19:00, or give the name \
                    of a defined schedule";
    assert_eq!(err(""), expected);
    assert_eq!(err("    "), expected);
    assert_eq!(parse_spec(""), Err(ScheduleError::Empty));
}

#[test]
fn bad_characters_are_named_with_a_fix() {
    assert_eq!(
        err("Mon,Wed 08:00-19:00"),
        "character \",\" at position 4 is not allowed: separate days with + (Mon+Wed) and periods with a space"
    );
    assert_eq!(
        err("Mon 08:00-09:00; Tue 08:00-09:00"),
        "character \";\" at position 16 is not allowed: separate periods with a space"
    );
    assert_eq!(err("Mon\t08:00-09:00"), "character \"\\t\" at position 4 is not allowed: separate parts with spaces");
    assert_eq!(
        err("Mon–Fri 08:00-09:00"),
        "character \"–\" at position 4 is not allowed: use a plain hyphen - for ranges"
    );
    assert_eq!(
        err("Mon (08:00-09:00)"),
        "character \"(\" at position 5 is not allowed: use only letters, digits, spaces and _ . : / = + - @"
    );
    assert_eq!(parse_spec("\"Mon\""), Err(ScheduleError::BadCharacter { character: '"', position: 1 }));
    // Every allowed punctuation character passes the character check.
    assert_eq!(check_characters("aZ09 _.:/=+-@"), Ok(()));
}

#[test]
fn unknown_days() {
    assert_eq!(
        err("Mo 08:00-19:00"),
        "unknown day \"Mo\": use Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range (Mon-Fri), a list (Mon+Wed), Daily, \
         Weekdays or Weekends"
    );
    assert_eq!(
        parse("Mon-Fir 08:00-19:00"),
        Err(ScheduleError::UnknownDay { item: "Fir".to_string(), token: "Mon-Fir".to_string() })
    );
    assert_eq!(
        err("Mon+Wed+Fir 08:00-19:00"),
        "unknown day \"Fir\" in \"Mon+Wed+Fir\": use Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range (Mon-Fri), a list \
         (Mon+Wed), Daily, Weekdays or Weekends"
    );
}

#[test]
fn bad_day_ranges_and_lists() {
    let range = |item: &str| {
        format!(
            "\"{item}\" is not a day range: join two days with -, e.g. Mon-Fri (Daily, Weekdays and \
                Weekends cannot \
             be range ends)"
        )
    };
    assert_eq!(err("Mon- 08:00-19:00"), range("Mon-"));
    assert_eq!(err("-Fri 08:00-19:00"), range("-Fri"));
    assert_eq!(err("Mon-Wed-Fri 08:00-19:00"), range("Mon-Wed-Fri"));
    assert_eq!(err("Weekdays-Sat 08:00-19:00"), range("Weekdays-Sat"));
    assert_eq!(err("Mon+Sat-Daily 08:00-19:00"), range("Sat-Daily"));
    assert_eq!(
        err("Mon++Wed 08:00-19:00"),
        "\"Mon++Wed\" has an empty item: join days with a single +, e.g. Mon+Wed+Fri"
    );
    assert_eq!(parse("Mon+ 08:00-19:00"), Err(ScheduleError::EmptyDayListItem { token: "Mon+".to_string() }));
}

#[test]
fn bad_times() {
    let time = |t: &str| format!("\"{t}\" is not a time: use HH:MM from 00:00 to 24:00");
    assert_eq!(err("Mon 25:00-26:00"), time("25:00"));
    assert_eq!(err("Mon 08:00-24:01"), time("24:01"));
    assert_eq!(err("Mon 08:60-09:00"), time("08:60"));
    assert_eq!(err("Mon 8am-5pm"), time("8am"));
    assert_eq!(err("Mon 0800-1900"), time("0800"));
    assert_eq!(err("Mon 08:0-09:00"), time("08:0"));
    assert_eq!(err("Mon 008:00-09:00"), time("008:00"));
    assert_eq!(err("Mon 08:00-+9:00"), time("+9:00"));
    assert_eq!(err("Mon T08:00-09:00"), time("T08:00"));
}

#[test]
fn bad_time_ranges() {
    let range = |t: &str| format!("\"{t}\" is not a time range: use HH:MM-HH:MM, e.g. 08:00-19:00");
    assert_eq!(err("Mon 08:00"), range("08:00"));
    assert_eq!(err("Mon 08:00-"), range("08:00-"));
    assert_eq!(err("Mon -19:00"), range("-19:00"));
    assert_eq!(err("Mon 08:00-12:00-13:00"), range("08:00-12:00-13:00"));
    assert_eq!(err("Mon 8"), range("8"));
}

#[test]
fn start_at_24_and_empty_periods() {
    assert_eq!(
        err("Mon 24:00-06:00"),
        "\"24:00-06:00\" starts at 24:00, which can only end a period: start at 00:00 instead"
    );
    assert_eq!(
        err("Mon 08:00-08:00"),
        "the period \"08:00-08:00\" is empty because it starts and ends at the same time: use 00:00-24:00 \
            for all day"
    );
    assert_eq!(parse("Daily 00:00-00:00"), Err(ScheduleError::EmptyPeriod { range: "00:00-00:00".to_string() }));
    assert_eq!(parse("Daily 8:00-08:00"), Err(ScheduleError::EmptyPeriod { range: "8:00-08:00".to_string() }));
}

#[test]
fn missing_time_ranges() {
    assert_eq!(
        err("Mon-Fri Europe/London"),
        "\"Mon-Fri\" has no time range: write days then HH:MM-HH:MM, e.g. Mon-Fri 08:00-19:00"
    );
    assert_eq!(parse("Mon 08:00-09:00 Tue"), Err(ScheduleError::NoTimeRange { days: "Tue".to_string() }));
    assert_eq!(parse("Mon 08:00-09:00 Tue UTC"), Err(ScheduleError::NoTimeRange { days: "Tue".to_string() }));
    assert_eq!(parse("Mon Foo"), Err(ScheduleError::NoTimeRange { days: "Mon".to_string() }));
    assert_eq!(
        err("Mon Tue 08:00-09:00"),
        "\"Mon\" is followed by more days \"Tue\" with no time range between them: join days with +, e.g. Mon+Tue \
         08:00-19:00"
    );
}

#[test]
fn time_range_without_days() {
    assert_eq!(
        err("08:00-19:00 Mon-Fri"),
        "the time range \"08:00-19:00\" has no days before it: write days then HH:MM-HH:MM, e.g. Mon-Fri \
            08:00-19:00"
    );
    assert_eq!(
        parse("08:00-19:00 Europe/London"),
        Err(ScheduleError::TimeRangeWithoutDays { range: "08:00-19:00".to_string() })
    );
}

#[test]
fn zone_errors() {
    assert_eq!(
        err("Mon-Fri 08:00-19:00 Europe/Londn"),
        "unknown time zone \"Europe/Londn\": use an IANA name such as Europe/London or America/New_York"
    );
    assert_eq!(parse("Mon-Fri 08:00-19:00 Londn"), Err(ScheduleError::UnknownZone { zone: "Londn".to_string() }));
    assert_eq!(
        parse("Mon-Fri 08:00-19:00 Europe/Londn Sat 10:00-11:00"),
        Err(ScheduleError::UnknownZone { zone: "Europe/Londn".to_string() })
    );
    // Not last and not a zone-looking word: reported as a day.
    assert_eq!(
        parse("Mon-Fri 08:00-19:00 Satt 10:00-11:00"),
        Err(ScheduleError::UnknownDay { item: "Satt".to_string(), token: "Satt".to_string() })
    );
    // A range or list in the last place is reported as days, not as a zone.
    assert_eq!(
        parse("Mon 08:00-19:00 Sat-Sux"),
        Err(ScheduleError::UnknownDay { item: "Sux".to_string(), token: "Sat-Sux".to_string() })
    );
    assert_eq!(
        err("Mon-Fri UTC 08:00-19:00"),
        "the time zone must come last: move \"UTC\" after all periods, e.g. Mon-Fri 08:00-19:00 UTC"
    );
    assert_eq!(parse("Mon 08:00-09:00 UTC Europe/London"), Err(ScheduleError::ZoneNotLast { zone: "UTC".to_string() }));
    assert_eq!(parse("UTC Mon 08:00-09:00"), Err(ScheduleError::ZoneNotLast { zone: "UTC".to_string() }));
}

#[test]
fn errors_quote_only_a_token_of_a_long_value() {
    let long = format!("{} Mon 08:00-09:00 Tue 25:00-26:00", "Wed 08:00-09:00 ".repeat(12));
    let message = err(&long);
    assert_eq!(message, "\"25:00\" is not a time: use HH:MM from 00:00 to 24:00");
    assert!(!message.contains(long.trim()));
}

// ---- evaluation: simple ----

#[test]
fn office_hours_in_utc() {
    let s = "Mon-Fri 08:00-19:00";
    // 2026-03-23 is a Monday.
    assert!(!running(s, "2026-03-23T07:59:59Z"));
    assert!(running(s, "2026-03-23T08:00:00Z"));
    assert!(running(s, "2026-03-23T18:59:59Z"));
    assert!(!running(s, "2026-03-23T19:00:00Z"), "end is exclusive");
    assert!(running(s, "2026-03-27T12:00:00Z"), "Friday");
    assert!(!running(s, "2026-03-28T12:00:00Z"), "Saturday");
    assert!(!running(s, "2026-03-29T12:00:00Z"), "Sunday");
}

#[test]
fn several_periods_and_weekends() {
    let s = "Weekdays 07:30-18:00 Sat 10:00-14:00 Weekends 20:00-21:00";
    assert!(running(s, "2026-03-24T07:30:00Z"), "Tue morning");
    assert!(running(s, "2026-03-24T17:59:00Z"), "Tue before 18:00");
    assert!(!running(s, "2026-03-24T18:00:00Z"), "Tue 18:00");
    assert!(running(s, "2026-03-28T10:00:00Z"), "Sat 10:00");
    assert!(!running(s, "2026-03-28T14:00:00Z"), "Sat 14:00");
    assert!(!running(s, "2026-03-28T07:30:00Z"), "weekday hours don't apply on Saturday");
    assert!(running(s, "2026-03-28T20:30:00Z"), "Sat evening");
    assert!(running(s, "2026-03-29T20:30:00Z"), "Sun evening");
    assert!(!running(s, "2026-03-29T10:30:00Z"), "Sun morning");
    assert!(!running(s, "2026-03-27T20:30:00Z"), "Fri evening");
}

#[test]
fn overnight_daily() {
    let s = "Daily 22:00-06:00 UTC";
    assert!(!running(s, "2026-03-24T21:59:00Z"));
    assert!(running(s, "2026-03-24T22:00:00Z"));
    assert!(running(s, "2026-03-24T23:59:59Z"));
    assert!(running(s, "2026-03-25T00:00:00Z"));
    assert!(running(s, "2026-03-25T05:59:00Z"));
    assert!(!running(s, "2026-03-25T06:00:00Z"));
    assert!(!running(s, "2026-03-25T12:00:00Z"));
}

#[test]
fn overnight_belongs_to_its_start_day() {
    let s = "Fri 22:00-06:00";
    // 2026-03-27 is a Friday.
    assert!(!running(s, "2026-03-27T03:00:00Z"), "Fri early morning: Thursday is not in the days");
    assert!(!running(s, "2026-03-27T21:59:00Z"));
    assert!(running(s, "2026-03-27T22:00:00Z"));
    assert!(running(s, "2026-03-28T00:00:00Z"), "Sat midnight");
    assert!(running(s, "2026-03-28T05:59:00Z"), "Sat 05:59");
    assert!(!running(s, "2026-03-28T06:00:00Z"));
    assert!(!running(s, "2026-03-28T22:00:00Z"), "Sat 22:00 is not a start day");
    assert!(!running(s, "2026-03-29T03:00:00Z"), "Sun early morning");
}

#[test]
fn overnight_on_sunday_wraps_to_monday() {
    let s = "Sun 23:00-01:00";
    assert!(running(s, "2026-03-29T23:30:00Z"), "Sun 23:30");
    assert!(running(s, "2026-03-30T00:30:00Z"), "Mon 00:30");
    assert!(!running(s, "2026-03-30T01:00:00Z"));
    assert!(!running(s, "2026-03-29T00:30:00Z"), "Sun 00:30: Saturday is not in the days");
}

#[test]
fn end_at_24_00_and_at_00_00() {
    let s = "Mon 20:00-24:00";
    assert!(running(s, "2026-03-23T20:00:00Z"));
    assert!(running(s, "2026-03-23T23:59:59Z"));
    assert!(!running(s, "2026-03-24T00:00:00Z"), "24:00 is the end of Monday");
    let s = "Mon 20:00-00:00";
    assert!(running(s, "2026-03-23T23:59:59Z"));
    assert!(!running(s, "2026-03-24T00:00:00Z"));
    assert!(!running(s, "2026-03-23T00:00:00Z"));
}

#[test]
fn all_day_every_day_is_always_running() {
    let s = spec("Daily 00:00-24:00 Europe/London");
    let mut at = utc("2026-03-28T00:00:00Z");
    while at < utc("2026-03-31T00:00:00Z") {
        assert!(s.is_running_at(at), "{at}");
        at += Duration::minutes(7);
    }
}

#[test]
fn wrapped_day_range() {
    let s = "Fri-Mon 10:00-11:00";
    // 2026-03-23 is a Monday.
    let expected = [true, false, false, false, true, true, true];
    for (offset, want) in expected.into_iter().enumerate() {
        let at = utc("2026-03-23T10:30:00Z") + Duration::days(offset as i64);
        assert_eq!(spec(s).is_running_at(at), want, "{at}");
    }
}

#[test]
fn seconds_within_a_minute_do_not_matter() {
    let s = "Mon 08:00-09:00";
    assert!(!running(s, "2026-03-23T07:59:59.999Z"));
    assert!(running(s, "2026-03-23T08:00:00.001Z"));
    assert!(running(s, "2026-03-23T08:59:59Z"));
}

#[test]
fn fixed_offset_etc_zone() {
    // Etc/GMT+5 is UTC-5 (POSIX sign convention).
    let s = "Daily 08:00-09:00 Etc/GMT+5";
    assert!(!running(s, "2026-03-23T08:00:00Z"));
    assert!(running(s, "2026-03-23T13:00:00Z"));
    assert!(!running(s, "2026-03-23T14:00:00Z"));
}

// ---- evaluation: daylight saving ----

#[test]
fn london_spring_forward() {
    let london = Tz::Europe__London;
    assert_eq!(offset_seconds(london, "2026-03-29T00:59:00Z"), 0);
    assert_eq!(offset_seconds(london, "2026-03-29T01:00:00Z"), 3600);
    let s = "Mon-Fri 08:00-19:00 Europe/London";
    // Friday before the change: GMT.
    assert!(!running(s, "2026-03-27T07:59:00Z"));
    assert!(running(s, "2026-03-27T08:00:00Z"));
    assert!(running(s, "2026-03-27T18:59:00Z"));
    assert!(!running(s, "2026-03-27T19:00:00Z"));
    // Monday after: BST.
    assert!(!running(s, "2026-03-30T06:59:00Z"));
    assert!(running(s, "2026-03-30T07:00:00Z"), "08:00 BST");
    assert!(running(s, "2026-03-30T17:59:00Z"));
    assert!(!running(s, "2026-03-30T18:00:00Z"), "19:00 BST");
}

#[test]
fn london_fall_back() {
    let london = Tz::Europe__London;
    assert_eq!(offset_seconds(london, "2026-10-25T00:59:00Z"), 3600);
    assert_eq!(offset_seconds(london, "2026-10-25T01:00:00Z"), 0);
    let s = "Mon-Fri 08:00-19:00 Europe/London";
    // Friday before: BST.
    assert!(!running(s, "2026-10-23T06:59:00Z"));
    assert!(running(s, "2026-10-23T07:00:00Z"));
    assert!(!running(s, "2026-10-23T18:00:00Z"));
    // Monday after: GMT.
    assert!(!running(s, "2026-10-26T07:59:00Z"));
    assert!(running(s, "2026-10-26T08:00:00Z"));
    assert!(running(s, "2026-10-26T18:59:00Z"));
    assert!(!running(s, "2026-10-26T19:00:00Z"));
}

#[test]
fn start_in_spring_forward_gap() {
    // Local 01:00-01:59 does not exist on 2026-03-29 in London; the period runs from the jump (01:00 UTC,
    // which is 02:00 BST) until 03:00 BST (02:00 UTC).
    let s = "Sun 01:30-03:00 Europe/London";
    assert!(!running(s, "2026-03-29T00:59:00Z"), "00:59 GMT");
    assert!(running(s, "2026-03-29T01:00:00Z"), "02:00 BST");
    assert!(running(s, "2026-03-29T01:59:00Z"), "02:59 BST");
    assert!(!running(s, "2026-03-29T02:00:00Z"), "03:00 BST");
    // A week later it is the full 90 minutes in BST.
    assert!(!running(s, "2026-04-05T00:29:00Z"));
    assert!(running(s, "2026-04-05T00:30:00Z"));
    assert!(running(s, "2026-04-05T01:59:00Z"));
    assert!(!running(s, "2026-04-05T02:00:00Z"));
}

#[test]
fn period_entirely_inside_gap_is_skipped() {
    let berlin = Tz::Europe__Berlin;
    assert_eq!(offset_seconds(berlin, "2026-03-29T00:59:00Z"), 3600);
    assert_eq!(offset_seconds(berlin, "2026-03-29T01:00:00Z"), 7200);
    let s = spec("Daily 02:15-02:45 Europe/Berlin");
    let count_minutes = |from: &str, to: &str| {
        let (mut at, end) = (utc(from), utc(to));
        let mut n = 0;
        while at < end {
            n += usize::from(s.is_running_at(at));
            at += Duration::minutes(1);
        }
        n
    };
    assert_eq!(count_minutes("2026-03-28T00:00:00Z", "2026-03-29T00:00:00Z"), 30, "Saturday, CET");
    assert_eq!(count_minutes("2026-03-29T00:00:00Z", "2026-03-29T22:00:00Z"), 0, "Sunday: 02:xx never happens");
    assert_eq!(count_minutes("2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z"), 30, "Monday, CEST");
    assert!(s.is_running_at(utc("2026-03-30T00:15:00Z")), "02:15 CEST");
}

#[test]
fn fall_back_overlap_runs_twice() {
    // 01:00-01:59 happens twice in London on 2026-10-25: first in BST (00:00-00:59Z), then GMT (01:00-01:59Z).
    let s = "Sun 01:30-02:00 Europe/London";
    assert!(!running(s, "2026-10-25T00:29:00Z"), "01:29 BST");
    assert!(running(s, "2026-10-25T00:30:00Z"), "01:30 BST");
    assert!(running(s, "2026-10-25T00:59:00Z"), "01:59 BST");
    assert!(!running(s, "2026-10-25T01:00:00Z"), "01:00 GMT");
    assert!(!running(s, "2026-10-25T01:29:00Z"), "01:29 GMT");
    assert!(running(s, "2026-10-25T01:30:00Z"), "01:30 GMT");
    assert!(running(s, "2026-10-25T01:59:00Z"), "01:59 GMT");
    assert!(!running(s, "2026-10-25T02:00:00Z"), "02:00 GMT");
}

#[test]
fn berlin_both_directions() {
    let s = "Mon-Fri 08:00-19:00 Europe/Berlin";
    // Fri 2026-03-27, CET (UTC+1).
    assert!(!running(s, "2026-03-27T06:59:00Z"));
    assert!(running(s, "2026-03-27T07:00:00Z"));
    assert!(!running(s, "2026-03-27T18:00:00Z"));
    // Mon 2026-03-30, CEST (UTC+2).
    assert!(!running(s, "2026-03-30T05:59:00Z"));
    assert!(running(s, "2026-03-30T06:00:00Z"));
    assert!(running(s, "2026-03-30T16:59:00Z"));
    assert!(!running(s, "2026-03-30T17:00:00Z"));
    // Fri 2026-10-23 CEST, Mon 2026-10-26 CET.
    assert_eq!(offset_seconds(Tz::Europe__Berlin, "2026-10-25T00:59:00Z"), 7200);
    assert_eq!(offset_seconds(Tz::Europe__Berlin, "2026-10-25T01:00:00Z"), 3600);
    assert!(running(s, "2026-10-23T06:00:00Z"));
    assert!(!running(s, "2026-10-23T17:00:00Z"));
    assert!(!running(s, "2026-10-26T06:59:00Z"));
    assert!(running(s, "2026-10-26T07:00:00Z"));
    assert!(!running(s, "2026-10-26T18:00:00Z"));
}

#[test]
fn new_york_both_directions() {
    let ny = Tz::America__New_York;
    assert_eq!(offset_seconds(ny, "2026-03-08T06:59:00Z"), -5 * 3600);
    assert_eq!(offset_seconds(ny, "2026-03-08T07:00:00Z"), -4 * 3600);
    assert_eq!(offset_seconds(ny, "2026-11-01T05:59:00Z"), -4 * 3600);
    assert_eq!(offset_seconds(ny, "2026-11-01T06:00:00Z"), -5 * 3600);
    let s = "Mon-Fri 08:00-19:00 America/New_York";
    // Fri 2026-03-06 EST.
    assert!(!running(s, "2026-03-06T12:59:00Z"));
    assert!(running(s, "2026-03-06T13:00:00Z"));
    assert!(!running(s, "2026-03-07T00:00:00Z"), "19:00 EST");
    // Mon 2026-03-09 EDT.
    assert!(!running(s, "2026-03-09T11:59:00Z"));
    assert!(running(s, "2026-03-09T12:00:00Z"));
    assert!(running(s, "2026-03-09T22:59:00Z"));
    assert!(!running(s, "2026-03-09T23:00:00Z"));
    // Fri 2026-10-30 EDT, Mon 2026-11-02 EST.
    assert!(running(s, "2026-10-30T12:00:00Z"));
    assert!(!running(s, "2026-10-30T23:00:00Z"));
    assert!(!running(s, "2026-11-02T12:59:00Z"));
    assert!(running(s, "2026-11-02T13:00:00Z"));
    assert!(running(s, "2026-11-02T23:59:00Z"));
    assert!(!running(s, "2026-11-03T00:00:00Z"));
}

#[test]
fn new_york_overnight_across_fall_back() {
    // Sat 22:00 EDT to Sun 06:00 EST on 2026-10-31/11-01: nine real hours.
    let s = spec("Sat 22:00-06:00 America/New_York");
    let mut at = utc("2026-10-31T00:00:00Z");
    let mut minutes = 0;
    while at < utc("2026-11-02T00:00:00Z") {
        minutes += i32::from(s.is_running_at(at));
        at += Duration::minutes(1);
    }
    assert_eq!(minutes, 9 * 60);
    assert!(s.is_running_at(utc("2026-11-01T02:00:00Z")), "22:00 EDT");
    assert!(s.is_running_at(utc("2026-11-01T10:59:00Z")), "05:59 EST");
    assert!(!s.is_running_at(utc("2026-11-01T11:00:00Z")), "06:00 EST");
}

#[test]
fn sydney_both_directions() {
    let sydney = Tz::Australia__Sydney;
    // Back on 2026-04-05 at 03:00 AEDT (16:00Z on the 4th);
    // forward on 2026-10-04 at 02:00 AEST (16:00Z on the 3rd).
    assert_eq!(offset_seconds(sydney, "2026-04-04T15:59:00Z"), 11 * 3600);
    assert_eq!(offset_seconds(sydney, "2026-04-04T16:00:00Z"), 10 * 3600);
    assert_eq!(offset_seconds(sydney, "2026-10-03T15:59:00Z"), 10 * 3600);
    assert_eq!(offset_seconds(sydney, "2026-10-03T16:00:00Z"), 11 * 3600);
    let s = "Mon-Fri 08:00-19:00 Australia/Sydney";
    // Fri 2026-04-03 08:00 AEDT = Thu 21:00Z.
    assert!(!running(s, "2026-04-02T20:59:00Z"));
    assert!(running(s, "2026-04-02T21:00:00Z"));
    assert!(!running(s, "2026-04-03T08:00:00Z"), "19:00 AEDT");
    // Mon 2026-04-06 08:00 AEST = Sun 22:00Z.
    assert!(!running(s, "2026-04-05T21:59:00Z"));
    assert!(running(s, "2026-04-05T22:00:00Z"));
    assert!(running(s, "2026-04-06T08:59:00Z"));
    assert!(!running(s, "2026-04-06T09:00:00Z"));
    // Fri 2026-10-02 08:00 AEST = Thu 22:00Z; Mon 2026-10-05 08:00 AEDT = Sun 21:00Z.
    assert!(!running(s, "2026-10-01T21:59:00Z"));
    assert!(running(s, "2026-10-01T22:00:00Z"));
    assert!(!running(s, "2026-10-05T20:59:00Z"));
    assert!(running(s, "2026-10-05T21:00:00Z"));
    assert!(!running(s, "2026-10-05T08:00:00Z"), "Mon 19:00 AEDT");
}

#[test]
fn sydney_sunday_period_across_gap_and_overlap() {
    // On 2026-10-04 local 02:00-02:59 is skipped; on 2026-04-05 local 02:00-02:59 happens twice.
    let s = spec("Sun 02:00-04:00 Australia/Sydney");
    let minutes_on = |from: &str, to: &str| {
        let (mut at, end) = (utc(from), utc(to));
        let mut n = 0;
        while at < end {
            n += i32::from(s.is_running_at(at));
            at += Duration::minutes(1);
        }
        n
    };
    assert_eq!(minutes_on("2026-10-03T12:00:00Z", "2026-10-04T12:00:00Z"), 60, "only 03:00-04:00 AEDT");
    assert_eq!(minutes_on("2026-04-04T12:00:00Z", "2026-04-05T12:00:00Z"), 180, "02:00-03:00 twice, then 03:00-04:00");
}

#[test]
fn sweep_new_york_week_with_fall_back() {
    let s = spec("Mon-Fri 08:00-19:00 America/New_York");
    let ny = Tz::America__New_York;
    let start = utc("2026-10-28T00:00:00Z");
    let end = utc("2026-11-05T06:00:00Z");
    let mut starts = Vec::new();
    let mut stops = Vec::new();
    let mut previous = s.is_running_at(start);
    assert!(!previous, "midnight UTC is 20:00 local: stopped");
    let mut at = start + Duration::minutes(1);
    while at <= end {
        let now = s.is_running_at(at);
        if now != previous {
            let local = at.with_timezone(&ny);
            if now {
                starts.push((at, local));
            } else {
                stops.push((at, local));
            }
        }
        previous = now;
        at += Duration::minutes(1);
    }
    // Wed, Thu, Fri before the change; Mon, Tue, Wed after.
    assert_eq!(starts.len(), 6, "{starts:?}");
    assert_eq!(stops.len(), 6, "{stops:?}");
    for (utc_at, local) in &starts {
        assert_eq!((local.hour(), local.minute()), (8, 0), "start at {utc_at}");
        assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun));
    }
    for (utc_at, local) in &stops {
        assert_eq!((local.hour(), local.minute()), (19, 0), "stop at {utc_at}");
        assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun));
    }
    let start_hours: Vec<u32> = starts.iter().map(|(at, _)| at.hour()).collect();
    assert_eq!(start_hours, vec![12, 12, 12, 13, 13, 13], "UTC start moves an hour later after the change");
    let local_days: Vec<u32> = starts.iter().map(|(_, local)| local.day()).collect();
    assert_eq!(local_days, vec![28, 29, 30, 2, 3, 4]);
    let stop_days: Vec<u32> = stops.iter().map(|(_, local)| local.day()).collect();
    assert_eq!(stop_days, local_days, "each day stops on the day it started");
}

#[test]
fn evaluation_uses_zone_rules_not_a_fixed_offset() {
    // The same local schedule gives different UTC hours in winter and summer.
    let s = spec("Daily 12:00-13:00 Europe/London");
    let winter = Tz::Europe__London.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap().with_timezone(&Utc);
    let summer = Tz::Europe__London.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap().with_timezone(&Utc);
    assert_eq!(winter.hour(), 12);
    assert_eq!(summer.hour(), 11);
    assert!(s.is_running_at(winter));
    assert!(s.is_running_at(summer));
    assert!(!s.is_running_at(summer + Duration::hours(1)));
}

// ---- overrides ----

#[test]
fn overrides_parse() {
    assert_eq!(parse_override("2026-11-23T08:00:00Z"), Ok(utc("2026-11-23T08:00:00Z")));
    assert_eq!(parse_override("2026-11-23T08:00:00+01:00"), Ok(utc("2026-11-23T07:00:00Z")));
    assert_eq!(parse_override("2026-11-23T08:00:00.5-05:00"), Ok(utc("2026-11-23T13:00:00.5Z")));
    assert_eq!(parse_override("2026-11-23T08:00Z"), Ok(utc("2026-11-23T08:00:00Z")));
    assert_eq!(parse_override("2026-11-23T08:00z"), Ok(utc("2026-11-23T08:00:00Z")));
    assert_eq!(parse_override("2026-11-23T08:00+01:00"), Ok(utc("2026-11-23T07:00:00Z")));
    assert_eq!(parse_override("  2026-11-23T08:00:00Z "), Ok(utc("2026-11-23T08:00:00Z")));
}

#[test]
fn bad_overrides() {
    let message = |v: &str| {
        format!(
            "\"{v}\" is not a date and time with an offset: use RFC 3339, e.g. 2026-11-23T08:00:00Z or \
             2026-11-23T08:00+01:00"
        )
    };
    for value in ["2026-11-23T08:00", "2026-11-23", "tomorrow", "2026-13-01T08:00Z", "2026-11-23T25:00Z", ""] {
        assert_eq!(parse_override(value).unwrap_err().to_string(), message(value), "{value}");
    }
    assert_eq!(parse_override(" 2026-11-23 "), Err(ScheduleError::BadOverride { value: "2026-11-23".to_string() }));
}

// ---- definitions ----

#[test]
fn definitions_keep_good_and_bad_entries_apart() {
    let defs =
        parse_definitions(r#"{"office-hours": "Mon-Fri 08:00-19:00 Europe/London", "broken": "Mon-Fri 08:00-25:00"}"#)
            .unwrap();
    assert_eq!(defs.len(), 2);
    assert!(!defs.is_empty());
    assert_eq!(defs.names(), vec!["broken", "office-hours"]);
    assert_eq!(defs.get("office-hours"), Some(&Ok(spec("Mon-Fri 08:00-19:00 Europe/London"))));
    let broken = defs.get("broken").unwrap().as_ref().unwrap_err();
    assert_eq!(
        broken.to_string(),
        "schedule definition \"broken\": \"25:00\" is not a time: use HH:MM from 00:00 to 24:00"
    );
    assert_eq!(defs.get("Office-Hours"), None, "lookup is case-sensitive");
    assert_eq!(defs.get("missing"), None);
    assert_eq!(defs.iter().filter(|(_, r)| r.is_ok()).count(), 1);
}

#[test]
fn definitions_per_entry_errors() {
    let defs = parse_definitions(
        r#"{"n": 5, "alias": "office-hours", "Mon-Fri": "Daily 08:00-09:00", "bad name": "Daily 08:00-09:00",
            "": "Daily 08:00-09:00", "ok": "Daily 08:00-09:00"}"#,
    )
    .unwrap();
    let message = |name: &str| defs.get(name).unwrap().as_ref().unwrap_err().to_string();
    assert_eq!(
        message("n"),
        "schedule definition \"n\": the value must be a string such as \"Mon-Fri 08:00-19:00 Europe/London\", not \
         a number"
    );
    assert_eq!(
        message("alias"),
        "schedule definition \"alias\": \"office-hours\" is a schedule name, but a full schedule is needed here: \
         write days then HH:MM-HH:MM, e.g. Mon-Fri 08:00-19:00 (a definition cannot refer to another name)"
    );
    assert_eq!(
        message("Mon-Fri"),
        "schedule definition \"Mon-Fri\": \"Mon-Fri\" cannot be a schedule name because a tag with that \
            value reads \
         as days: choose another name, e.g. office-hours"
    );
    assert_eq!(
        message("bad name"),
        "schedule definition \"bad name\": \"bad name\" cannot be a schedule name: use only letters, \
            digits, -, _ and ."
    );
    assert_eq!(
        defs.get("").unwrap().as_ref().unwrap_err(),
        &ScheduleError::Definition {
            name: String::new(),
            error: Box::new(ScheduleError::BadName { name: String::new() })
        }
    );
    assert!(defs.get("ok").unwrap().is_ok());
}

#[test]
fn definitions_must_be_a_json_object() {
    let object_help = r#"{"office-hours": "Mon-Fri 08:00-19:00 Europe/London"}"#;
    assert_eq!(
        parse_definitions(r#"["Mon 08:00-09:00"]"#).unwrap_err().to_string(),
        format!("the schedule definitions must be a JSON object such as {object_help}, not an array")
    );
    assert_eq!(parse_definitions("null"), Err(ScheduleError::DefinitionsNotObject { found: "null".to_string() }));
    assert_eq!(
        parse_definitions(r#""Mon 08:00-09:00""#),
        Err(ScheduleError::DefinitionsNotObject { found: "a string".to_string() })
    );
    let message = parse_definitions(r#"{"a": "Mon 08:00-09:00""#).unwrap_err().to_string();
    assert!(
        message.starts_with("the schedule definitions are not valid JSON (EOF while parsing an object at line 1"),
        "{message}"
    );
    assert!(message.ends_with(&format!("): write an object such as {object_help}")), "{message}");
    assert_eq!(parse_definitions("{}").map(|d| d.is_empty()), Ok(true));
}

#[test]
fn resolve_tag_values() {
    let defs = parse_definitions(r#"{"office-hours": "Mon-Fri 08:00-19:00 Europe/London", "broken": "Mon-Fri 08:00"}"#)
        .unwrap();
    let named = parse("office-hours").unwrap();
    assert_eq!(defs.resolve(&named).unwrap().zone(), Tz::Europe__London);
    let inline = parse("Sat 10:00-11:00").unwrap();
    assert_eq!(defs.resolve(&inline).unwrap().to_string(), "Sat 10:00-11:00 UTC");
    assert_eq!(
        defs.resolve(&parse("broken").unwrap()).unwrap_err().to_string(),
        "schedule definition \"broken\": \"08:00\" is not a time range: use HH:MM-HH:MM, e.g. 08:00-19:00"
    );
    assert_eq!(
        defs.resolve(&parse("nights").unwrap()).unwrap_err().to_string(),
        "no schedule named \"nights\" is defined: add it to the schedule definitions, or write the schedule \
         itself, e.g. Mon-Fri 08:00-19:00 Europe/London"
    );
    assert_eq!(
        defs.resolve(&parse("Office-Hours").unwrap()).unwrap_err().to_string(),
        "no schedule named \"Office-Hours\" is defined (did you mean \"office-hours\"? names are case-sensitive): \
         add it to the schedule definitions, or write the schedule itself, e.g. Mon-Fri 08:00-19:00 Europe/London"
    );
}

// ---- calendar: nth and last weekdays, days of the month, months ----

fn date(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap_or_else(|e| panic!("bad test date {s}: {e}"))
}

/// The dates of `month` (YYYY-MM) on which `token` (a days token) matches, as days of the month.
fn matching_days(token: &str, month: &str) -> Vec<u32> {
    let set = days(token);
    let first = date(&format!("{month}-01"));
    first.iter_days().take_while(|d| d.month() == first.month()).filter(|d| set.matches(*d)).map(|d| d.day()).collect()
}

#[test]
fn nth_weekdays_match_their_occurrence_in_the_month() {
    // June 2026: Mondays 1, 8, 15, 22, 29; Fridays 5, 12, 19, 26.
    assert_eq!(matching_days("Mon#1", "2026-06"), vec![1]);
    assert_eq!(matching_days("Mon#2", "2026-06"), vec![8]);
    assert_eq!(matching_days("Mon#3", "2026-06"), vec![15]);
    assert_eq!(matching_days("Mon#4", "2026-06"), vec![22]);
    assert_eq!(matching_days("Mon#5", "2026-06"), vec![29]);
    assert_eq!(matching_days("Fri#5", "2026-06"), Vec::<u32>::new(), "no fifth Friday in June 2026");
    assert_eq!(matching_days("FriL", "2026-06"), vec![26]);
    assert_eq!(matching_days("MonL", "2026-06"), vec![29], "the fifth Monday is also the last");
    assert_eq!(matching_days("SunL", "2026-03"), vec![29]);
    assert_eq!(matching_days("Sun#1", "2026-03"), vec![1]);
    // Spellings: case-insensitive, full names, Fri#L as a synonym of FriL.
    for spelling in ["FriL", "fril", "FRIL", "Fri#L", "friday#l", "FridayL"] {
        assert_eq!(days(spelling), days("FriL"), "{spelling}");
    }
    assert_eq!(days("monday#2"), days("Mon#2"));
    // Mixed with other items in a + list: a union.
    assert_eq!(matching_days("Sat-Sun+Mon#1+FriL", "2026-06"), vec![1, 6, 7, 13, 14, 20, 21, 26, 27, 28]);
}

#[test]
fn days_of_the_month_and_the_last_day() {
    assert_eq!(matching_days("Day1", "2026-06"), vec![1]);
    assert_eq!(matching_days("Day15", "2026-06"), vec![15]);
    assert_eq!(matching_days("Day1-7", "2026-06"), vec![1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(matching_days("DayL", "2026-06"), vec![30]);
    assert_eq!(matching_days("DayL", "2026-02"), vec![28]);
    assert_eq!(matching_days("DayL", "2028-02"), vec![29], "leap year");
    assert_eq!(matching_days("DayL", "2026-12"), vec![31]);
    assert_eq!(matching_days("Day31", "2026-06"), Vec::<u32>::new(), "June has no 31st");
    assert_eq!(matching_days("Day29-L", "2026-02"), Vec::<u32>::new());
    assert_eq!(matching_days("Day25-L", "2026-06"), vec![25, 26, 27, 28, 29, 30]);
    assert_eq!(days("Day25-L"), days("Day25-31"), "days past the end do not exist");
    assert_eq!(days("day1-7"), days("DAY1-7"));
    assert_eq!(matching_days("Day1+Day15+DayL", "2026-06"), vec![1, 15, 30]);
    assert_eq!(matching_days("Mon+Day1", "2026-03"), vec![1, 2, 9, 16, 23, 30], "days and weekdays: a union");
}

#[test]
fn months_restrict_the_days_that_follow() {
    let s = spec("Jan-Mar Mon-Fri 08:00-19:00 Europe/London");
    assert!(s.is_running_at(utc("2026-03-31T12:00:00Z")), "Tue 31 March");
    assert!(!s.is_running_at(utc("2026-04-01T12:00:00Z")), "Wed 1 April");
    assert!(s.is_running_at(utc("2026-01-05T12:00:00Z")));
    assert!(!s.is_running_at(utc("2026-01-03T12:00:00Z")), "a Saturday in January");
    // Months alone: every day of those months.
    assert_eq!(spec("Dec 08:00-09:00"), spec("Dec Daily 08:00-09:00"));
    assert!(running("Dec 08:00-09:00", "2026-12-26T08:30:00Z"));
    assert!(!running("Dec 08:00-09:00", "2026-11-30T08:30:00Z"));
    // Ranges wrap past December; lists; full names; either order with the days.
    assert_eq!(spec("Nov-Feb Daily 08:00-09:00"), spec("Nov+Dec+Jan+Feb Daily 08:00-09:00"));
    assert_eq!(spec("november-february daily 08:00-09:00"), spec("Nov-Feb Daily 08:00-09:00"));
    assert_eq!(spec("Mon-Fri Jan 08:00-09:00"), spec("Jan Mon-Fri 08:00-09:00"));
    assert!(running("Nov-Feb Daily 08:00-09:00", "2026-01-15T08:00:00Z"));
    assert!(!running("Nov-Feb Daily 08:00-09:00", "2026-03-01T08:00:00Z"));
    // Months belong to the next days token only; extra time ranges keep them.
    let s = spec("Dec Mon-Fri 08:00-12:00 13:00-17:00 Sat 10:00-11:00");
    assert!(running_s(&s, "2026-12-01T13:30:00Z"));
    assert!(!running_s(&s, "2026-11-03T13:30:00Z"), "November: not in Dec");
    assert!(running_s(&s, "2026-11-07T10:30:00Z"), "Saturdays all year");
    // An overnight period belongs to its start day, so its start day's month decides.
    let s = spec("Jan Daily 22:00-06:00");
    assert!(running_s(&s, "2026-02-01T05:00:00Z"), "the tail of 31 January's period");
    assert!(!running_s(&s, "2026-02-01T22:00:00Z"));
}

fn running_s(schedule: &Schedule, at: &str) -> bool {
    schedule.is_running_at(utc(at))
}

#[test]
fn nth_weekday_on_a_dst_day() {
    // SunL in March 2026 is the 29th, when London springs forward at 01:00 GMT.
    let s = spec("SunL 01:30-03:00 Europe/London");
    assert!(!running_s(&s, "2026-03-29T00:59:00Z"));
    assert!(running_s(&s, "2026-03-29T01:00:00Z"), "02:00 BST");
    assert!(!running_s(&s, "2026-03-29T02:00:00Z"), "03:00 BST");
    assert!(!running_s(&s, "2026-03-22T01:45:00Z"), "not the last Sunday");
}

#[test]
fn calendar_tokens_display_and_round_trip() {
    let cases = [
        ("Mon#1 09:00-10:00", "Mon#1 09:00-10:00 UTC"),
        ("fril 09:00-10:00", "FriL 09:00-10:00 UTC"),
        ("Fri#L+Mon#1+Mon#3 09:00-10:00", "Mon#1+Mon#3+FriL 09:00-10:00 UTC"),
        ("Mon-Fri+Sun#2 08:00-19:00 Europe/London", "Mon-Fri+Sun#2 08:00-19:00 Europe/London"),
        ("DayL+Day1-7+Day15 08:00-09:00", "Day1-7+Day15+DayL 08:00-09:00 UTC"),
        ("Day25-L 08:00-09:00", "Day25-31 08:00-09:00 UTC"),
        ("Day1+Day2+Day3 08:00-09:00", "Day1-3 08:00-09:00 UTC"),
        ("jan+feb+march Weekdays 08:00-09:00", "Jan-Mar Mon-Fri 08:00-09:00 UTC"),
        ("Dec+Jan 08:00-09:00", "Dec-Jan Daily 08:00-09:00 UTC"),
        ("Mon Jul+Jan 08:00-09:00", "Jan+Jul Mon 08:00-09:00 UTC"),
        ("Jan Mon 08:00-09:00 Mon 10:00-11:00", "Jan Mon 08:00-09:00 Mon 10:00-11:00 UTC"),
        ("Mon-Fri 08:00-19:00 Europe/London except uk-2026", "Mon-Fri 08:00-19:00 Europe/London except uk-2026"),
        ("Mon 08:00-09:00 EXCEPT a+b+a Europe/Paris", "Mon 08:00-09:00 Europe/Paris except a+b"),
        ("Mon-Fri 08:00-19:00 Europe/London !", "Mon-Fri 08:00-19:00 Europe/London !"),
        ("Mon-Fri 08:00-19:00 Europe/London!", "Mon-Fri 08:00-19:00 Europe/London !"),
        ("Mon 08:00-09:00!", "Mon 08:00-09:00 UTC !"),
        ("Mon 08:00-09:00 except x!", "Mon 08:00-09:00 UTC except x !"),
    ];
    for (input, expected) in cases {
        let schedule = spec(input);
        let shown = schedule.to_string();
        assert_eq!(shown, expected, "{input}");
        assert_eq!(spec(&shown), schedule, "{shown} parses back to the same schedule");
        assert_eq!(parse(&shown), Ok(TagValue::Spec(schedule)), "{shown} as a tag");
    }
}

#[test]
fn new_day_words_are_no_longer_names_but_others_still_are() {
    for value in ["FriL", "Mon#1", "Day1", "DayL", "Day1-7", "Jan", "Jan-Mar", "Mon+DayL"] {
        assert_eq!(parse(value), Err(ScheduleError::NoTimeRange { days: value.to_string() }), "{value}");
    }
    for name in ["Daylight", "Days", "Day", "Mondays", "January2026", "except", "Fril-team", "L"] {
        assert_eq!(parse(name), Ok(TagValue::Named(name.to_string())), "{name}");
    }
}

#[test]
fn calendar_errors_name_the_token_and_the_fix() {
    assert_eq!(
        err("Mon#6 08:00-09:00"),
        "\"Mon#6\" is not an nth weekday: use Mon#1 to Mon#5 for the first to the fifth Mon of the month, or MonL \
         for the last"
    );
    assert_eq!(parse("Fri#0 08:00-09:00"), Err(ScheduleError::BadNthDay { item: "Fri#0".into(), day: "Fri".into() }));
    assert_eq!(parse("Fri#01 08:00-09:00"), Err(ScheduleError::BadNthDay { item: "Fri#01".into(), day: "Fri".into() }));
    assert_eq!(parse("Fri# 08:00-09:00"), Err(ScheduleError::BadNthDay { item: "Fri#".into(), day: "Fri".into() }));
    assert_eq!(
        parse("Mon+Fry#1 08:00-09:00"),
        Err(ScheduleError::UnknownDay { item: "Fry".into(), token: "Mon+Fry#1".into() })
    );
    assert_eq!(parse("Mon#1-Fri 08:00-09:00"), Err(ScheduleError::BadDayRange { item: "Mon#1-Fri".into() }));
    assert_eq!(parse("Mon-FriL 08:00-09:00"), Err(ScheduleError::BadDayRange { item: "Mon-FriL".into() }));
    let month_day = |item: &str| {
        format!(
            "\"{item}\" is not a day of the month: use Day1 to Day31, DayL for the last day, or a range such as \
             Day1-7 or Day25-L"
        )
    };
    for item in ["Day0", "Day32", "Day7-1", "Day1-", "Day1-Day7", "Day001", "DayL-5", "Day1x"] {
        assert_eq!(err(&format!("{item} 08:00-09:00")), month_day(item), "{item}");
    }
    assert_eq!(
        err("Jan-Mrz Mon 08:00-09:00"),
        "unknown month \"Mrz\" in \"Jan-Mrz\": use Jan, Feb, … Dec, a range (Jan-Mar) or a list (Jan+Jul), in a \
         token of their own before the days, e.g. Jan-Mar Mon-Fri 08:00-19:00"
    );
    assert_eq!(
        parse("Jan+Mon 08:00-09:00"),
        Err(ScheduleError::UnknownMonth { item: "Mon".into(), token: "Jan+Mon".into() }),
        "months and days are separate tokens"
    );
    assert_eq!(
        err("Jan-Mar-May 08:00-09:00"),
        "\"Jan-Mar-May\" is not a month range: join two months with -, e.g. Jan-Mar"
    );
    assert_eq!(
        err("Jan++Mar 08:00-09:00"),
        "\"Jan++Mar\" has an empty item: join months with a single +, e.g. Jan+Jul"
    );
    assert_eq!(
        err("Jan Mar Mon 08:00-09:00"),
        "\"Jan\" is followed by more months \"Mar\" with no time range between them: join months with +, e.g. \
         Jan+Mar"
    );
    assert_eq!(parse("Mon 08:00-09:00 Jan"), Err(ScheduleError::NoTimeRange { days: "Jan".into() }));
    assert_eq!(parse("Jan Mon Europe/London"), Err(ScheduleError::NoTimeRange { days: "Jan".into() }));
    assert_eq!(parse("Jan+Foo"), Err(ScheduleError::UnknownMonth { item: "Foo".into(), token: "Jan+Foo".into() }));
}

#[test]
fn enforcement_and_holiday_clause_errors() {
    assert_eq!(
        err("Mon! 08:00-09:00"),
        "\"Mon!\" has a ! inside the schedule: put ! only at the very end, e.g. Mon-Fri 08:00-19:00 UTC !"
    );
    assert_eq!(parse("Mon 08:00-09:00 !!"), Err(ScheduleError::MisplacedEnforcement { token: "!".into() }));
    assert_eq!(parse("office!!"), Err(ScheduleError::MisplacedEnforcement { token: "office!".into() }));
    assert_eq!(
        err("Mon 08:00-09:00 except"),
        "\"except\" needs the name of a holiday list after it, e.g. Mon-Fri 08:00-19:00 Europe/London except uk-2026"
    );
    assert_eq!(
        err("Mon 08:00-09:00 except uk+"),
        "\"uk+\" is not a holiday list name: use names made of letters, digits, -, _ and ., joined with +, e.g. \
         except uk-2026+office-closed"
    );
    assert_eq!(parse("Mon 08:00-09:00 except a@b"), Err(ScheduleError::BadHolidayListName { token: "a@b".into() }));
    assert_eq!(
        err("Mon 08:00-09:00 except uk Tue 08:00-09:00"),
        "\"except uk\" must come after all periods (only the time zone may follow it): e.g. Mon-Fri 08:00-19:00 \
         Europe/London except uk"
    );
    assert_eq!(
        parse("Mon 08:00-09:00 except uk except us"),
        Err(ScheduleError::ExceptNotLast { lists: "uk".into() }),
        "one except, lists joined with +"
    );
    assert_eq!(parse("except uk"), Err(ScheduleError::Empty));
    assert_eq!(parse("!"), Err(ScheduleError::Empty));
}

// ---- enforcement ----

#[test]
fn enforcement_mark_on_specs_and_names() {
    assert!(!spec("Mon-Fri 08:00-19:00 Europe/London").enforced(), "not enforced by default");
    for value in ["Mon-Fri 08:00-19:00 Europe/London !", "Mon-Fri 08:00-19:00 Europe/London!", "Mon 08:00-09:00!"] {
        assert!(spec(value).enforced(), "{value}");
    }
    assert_eq!(parse("office-hours!"), Ok(TagValue::Named("office-hours!".into())));
    assert_eq!(parse(" office-hours  ! "), Ok(TagValue::Named("office-hours!".into())));
    assert_eq!(parse("office-hours!").unwrap().to_string(), "office-hours!");
    let defs = parse_definitions(
        r#"{"office-hours": "Mon-Fri 08:00-19:00 Europe/London", "strict": "Mon-Fri 08:00-19:00 Europe/London !"}"#,
    )
    .unwrap();
    let resolve = |tag: &str| defs.resolve(&parse(tag).unwrap()).map(Schedule::enforced);
    assert_eq!(resolve("office-hours"), Ok(false));
    assert_eq!(resolve("office-hours!"), Ok(true), "! on the tag");
    assert_eq!(resolve("strict"), Ok(true), "! in the definition");
    assert_eq!(resolve("strict!"), Ok(true), "both");
    let enforced = defs.resolve_value(&parse("office-hours!").unwrap()).unwrap();
    assert_eq!(enforced.to_string(), "Mon-Fri 08:00-19:00 Europe/London !");
    assert_eq!(
        defs.resolve(&parse("nights!").unwrap()),
        Err(ScheduleError::UnknownName { name: "nights".into(), suggestion: None }),
        "the error names the schedule without the mark"
    );
    assert!(!defs.names().contains(&"office-hours!"));
}

// ---- holidays ----

const HOLIDAY_DEFINITIONS: &str = r#"{
    "holidays": {"uk-2026": ["2026-12-24", "2026-12-25..2026-12-28"], "mayday": ["2026-05-04"], "none": []},
    "office": "Mon-Fri 08:00-19:00 Europe/London except uk-2026",
    "nights": "Daily 22:00-06:00 UTC except mayday",
    "both": "Mon-Fri 08:00-19:00 Europe/London except uk-2026+mayday !",
    "empty": "Daily 08:00-09:00 except none"
}"#;

fn defined(name: &str) -> Schedule {
    let defs = parse_definitions(HOLIDAY_DEFINITIONS).unwrap();
    defs.resolve(&TagValue::Named(name.into())).unwrap_or_else(|e| panic!("{name}: {e}")).clone()
}

#[test]
fn holidays_stop_the_resource_all_day_in_the_schedule_zone() {
    let office = defined("office");
    assert!(office.holidays_resolved());
    assert_eq!(office.holiday_lists(), ["uk-2026".to_string()]);
    assert!(running_s(&office, "2026-12-23T12:00:00Z"), "Wednesday before");
    assert!(!running_s(&office, "2026-12-24T12:00:00Z"), "a single date");
    assert!(!running_s(&office, "2026-12-25T12:00:00Z"), "first day of the range");
    assert!(!running_s(&office, "2026-12-28T12:00:00Z"), "Monday, last day of the range (inclusive)");
    assert!(running_s(&office, "2026-12-29T08:00:00Z"), "Tuesday after");
    // The office list does not include May Day, "both" does.
    assert!(running_s(&office, "2026-05-04T12:00:00Z"));
    let both = defined("both");
    assert!(!running_s(&both, "2026-05-04T12:00:00Z"));
    assert!(!running_s(&both, "2026-12-24T12:00:00Z"));
    assert!(both.enforced());
    assert!(running_s(&defined("empty"), "2026-12-25T08:30:00Z"), "an empty list skips nothing");
}

#[test]
fn holidays_use_the_local_date() {
    let defs = parse_definitions(
        r#"{"holidays": {"h": ["2026-07-04"]}, "ny": "Daily 00:00-24:00 America/New_York except h"}"#,
    )
    .unwrap();
    let ny = defs.resolve_value(&TagValue::Named("ny".into())).unwrap();
    assert!(ny.is_running_at(utc("2026-07-04T03:59:00Z")), "still 3 July 23:59 in New York");
    assert!(!ny.is_running_at(utc("2026-07-04T04:00:00Z")), "4 July 00:00 EDT");
    assert!(!ny.is_running_at(utc("2026-07-05T03:59:00Z")));
    assert!(ny.is_running_at(utc("2026-07-05T04:00:00Z")));
}

#[test]
fn holidays_and_overnight_periods() {
    // 2026-05-04 is the holiday: the period from the 3rd runs until midnight, the one starting on the 4th
    // does not happen at all (not even its morning of the 5th), the one starting on the 5th does.
    let nights = defined("nights");
    assert!(running_s(&nights, "2026-05-03T23:59:00Z"));
    assert!(!running_s(&nights, "2026-05-04T00:00:00Z"));
    assert!(!running_s(&nights, "2026-05-04T22:00:00Z"));
    assert!(!running_s(&nights, "2026-05-05T03:00:00Z"));
    assert!(running_s(&nights, "2026-05-05T22:00:00Z"));
    assert!(running_s(&nights, "2026-05-06T05:59:00Z"));
}

#[test]
fn holiday_lists_in_tags_resolve_through_the_definitions() {
    let defs = parse_definitions(HOLIDAY_DEFINITIONS).unwrap();
    let tag = parse("Mon-Fri 08:00-19:00 Europe/London except uk-2026").unwrap();
    assert!(tag.needs_definitions());
    assert!(!parse("Mon 08:00-09:00").unwrap().needs_definitions());
    assert!(parse("office").unwrap().needs_definitions());
    let TagValue::Spec(unresolved) = &tag else { panic!("a spec") };
    assert!(!unresolved.holidays_resolved());
    assert!(running_s(unresolved, "2026-12-24T12:00:00Z"), "unresolved lists skip nothing");
    assert_eq!(defs.resolve(&tag), Ok(unresolved), "resolve leaves a tag's schedule as written");
    let resolved = defs.resolve_value(&tag).unwrap();
    assert!(resolved.holidays_resolved());
    assert!(!running_s(&resolved, "2026-12-24T12:00:00Z"));
    assert_eq!(resolved.to_string(), "Mon-Fri 08:00-19:00 Europe/London except uk-2026");
    assert_eq!(defs.resolve_value(&parse("office").unwrap()), Ok(defined("office")));
    assert_eq!(
        defs.resolve_value(&parse("Mon 08:00-09:00 except uk-2062").unwrap()).unwrap_err().to_string(),
        "no holiday list named \"uk-2062\" is defined: add it under \"holidays\" in the schedule definitions, e.g. \
         {\"holidays\": {\"uk-2026\": [\"2026-12-25\", \"2026-12-28..2026-12-31\"]}}, or remove \"except uk-2062\""
    );
    assert_eq!(
        defs.resolve_value(&parse("Mon 08:00-09:00 except UK-2026").unwrap()),
        Err(ScheduleError::UnknownHolidayList { list: "UK-2026".into(), suggestion: Some("uk-2026".into()) })
    );
}

#[test]
fn holiday_definition_errors() {
    let defs = parse_definitions(
        r#"{
        "holidays": {"bad-date": ["2026-13-01"], "reversed": ["2026-12-31..2026-12-24"], "not-array": "2026-12-25",
                     "number": [20261225], "bad name": [], "short": ["2026-1-5"], "ok": ["2026-12-25"]},
        "missing": "Mon 08:00-09:00 except nope",
        "uses-bad": "Mon 08:00-09:00 except ok+bad-date",
        "uses-reversed": "Mon 08:00-09:00 except reversed",
        "uses-not-array": "Mon 08:00-09:00 except not-array",
        "uses-number": "Mon 08:00-09:00 except number",
        "uses-short": "Mon 08:00-09:00 except short",
        "fine": "Mon 08:00-09:00 except ok"
    }"#,
    )
    .unwrap();
    let message = |name: &str| defs.resolve(&TagValue::Named(name.into())).unwrap_err().to_string();
    assert_eq!(
        message("missing"),
        "schedule definition \"missing\": no holiday list named \"nope\" is defined: add it under \"holidays\" in \
         the schedule definitions, e.g. {\"holidays\": {\"uk-2026\": [\"2026-12-25\", \"2026-12-28..2026-12-31\"]}}, \
         or remove \"except nope\""
    );
    assert_eq!(
        message("uses-bad"),
        "schedule definition \"uses-bad\": holiday list \"bad-date\": \"2026-13-01\" is not a date: use YYYY-MM-DD \
         or an inclusive range YYYY-MM-DD..YYYY-MM-DD, e.g. 2026-12-24..2026-12-31"
    );
    assert_eq!(
        message("uses-reversed"),
        "schedule definition \"uses-reversed\": holiday list \"reversed\": \"2026-12-31..2026-12-24\" ends before it \
         starts: write the earlier date first, e.g. 2026-12-24..2026-12-31"
    );
    assert_eq!(
        message("uses-not-array"),
        "schedule definition \"uses-not-array\": holiday list \"not-array\": the list must be an array of dates \
         such as [\"2026-12-25\", \"2026-12-28..2026-12-31\"], not a string"
    );
    assert!(
        message("uses-number").ends_with(
            "\"20261225\" is not a date: use YYYY-MM-DD or an inclusive range \
         YYYY-MM-DD..YYYY-MM-DD, e.g. 2026-12-24..2026-12-31"
        ),
        "{}",
        message("uses-number")
    );
    assert!(message("uses-short").contains("\"2026-1-5\" is not a date"));
    assert!(defs.resolve(&TagValue::Named("fine".into())).is_ok(), "a bad list spoils only its users");
    assert_eq!(
        defs.names(),
        vec!["fine", "missing", "uses-bad", "uses-not-array", "uses-number", "uses-reversed", "uses-short"]
    );
}

#[test]
fn holidays_key_keeps_its_old_meaning_when_it_is_a_string() {
    let defs = parse_definitions(r#"{"holidays": "Sat-Sun 10:00-16:00"}"#).unwrap();
    assert_eq!(defs.names(), vec!["holidays"]);
    assert_eq!(defs.get("holidays"), Some(&Ok(spec("Sat-Sun 10:00-16:00"))));
    let defs = parse_definitions(r#"{"holidays": ["2026-12-25"]}"#).unwrap();
    assert_eq!(
        defs.get("holidays").unwrap().as_ref().unwrap_err().to_string(),
        "schedule definition \"holidays\": \"holidays\" must be an object of list name to dates such as \
         {\"holidays\": {\"uk-2026\": [\"2026-12-25\", \"2026-12-28..2026-12-31\"]}}, not an array"
    );
    let defs = parse_definitions(r#"{"Jan": "Daily 08:00-09:00", "FriL": "Daily 08:00-09:00"}"#).unwrap();
    assert_eq!(
        defs.get("Jan"),
        Some(&Err(ScheduleError::Definition {
            name: "Jan".into(),
            error: Box::new(ScheduleError::NameIsDays { name: "Jan".into() })
        }))
    );
    assert!(defs.get("FriL").unwrap().is_err());
}

// ---- last_change ----

/// The reference: every minute from `at` back, as `last_change` is specified.
fn last_change_by_scan(schedule: &Schedule, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let newest = at - Duration::seconds(i64::from(at.second())) - Duration::nanoseconds(i64::from(at.nanosecond()));
    let mut t = newest;
    let state = schedule.is_running_at(t);
    while t >= newest - LOOKBACK {
        if schedule.is_running_at(t - Duration::minutes(1)) != state {
            return Some(t);
        }
        t -= Duration::minutes(1);
    }
    None
}

#[test]
fn last_change_across_spring_forward_with_an_overnight_period() {
    // London springs forward on Sunday 2026-03-29 at 01:00 GMT: 01:00-01:59 local does not exist, so
    // Saturday's 23:30-01:30 ends at the jump (01:00Z, 02:00 BST).
    let s = spec("Daily 23:30-01:30 Europe/London");
    assert_eq!(s.last_change(utc("2026-03-29T00:10:00Z")), Some(utc("2026-03-28T23:30:00Z")), "the start, GMT");
    assert_eq!(s.last_change(utc("2026-03-29T05:00:00Z")), Some(utc("2026-03-29T01:00:00Z")), "the end, at the jump");
    assert_eq!(s.last_change(utc("2026-03-29T01:00:00Z")), Some(utc("2026-03-29T01:00:00Z")), "at the change itself");
    assert_eq!(s.last_change(utc("2026-03-29T23:00:00Z")), Some(utc("2026-03-29T22:30:00Z")), "Sunday's start, BST");
    assert_eq!(s.last_change(utc("2026-03-29T00:59:59.9Z")), Some(utc("2026-03-28T23:30:00Z")), "seconds ignored");
}

#[test]
fn last_change_across_fall_back_sees_the_repeated_hour() {
    // London falls back on Sunday 2026-10-25 at 01:00 UTC: local 01:00-01:59 happens twice, so Saturday's
    // 23:30-01:30 stops at 01:30 BST (00:30Z), starts again at 01:00 GMT (01:00Z), stops at 01:30 GMT.
    let s = spec("Daily 23:30-01:30 Europe/London");
    assert_eq!(s.last_change(utc("2026-10-25T00:10:00Z")), Some(utc("2026-10-24T22:30:00Z")));
    assert_eq!(s.last_change(utc("2026-10-25T00:59:00Z")), Some(utc("2026-10-25T00:30:00Z")));
    assert_eq!(s.last_change(utc("2026-10-25T01:29:00Z")), Some(utc("2026-10-25T01:00:00Z")));
    assert_eq!(s.last_change(utc("2026-10-25T12:00:00Z")), Some(utc("2026-10-25T01:30:00Z")));
}

#[test]
fn last_change_over_a_holiday_range() {
    // uk-2026 covers 24-28 December; the office runs Mon-Fri, so Wednesday 23rd's 19:00 is the last
    // change until Tuesday 29th 08:00 (GMT).
    let office = defined("office");
    assert_eq!(office.last_change(utc("2026-12-27T12:00:00Z")), Some(utc("2026-12-23T19:00:00Z")));
    assert_eq!(office.last_change(utc("2026-12-28T12:00:00Z")), Some(utc("2026-12-23T19:00:00Z")));
    assert_eq!(office.last_change(utc("2026-12-29T09:00:00Z")), Some(utc("2026-12-29T08:00:00Z")));
    // Overnight into and out of a holiday: stopped at the holiday's midnight, no period from it.
    let nights = defined("nights");
    assert_eq!(nights.last_change(utc("2026-05-05T12:00:00Z")), Some(utc("2026-05-04T00:00:00Z")));
    assert_eq!(nights.last_change(utc("2026-05-05T23:00:00Z")), Some(utc("2026-05-05T22:00:00Z")));
}

#[test]
fn last_change_lookback_and_no_change() {
    assert_eq!(LOOKBACK, Duration::days(35));
    assert_eq!(spec("Daily 00:00-24:00 Europe/London").last_change(utc("2026-03-29T12:00:00Z")), None);
    // January's last period ended on 31 January at 09:00: 33.6 days before 6 March, 37.6 before 10 March.
    let s = spec("Jan Daily 08:00-09:00");
    assert_eq!(s.last_change(utc("2026-03-06T00:00:00Z")), Some(utc("2026-01-31T09:00:00Z")));
    assert_eq!(s.last_change(utc("2026-03-10T00:00:00Z")), None);
    // Exactly LOOKBACK back is still found, a minute more is not.
    let at = utc("2026-01-31T09:00:00Z") + LOOKBACK;
    assert_eq!(s.last_change(at), Some(utc("2026-01-31T09:00:00Z")));
    assert_eq!(s.last_change(at + Duration::minutes(1)), None);
}

#[test]
fn last_change_agrees_with_a_minute_by_minute_scan() {
    let schedules = [
        "Mon-Fri 08:00-19:00 Europe/London",
        "Daily 23:30-01:30 Europe/London",
        "Sun 01:30-03:00 Europe/London",
        "Sun 01:30-02:00 Europe/London",
        "Sat 22:00-06:00 America/New_York",
        "Sun 02:00-04:00 Australia/Sydney",
        "Daily 02:15-02:45 Europe/Berlin",
        "Mon#1+FriL 09:00-17:00 Europe/Berlin",
        "Nov-Mar Day1+DayL 22:00-02:00 America/New_York",
        "SunL 00:00-24:00 Europe/London",
        "Weekdays 07:30-18:00 Sat 10:00-14:00 Weekends 20:00-21:00 Asia/Kolkata",
        "Daily 00:00-24:00 UTC",
    ];
    let instants = [
        "2026-03-08T12:00:00Z",
        "2026-03-29T01:30:00Z",
        "2026-03-30T06:59:00Z",
        "2026-04-01T00:00:00Z",
        "2026-04-05T16:30:00Z",
        "2026-10-04T17:00:00Z",
        "2026-10-25T01:45:30Z",
        "2026-11-01T07:00:00Z",
        "2026-12-01T03:00:00Z",
    ];
    for text in schedules {
        let s = spec(text);
        for at in instants {
            let at = utc(at);
            assert_eq!(s.last_change(at), last_change_by_scan(&s, at), "{text} at {at}");
        }
    }
    let office = defined("office");
    for at in ["2026-12-24T12:00:00Z", "2026-12-29T07:59:00Z", "2026-12-29T08:00:00Z", "2027-01-02T00:00:00Z"] {
        assert_eq!(office.last_change(utc(at)), last_change_by_scan(&office, utc(at)), "office at {at}");
    }
}

// ---- next_change ----

/// The reference: every minute after `after`, as `next_change` is specified.
fn next_change_by_scan(schedule: &Schedule, after: DateTime<Utc>, within: Duration) -> Option<DateTime<Utc>> {
    let minute = Duration::minutes(1);
    let start =
        after - Duration::seconds(i64::from(after.second())) - Duration::nanoseconds(i64::from(after.nanosecond()));
    let mut t = start + minute;
    while t <= start + minute + within {
        if schedule.is_running_at(t) != schedule.is_running_at(t - minute) {
            return Some(t);
        }
        t += minute;
    }
    None
}

#[test]
fn next_change_across_spring_forward_and_fall_back() {
    let s = spec("Daily 23:30-01:30 Europe/London");
    let week = Duration::days(7);
    // Spring forward: Saturday's period ends at the jump (01:00Z = 02:00 BST).
    assert_eq!(s.next_change(utc("2026-03-28T23:45:00Z"), week), Some(utc("2026-03-29T01:00:00Z")));
    // Fall back: 01:30 BST (00:30Z), again 01:00 GMT (01:00Z), then 01:30 GMT (01:30Z).
    assert_eq!(s.next_change(utc("2026-10-25T00:10:00Z"), week), Some(utc("2026-10-25T00:30:00Z")));
    assert_eq!(s.next_change(utc("2026-10-25T00:30:00Z"), week), Some(utc("2026-10-25T01:00:00Z")));
    assert_eq!(s.next_change(utc("2026-10-25T01:00:00Z"), week), Some(utc("2026-10-25T01:30:00Z")));
    assert_eq!(spec("Daily 00:00-24:00 UTC").next_change(utc("2026-03-29T12:00:00Z"), week), None);
}

#[test]
fn next_change_agrees_with_a_minute_by_minute_scan() {
    let schedules = [
        "Mon-Fri 08:00-19:00 Europe/London",
        "Daily 23:30-01:30 Europe/London",
        "Sun 01:30-03:00 Europe/London",
        "Sat 22:00-06:00 America/New_York",
        "Sun 02:00-04:00 Australia/Sydney",
        "Daily 02:15-02:45 Europe/Berlin",
        "Mon#1+FriL 09:00-17:00 Europe/Berlin",
        "Nov-Mar Day1+DayL 22:00-02:00 America/New_York",
        "Weekdays 07:30-18:00 Sat 10:00-14:00 Weekends 20:00-21:00 Asia/Kolkata",
    ];
    let instants = [
        "2026-03-07T12:00:00Z",
        "2026-03-28T23:59:30Z",
        "2026-03-29T00:59:00Z",
        "2026-10-03T15:00:00Z",
        "2026-10-25T00:45:00Z",
        "2026-10-31T23:00:00Z",
    ];
    for text in schedules {
        let s = spec(text);
        for at in instants {
            let at = utc(at);
            for within in [Duration::hours(3), Duration::days(10)] {
                assert_eq!(
                    s.next_change(at, within),
                    next_change_by_scan(&s, at, within),
                    "{text} after {at} within {within}"
                );
            }
        }
    }
    let office = defined("office");
    for at in ["2026-12-23T18:00:00Z", "2026-12-24T00:00:00Z", "2026-12-29T07:59:00Z"] {
        let within = Duration::days(10);
        assert_eq!(
            office.next_change(utc(at), within),
            next_change_by_scan(&office, utc(at), within),
            "office after {at}"
        );
    }
}
