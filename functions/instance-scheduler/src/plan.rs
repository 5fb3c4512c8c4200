//! Deciding, per resource, what to do. Pure: the resource as discovered, the request, the schedule
//! definitions — no AWS calls, so every rule is unit-tested here.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::direction::Direction;
use crate::kinds::{Resource, State};
use crate::request::{Action, Request};
use crate::schedule::{self, Definitions, Schedule, TagValue};
use crate::settings::TagKeys;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Start,
    Stop,
    /// Already where it should be (or on its way there).
    Unchanged,
    /// Not acted on, for the reason given.
    Skip(String),
}

/// Named schedules: the SSM parameter that defines them and what loading it gave; and, for one run,
/// what each tag value evaluated to (a fleet has thousands of resources and a handful of schedules).
#[derive(Debug, Default)]
pub struct Named {
    /// The parameter's name, when one is configured.
    pub parameter: Option<String>,
    /// Its parsed contents, or why they couldn't be read.
    pub definitions: Option<Result<Definitions, DefinitionsError>>,
    /// Tag value and instant → its evaluation.
    evaluated: Mutex<HashMap<(String, DateTime<Utc>), Evaluation>>,
}

/// A tag value's schedule at an instant, or why it has none.
type Evaluation = Result<Evaluated, Unresolved>;

/// The named schedules' parameter could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DefinitionsError {
    /// GetParameter failed, or had no answer by the cutoff.
    #[error("{0}")]
    Read(String),
    #[error("SSM parameter {parameter}: {error}")]
    Parse { parameter: String, error: schedule::ScheduleError },
}

/// Why a tag value gives no schedule: the message names the tag's problem and its fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unresolved {
    #[error("{0}")]
    Schedule(schedule::ScheduleError),
    #[error(
        "\"{0}\" is a schedule name, but no SCHEDULES_PARAMETER is configured: point it at an SSM parameter \
         holding a JSON map such as {{\"{0}\": \"Mon-Fri 08:00-19:00 Europe/London\"}}"
    )]
    NameWithoutParameter(String),
    #[error(
        "{0}: holiday lists live in the SCHEDULES_PARAMETER's \"holidays\" map, and none is configured: point it \
         at an SSM parameter such as {{\"holidays\": {{\"uk-2026\": [\"2026-12-25\"]}}}}"
    )]
    HolidaysWithoutParameter(String),
    #[error("{what}: {parameter} was not read")]
    NotRead { what: String, parameter: String },
    #[error("{what}: {error}")]
    Definitions { what: String, error: DefinitionsError },
    #[error("{error} (SSM parameter {parameter})")]
    Resolve { error: schedule::ScheduleError, parameter: String },
}

/// A schedule at one instant: what the run needs of it.
#[derive(Debug, Clone, Copy)]
struct Evaluated {
    running: bool,
    enforced: bool,
    /// Its latest transition, the Unix epoch when it has not changed in the 35 days looked at (it has
    /// been in one period all along).
    since: DateTime<Utc>,
}

impl Named {
    pub fn new(parameter: Option<String>, definitions: Option<Result<Definitions, DefinitionsError>>) -> Self {
        Self { parameter, definitions, ..Default::default() }
    }

    /// The schedule of tag value `tag` at `at`, parsed, resolved and evaluated once per run.
    fn evaluate(&self, tag: &str, at: DateTime<Utc>) -> Evaluation {
        let key = (tag.to_owned(), at);
        if let Some(hit) = self.evaluated.lock().unwrap().get(&key) {
            return hit.clone();
        }
        let evaluated = self.schedule_of(tag).map(|schedule| Evaluated {
            running: schedule.is_running_at(at),
            enforced: schedule.enforced(),
            since: schedule.last_change(at).unwrap_or(DateTime::UNIX_EPOCH),
        });
        self.evaluated.lock().unwrap().insert(key, evaluated.clone());
        evaluated
    }

    /// The schedule a tag value gives, named ones and holiday lists resolved.
    fn schedule_of(&self, tag: &str) -> Result<Schedule, Unresolved> {
        match schedule::parse(tag) {
            Ok(TagValue::Spec(schedule)) if schedule.holidays_resolved() => Ok(schedule),
            Ok(value) => self.resolve(&value),
            Err(e) => Err(Unresolved::Schedule(e)),
        }
    }

