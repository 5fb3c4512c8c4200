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