    /// A schedule name, or a schedule in the tag that names holiday lists (`except uk-2026`), through the
    /// definitions parameter.
    fn resolve(&self, value: &TagValue) -> Result<Schedule, Unresolved> {
        let what = match value {
            TagValue::Named(name) => format!("named schedule \"{name}\""),
            TagValue::Spec(schedule) => format!("holiday list(s) {}", schedule.holiday_lists().join("+")),
        };
        let Some(parameter) = &self.parameter else {
            return Err(match value {
                TagValue::Named(name) => Unresolved::NameWithoutParameter(name.clone()),
                TagValue::Spec(_) => Unresolved::HolidaysWithoutParameter(what),
            });
        };
        match &self.definitions {
            None => Err(Unresolved::NotRead { what, parameter: parameter.clone() }),
            Some(Err(error)) => Err(Unresolved::Definitions { what, error: error.clone() }),
            Some(Ok(definitions)) => definitions
                .resolve_value(value)
                .map_err(|error| Unresolved::Resolve { error, parameter: parameter.clone() }),
        }
    }
}

/// Whether any of `resources` names a schedule (so the definitions parameter is worth reading).
pub fn needs_definitions<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> bool {
    resources.into_iter().any(|r| schedule::parse(&r.schedule).is_ok_and(|v| v.needs_definitions()))
}

/// Whether `resource` is selected by the request's `schedule` filter.
pub fn selected(resource: &Resource, request: &Request) -> bool {
    request.schedule.as_deref().is_none_or(|wanted| resource.schedule.trim() == wanted)
}

pub fn decide(resource: &Resource, request: &Request, keys: &TagKeys, named: &Named) -> Decision {
    if let Some(hold) = &resource.hold {
        return Decision::Skip(hold.clone());
    }
    if let Some(raw) = &resource.override_until {
        match schedule::parse_override(raw) {
            Err(e) => return Decision::Skip(format!("{} tag: {e}", keys.override_until)),
            Ok(until) if request.at < until => {
                return Decision::Skip(format!(
                    "held in its current state by {} until {}",
                    keys.override_until,
                    rfc3339(until)
                ))
            }
            Ok(_) => {}
        }
    }
    let wanted = match request.action {
        Action::Start => Direction::Start,
        Action::Stop => Direction::Stop,
        Action::Reconcile => match named.evaluate(&resource.schedule, request.at) {
            Ok(evaluated) => Direction::towards(evaluated.running),
            Err(e) => return Decision::Skip(format!("{} tag \"{}\": {e}", keys.schedule, resource.schedule)),
        },
    };
    match (wanted, &resource.state) {
        (Direction::Start, State::Running | State::Starting | State::Busy(_)) => Decision::Unchanged,
        (Direction::Start, State::Stopped) => Decision::Start,
        (Direction::Start, State::Stopping) => {
            Decision::Skip("is stopping; it can be started once it has stopped".into())
        }
        // A group at capacity 0 whose protected instances outlive it is not really stopped.
        (Direction::Stop, State::Stopped | State::Stopping) => match &resource.left_running {
            Some(why) => Decision::Skip(format!("is stopped, but {why}")),
            None => Decision::Unchanged,
        },
        (Direction::Stop, State::Running) => match &resource.unstoppable {
            Some(why) => Decision::Skip(why.clone()),
            None => Decision::Stop,
        },
        (Direction::Stop, State::Starting) => {
            Decision::Skip("is starting; it can be stopped once it is running".into())
        }
        (Direction::Stop, State::Busy(status)) => Decision::Skip(resource.kind.busy(status)),
    }
}

/// A reconcile's decision, transitions by default: what to do, and the transition to record on the
/// resource (the marker tag's new value) once that is done. A resource whose marker already holds the
/// schedule's latest transition was put in its state by an earlier run; if it is no longer there, a
/// person (or something other than the scheduler) changed it since, and it is left until the next
/// transition. A missing, unreadable or older marker (the first run, missed runs, a new period) means
/// converge, and record it. Schedules that end in `!` act at every run and record nothing; explicit
/// start and stop actions ignore the marker.
pub fn decide_transition(
    resource: &Resource,
    request: &Request,
    keys: &TagKeys,
    named: &Named,
    interval: chrono::TimeDelta,
) -> (Decision, Option<DateTime<Utc>>) {
    let decision = decide(resource, request, keys, named);
    if request.action != Action::Reconcile || matches!(decision, Decision::Skip(_)) {
        return (decision, None);
    }
    let Ok(evaluated) = named.evaluate(&resource.schedule, request.at) else { return (decision, None) };
    if !evaluated.enforced && resource.applied.is_none() && resource.tag_count >= TAG_LIMIT {
        return (without_marker(decision, evaluated.since, request.at, interval, &keys.applied), None);
    }
    transition(resource, decision, evaluated.enforced, evaluated.since, request.at, &keys.applied)
}

/// AWS's limit of tags per resource (EC2, RDS, Auto Scaling, ECS): at it, the marker can't be added
/// (`TagLimitExceeded`).
pub const TAG_LIMIT: usize = 50;

/// The transition rule for a resource that can't take the marker (it has [`TAG_LIMIT`] tags): act only
/// when the schedule changed state since the previous run (its latest transition within the last
/// interval), so that a change by hand is not undone at every run. Otherwise left alone, saying why.
fn without_marker(
    decision: Decision,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
    interval: chrono::TimeDelta,
    marker_key: &str,
) -> Decision {
    let fresh = since > at - interval && since <= at;
    match decision {
        Decision::Start | Decision::Stop if !fresh => Decision::Skip(format!(
            "has {TAG_LIMIT} tags, AWS's limit, so the {marker_key} marker can't be added: acted on only at a \
             transition of its schedule (the last at {}), and left as it is between them; remove a tag to give it \
             the marker",
            rfc3339(since)
        )),
        other => other,
    }
}

/// The marker rule for a decision taken from a schedule whose latest transition is `since`.
fn transition(
    resource: &Resource,
    decision: Decision,
    enforced: bool,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
    marker_key: &str,
) -> (Decision, Option<DateTime<Utc>>) {
    if enforced {
        return (decision, None);
    }
    let Some((applied, recorded)) = resource.applied.as_deref().and_then(parse_marker) else {
        return (decision, Some(since));
    };
    if applied < since {
        return (decision, Some(since));
    }
    // The marker says which way the scheduler last moved it. If that is not the way the schedule points
    // now, nobody changed the resource: the schedule was edited (its latest transition predates the
    // marker). Converge and record.
    let wanted = match (&decision, &resource.state) {
        (Decision::Start, _) | (Decision::Unchanged, State::Running) => Some(Direction::Start),
        (Decision::Stop, _) | (Decision::Unchanged, State::Stopped) => Some(Direction::Stop),
        _ => None,
    };
    if let (Some(recorded), Some(wanted)) = (recorded, wanted) {
        if recorded != wanted {
            return (decision, Some(since));
        }
    }
    // A database stopped for 7 days is started by AWS, not by a person.
    let restarted_by_aws = resource.kind.restarts_after().is_some_and(|after| at - since >= after);
    match decision {
        // A start that fell back to stopped is no person's stop: try again.
        Decision::Start if resource.start_failure.is_some() => (decision, None),
        // A database stopped for 7 days is started by AWS, not by a person: stop it again.
        Decision::Stop if restarted_by_aws => (decision, None),
        Decision::Start | Decision::Stop => (Decision::Skip(changed_by_hand(&decision, since, marker_key)), None),
        Decision::Unchanged | Decision::Skip(_) => (decision, None),
    }
}

/// A marker tag's value: the transition's instant (RFC 3339) and, since issue 20, the direction the
/// scheduler applied (`2026-11-23T19:00:00Z stop`; a space and letters, valid in RDS tag values too).
/// A marker of an earlier version has the instant only.
pub fn parse_marker(value: &str) -> Option<(DateTime<Utc>, Option<Direction>)> {
    let mut words = value.split_whitespace();
    let at = DateTime::parse_from_rfc3339(words.next()?).ok()?.with_timezone(&Utc);
    let direction = match words.next() {
        Some("start") => Some(Direction::Start),
        Some("stop") => Some(Direction::Stop),
        _ => None,
    };
    Some((at, direction))
}

/// The marker tag's value for a transition at `since` applied in `direction`.
pub fn marker(since: DateTime<Utc>, direction: Direction) -> String {
    format!("{} {}", rfc3339(since), direction.word())
}

/// Why a resource the scheduler already put in this period's state is left out of it.
fn changed_by_hand(decision: &Decision, since: DateTime<Utc>, marker_key: &str) -> String {
    let (changed, transition, left) =
        if *decision == Decision::Stop { ("started", "stop", "running") } else { ("stopped", "start", "stopped") };
    let after = if since == DateTime::UNIX_EPOCH {
        "after the scheduler applied its schedule (which has not changed state in the last 35 days)".to_owned()
    } else {
        format!("after the scheduled {transition} at {}", rfc3339(since))
    };
    format!(
        "{changed} by hand {after}; left {left} until the next transition (remove the {marker_key} tag to apply \
         the schedule at the next run, or end the schedule with ! to enforce it at every run)"
    )
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TagKeys {
        TagKeys {
            schedule: "Schedule".into(),
            override_until: "ScheduleOverride".into(),
            saved_capacity: "stackhand:saved-capacity".into(),
            hibernate: "ScheduleHibernate".into(),
            applied: "stackhand:schedule-applied".into(),
            mute_alarms: "ScheduleMuteAlarms".into(),
        }
    }

    fn resource(state: State, schedule: &str) -> Resource {
        let mut resource = Resource::new(&crate::kinds::ec2::Instances, "i-0123456789abcdef0", state, schedule);
        resource.tag_count = 1;
        resource
    }

    fn request(action: Action, at: &str) -> Request {
        Request { action, schedule: None, dry_run: false, at: at.parse().unwrap() }
    }

    fn reconcile(r: &Resource, at: &str) -> Decision {
        decide(r, &request(Action::Reconcile, at), &keys(), &Named::default())
    }

    const OFFICE: &str = "Mon-Fri 08:00-19:00 Europe/London";

    #[test]
    fn reconcile_starts_and_stops_by_the_schedule() {
        // Monday 2026-11-23, GMT.
        assert_eq!(reconcile(&resource(State::Stopped, OFFICE), "2026-11-23T08:00:00Z"), Decision::Start);
        assert_eq!(reconcile(&resource(State::Running, OFFICE), "2026-11-23T08:00:00Z"), Decision::Unchanged);
        assert_eq!(reconcile(&resource(State::Running, OFFICE), "2026-11-23T19:00:00Z"), Decision::Stop);
        assert_eq!(reconcile(&resource(State::Stopped, OFFICE), "2026-11-23T19:00:00Z"), Decision::Unchanged);
        // Saturday: stays stopped; an instance AWS restarted is stopped again.
        assert_eq!(reconcile(&resource(State::Running, OFFICE), "2026-11-28T12:00:00Z"), Decision::Stop);
    }

    #[test]
    fn actions_ignore_the_schedule_value() {
        let r = resource(State::Running, "not a schedule at all");
        let at = "2026-11-23T12:00:00Z";
        assert_eq!(decide(&r, &request(Action::Stop, at), &keys(), &Named::default()), Decision::Stop);
        assert_eq!(decide(&r, &request(Action::Start, at), &keys(), &Named::default()), Decision::Unchanged);
    }

    #[test]
    fn transitional_and_busy_states() {
        let at = "2026-11-23T12:00:00Z"; // inside office hours: should be running
        assert_eq!(reconcile(&resource(State::Starting, OFFICE), at), Decision::Unchanged);
        assert_eq!(reconcile(&resource(State::Busy("backing-up".into()), OFFICE), at), Decision::Unchanged);
        assert_eq!(
            reconcile(&resource(State::Stopping, OFFICE), at),
            Decision::Skip("is stopping; it can be started once it has stopped".into())
        );
        let night = "2026-11-23T23:00:00Z";
        assert_eq!(reconcile(&resource(State::Stopping, OFFICE), night), Decision::Unchanged);
        assert_eq!(
            reconcile(&resource(State::Starting, OFFICE), night),
            Decision::Skip("is starting; it can be stopped once it is running".into())
        );
        assert_eq!(
            reconcile(&resource(State::Busy("backing-up".into()), OFFICE), night),
            Decision::Skip("has status \"backing-up\"; AWS stops a database only when it is available".into())
        );
    }

    #[test]
    fn holds_and_unstoppable_resources_are_skipped_with_their_reason() {
        let mut member = resource(State::Running, OFFICE);
        member.hold = Some("is a member of DB cluster c1".into());
        assert_eq!(reconcile(&member, "2026-11-23T23:00:00Z"), Decision::Skip("is a member of DB cluster c1".into()));
        let mut replica = resource(State::Running, OFFICE);
        replica.unstoppable = Some("is a read replica of db1".into());
        assert_eq!(reconcile(&replica, "2026-11-23T23:00:00Z"), Decision::Skip("is a read replica of db1".into()));
        replica.state = State::Stopped;
        assert_eq!(reconcile(&replica, "2026-11-23T12:00:00Z"), Decision::Start, "starting is still allowed");
    }

    #[test]
    fn an_override_holds_until_its_instant_then_expires() {
        let mut r = resource(State::Running, OFFICE);
        r.override_until = Some("2026-11-24T02:00:00+01:00".into());
        assert_eq!(
            reconcile(&r, "2026-11-23T23:00:00Z"),
            Decision::Skip("held in its current state by ScheduleOverride until 2026-11-24T01:00:00Z".into())
        );
        assert_eq!(reconcile(&r, "2026-11-24T01:00:00Z"), Decision::Stop, "expired overrides are ignored");
        r.override_until = Some("next tuesday".into());
        match reconcile(&r, "2026-11-23T23:00:00Z") {
            Decision::Skip(reason) => assert!(reason.starts_with("ScheduleOverride tag: "), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_schedule_is_skipped_with_the_parser_message() {
        match reconcile(&resource(State::Running, "Mon-Fr 08:00-19:00"), "2026-11-23T23:00:00Z") {
            Decision::Skip(reason) => {
                assert!(reason.starts_with("Schedule tag \"Mon-Fr 08:00-19:00\": "), "{reason}");
                assert!(reason.contains("Fr"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn named_schedules_resolve_through_the_definitions() {
        let r = resource(State::Stopped, "office-hours");
        let at = "2026-11-23T12:00:00Z";
        let decide_with = |named: &Named| decide(&r, &request(Action::Reconcile, at), &keys(), named);
        match decide_with(&Named::default()) {
            Decision::Skip(reason) => assert!(reason.contains("no SCHEDULES_PARAMETER is configured"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let definitions = schedule::parse_definitions(
            r#"{"office-hours": "Mon-Fri 08:00-19:00 Europe/London", "broken": "Mon 25:00-26:00"}"#,
        )
        .unwrap();
        let named = Named::new(Some("/stackhand/schedules".into()), Some(Ok(definitions)));
        assert_eq!(decide_with(&named), Decision::Start);
        let mut unknown = r.clone();
        unknown.schedule = "night-shift".into();
        match decide(&unknown, &request(Action::Reconcile, at), &keys(), &named) {
            Decision::Skip(reason) => {
                assert!(reason.contains("no schedule named \"night-shift\" is defined"), "{reason}");
                assert!(reason.ends_with("(SSM parameter /stackhand/schedules)"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let mut broken = r.clone();
        broken.schedule = "broken".into();
        match decide(&broken, &request(Action::Reconcile, at), &keys(), &named) {
            Decision::Skip(reason) => {
                assert!(reason.contains("\"broken\""), "{reason}");
                assert!(reason.ends_with("(SSM parameter /stackhand/schedules)"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let unreadable = Named::new(
            Some("/stackhand/schedules".into()),
            Some(Err(DefinitionsError::Read("GetParameter failed: ParameterNotFound".into()))),
        );
        match decide_with(&unreadable) {
            Decision::Skip(reason) => assert!(reason.ends_with("GetParameter failed: ParameterNotFound"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(needs_definitions([&r]));
        assert!(!needs_definitions([&resource(State::Stopped, OFFICE)]));
    }

    // Issue 13 item 3: a tag's own `except <list>` takes its dates from the definitions' "holidays".
    #[test]
    fn holiday_lists_named_in_a_tag_resolve_through_the_definitions() {
        let r = resource(State::Running, "Mon-Fri 08:00-19:00 UTC except xmas");
        assert!(needs_definitions([&r]), "the parameter must be read for a tag's holiday list");
        // Friday 25 December 2026, noon: a working hour, but a holiday.
        let christmas = request(Action::Reconcile, "2026-12-25T12:00:00Z");
        match decide(&r, &christmas, &keys(), &Named::default()) {
            Decision::Skip(reason) => {
                assert!(reason.contains("xmas") && reason.contains("SCHEDULES_PARAMETER"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let definitions = schedule::parse_definitions(r#"{"holidays": {"xmas": ["2026-12-24..2026-12-26"]}}"#).unwrap();
        let named = Named::new(Some("/stackhand/schedules".into()), Some(Ok(definitions)));
        assert_eq!(decide(&r, &christmas, &keys(), &named), Decision::Stop);
        let monday = request(Action::Reconcile, "2026-12-28T12:00:00Z");
        assert_eq!(decide(&r, &monday, &keys(), &named), Decision::Unchanged);
    }

    #[test]
    fn the_schedule_filter_matches_the_tag_value_exactly() {
        let r = resource(State::Running, " office-hours ");
        let mut req = request(Action::Stop, "2026-11-23T12:00:00Z");
        assert!(selected(&r, &req));
        req.schedule = Some("office-hours".into());
        assert!(selected(&r, &req));
        req.schedule = Some("office".into());
        assert!(!selected(&r, &req));
    }

    fn marked(state: State, schedule: &str, applied: Option<&str>) -> Resource {
        let mut r = resource(state, schedule);
        r.applied = applied.map(Into::into);
        r
    }

    fn transition_at(r: &Resource, action: Action, at: &str) -> (Decision, Option<DateTime<Utc>>) {
        decide_transition(r, &request(action, at), &keys(), &Named::default(), chrono::TimeDelta::minutes(5))
    }

    fn instant(at: &str) -> DateTime<Utc> {
        at.parse().unwrap()
    }

    // Monday 2026-11-23, GMT: the office schedule stopped at 19:00 UTC.
    const STOPPED_AT: &str = "2026-11-23T19:00:00Z";
    const EVENING: &str = "2026-11-23T21:00:00Z";

    // Issue 20 item 7: 50 tags, so no marker can be added. Acting at every run would undo every change
    // by hand (and fail every run on TagLimitExceeded): it is acted on only when its schedule changed
    // state within the last interval, and nothing is marked.
    #[test]
    fn a_resource_at_the_tag_limit_is_acted_on_only_at_a_transition_and_never_marked() {
        let mut full = marked(State::Running, OFFICE, None);
        full.tag_count = TAG_LIMIT;
        // 19:03, three minutes after the 19:00 stop: the previous run (18:58) saw office hours.
        assert_eq!(transition_at(&full, Action::Reconcile, "2026-11-23T19:03:00Z"), (Decision::Stop, None));
        // 21:00: started by hand after 19:00 (or the stop failed); without a marker, left alone, saying why.
        let (decision, mark) = transition_at(&full, Action::Reconcile, EVENING);
        match decision {
            Decision::Skip(why) => assert!(
                why.starts_with("has 50 tags, AWS's limit, so the stackhand:schedule-applied marker can't be added")
                    && why.contains("the last at 2026-11-23T19:00:00Z"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(mark, None);
        // One tag fewer: the marker rule as usual.
        full.tag_count = TAG_LIMIT - 1;
        assert_eq!(transition_at(&full, Action::Reconcile, EVENING), (Decision::Stop, Some(instant(STOPPED_AT))));
    }

    #[test]
    fn a_marker_records_the_direction_and_reads_an_older_one_without() {
        assert_eq!(marker(instant(STOPPED_AT), Direction::Stop), "2026-11-23T19:00:00Z stop");
        assert_eq!(parse_marker("2026-11-23T19:00:00Z stop"), Some((instant(STOPPED_AT), Some(Direction::Stop))));
        assert_eq!(parse_marker("2026-11-23T08:00:00Z start").unwrap().1, Some(Direction::Start));
        assert_eq!(parse_marker(" 2026-11-23T19:00:00Z "), Some((instant(STOPPED_AT), None)), "an earlier version's");
        assert_eq!(parse_marker("yesterday stop"), None);
    }

    // Issue 20 item 8: the scheduler started it at 18:00 under the old schedule (marker "18:00 start");
    // the schedule is then edited to stop at 17:00. The latest transition (17:00) predates the marker, but
    // nobody changed the resource: it is the schedule that points the other way. Stop it and record.
    #[test]
    fn an_edited_schedule_whose_transition_predates_the_marker_is_applied_not_blamed_on_a_person() {
        let edited = "Mon-Fri 08:00-17:00 UTC";
        let r = marked(State::Running, edited, Some("2026-11-23T18:00:00Z start"));
        let (decision, mark) = transition_at(&r, Action::Reconcile, EVENING);
        assert_eq!(decision, Decision::Stop);
        assert_eq!(mark, Some(instant("2026-11-23T17:00:00Z")));
        // The same marker with the direction the schedule points to is the scheduler's own work: then the
        // running resource was started by hand, and the reason says so.
        let r = marked(State::Running, edited, Some("2026-11-23T18:00:00Z stop"));
        match transition_at(&r, Action::Reconcile, EVENING).0 {
            Decision::Skip(why) => assert!(why.starts_with("started by hand after the scheduled stop"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_resource_started_by_hand_after_the_applied_stop_is_left_with_the_reason() {
        let r = marked(State::Running, OFFICE, Some(STOPPED_AT));
        let (decision, mark) = transition_at(&r, Action::Reconcile, EVENING);
        assert_eq!(
            decision,
            Decision::Skip(
                "started by hand after the scheduled stop at 2026-11-23T19:00:00Z; left running until the next \
                 transition (remove the stackhand:schedule-applied tag to apply the schedule at the next run, or \
                 end the schedule with ! to enforce it at every run)"
                    .into()
            )
        );
        assert_eq!(mark, None, "nothing to record: this period was applied");
        // A marker written later than the transition (any instant since it) counts as applied too.
        let later = marked(State::Running, OFFICE, Some("2026-11-23T19:05:00+00:00"));
        assert!(matches!(transition_at(&later, Action::Reconcile, EVENING).0, Decision::Skip(_)));
        // Still in the state the run put it in: unchanged, nothing written.
        let stopped = marked(State::Stopped, OFFICE, Some(STOPPED_AT));
        assert_eq!(transition_at(&stopped, Action::Reconcile, EVENING), (Decision::Unchanged, None));
        // Stopped by hand in office hours, after the 08:00 start was applied.
        let r = marked(State::Stopped, OFFICE, Some("2026-11-24T08:00:00Z"));
        match transition_at(&r, Action::Reconcile, "2026-11-24T12:00:00Z").0 {
            Decision::Skip(why) => assert!(
                why.starts_with("stopped by hand after the scheduled start at 2026-11-24T08:00:00Z; left stopped"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_older_marker_means_a_new_period_stop_and_mark() {
        let r = marked(State::Running, OFFICE, Some("2026-11-23T08:00:00Z"));
        assert_eq!(transition_at(&r, Action::Reconcile, EVENING), (Decision::Stop, Some(instant(STOPPED_AT))));
        // The next transition: started and marked with the 08:00 start.
        let r = marked(State::Stopped, OFFICE, Some(STOPPED_AT));
        let morning = "2026-11-24T08:00:00Z";
        assert_eq!(transition_at(&r, Action::Reconcile, morning), (Decision::Start, Some(instant(morning))));
    }

    #[test]
    fn a_missing_or_unreadable_marker_converges_and_marks_even_what_is_already_in_state() {
        for applied in [None, Some("yesterday"), Some("")] {
            let running = marked(State::Running, OFFICE, applied);
            let expected = (Decision::Stop, Some(instant(STOPPED_AT)));
            assert_eq!(transition_at(&running, Action::Reconcile, EVENING), expected, "{applied:?}");
            let stopped = marked(State::Stopped, OFFICE, applied);
            let expected = (Decision::Unchanged, Some(instant(STOPPED_AT)));
            assert_eq!(transition_at(&stopped, Action::Reconcile, EVENING), expected, "{applied:?}");
        }
        // Missed runs: days later, the latest transition is what counts.
        let r = marked(State::Running, OFFICE, Some("2026-11-20T08:00:00Z"));
        let saturday = "2026-11-28T12:00:00Z";
        assert_eq!(
            transition_at(&r, Action::Reconcile, saturday),
            (Decision::Stop, Some(instant("2026-11-27T19:00:00Z")))
        );
    }

    #[test]
    fn a_schedule_that_never_changes_is_one_period_from_the_epoch() {
        let always = "Daily 00:00-24:00 UTC";
        let r = marked(State::Stopped, always, None);
        assert_eq!(transition_at(&r, Action::Reconcile, EVENING), (Decision::Start, Some(DateTime::UNIX_EPOCH)));
        let r = marked(State::Stopped, always, Some("1970-01-01T00:00:00Z"));
        match transition_at(&r, Action::Reconcile, EVENING).0 {
            Decision::Skip(why) => assert!(why.contains("has not changed state in the last 35 days"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_enforced_schedule_acts_at_every_run_and_marks_nothing() {
        let r = marked(State::Running, OFFICE, Some(STOPPED_AT));
        let since = instant(STOPPED_AT);
        let key = "stackhand:schedule-applied";
        assert_eq!(transition(&r, Decision::Stop, true, since, instant(EVENING), key), (Decision::Stop, None));
        assert_eq!(
            transition(&r, Decision::Unchanged, true, since, instant(EVENING), key),
            (Decision::Unchanged, None)
        );
        assert!(matches!(transition(&r, Decision::Stop, false, since, instant(EVENING), key).0, Decision::Skip(_)));
    }

    #[test]
    fn explicit_actions_ignore_the_marker_and_write_none() {
        let r = marked(State::Running, OFFICE, Some(STOPPED_AT));
        assert_eq!(transition_at(&r, Action::Stop, EVENING), (Decision::Stop, None));
        let r = marked(State::Stopped, OFFICE, Some(STOPPED_AT));
        assert_eq!(transition_at(&r, Action::Start, EVENING), (Decision::Start, None));
        let r = marked(State::Running, OFFICE, None);
        assert_eq!(transition_at(&r, Action::Start, EVENING), (Decision::Unchanged, None));
    }

    #[test]
    fn skips_stay_skips_and_record_nothing() {
        let mut r = marked(State::Running, OFFICE, None);
        r.override_until = Some("2026-11-24T02:00:00Z".into());
        assert!(matches!(transition_at(&r, Action::Reconcile, EVENING), (Decision::Skip(_), None)));
        let bad = marked(State::Running, "Mon-Fr 08:00-19:00", None);
        assert!(matches!(transition_at(&bad, Action::Reconcile, EVENING), (Decision::Skip(_), None)));
    }

    #[test]
    fn failed_starts_and_databases_aws_restarted_are_not_changes_by_hand() {
        let mut r = marked(State::Stopped, OFFICE, Some("2026-11-24T08:00:00Z"));
        r.start_failure = Some("its last start fell back to stopped (Client.InternalError: …)".into());
        assert_eq!(transition_at(&r, Action::Reconcile, "2026-11-24T12:00:00Z"), (Decision::Start, None));
        // A database whose stop was applied 7 days ago or more: AWS started it; stopped again.
        let key = "stackhand:schedule-applied";
        let mut db = marked(State::Running, OFFICE, Some("2026-11-16T19:00:00Z"));
        db.kind = &crate::kinds::rds::Clusters;
        let since = instant("2026-11-16T19:00:00Z");
        let at = |t: &str| instant(t);
        assert_eq!(
            transition(&db, Decision::Stop, false, since, at("2026-11-23T19:00:00Z"), key),
            (Decision::Stop, None)
        );
        assert!(matches!(
            transition(&db, Decision::Stop, false, since, at("2026-11-23T18:59:00Z"), key).0,
            Decision::Skip(_)
        ));
        db.kind = &crate::kinds::ec2::Instances;
        assert!(matches!(
            transition(&db, Decision::Stop, false, since, at("2026-11-30T19:00:00Z"), key).0,
            Decision::Skip(_)
        ));
    }

    #[test]
    fn a_schedule_ending_in_bang_is_enforced_through_decide_transition() {
        let r = marked(State::Running, "Mon-Fri 08:00-19:00 Europe/London !", Some(STOPPED_AT));
        assert_eq!(transition_at(&r, Action::Reconcile, EVENING), (Decision::Stop, None));
        let r = marked(State::Stopped, "Mon-Fri 08:00-19:00 Europe/London !", None);
        assert_eq!(transition_at(&r, Action::Reconcile, EVENING), (Decision::Unchanged, None));
    }
}
