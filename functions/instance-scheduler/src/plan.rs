//! Deciding, per resource, what to do. Pure: the resource as discovered, the request, the schedule
//! definitions — no AWS calls, so every rule is unit-tested here.

use chrono::{DateTime, Utc};

use crate::direction::Direction;
use crate::inventory::{Resource, State, TagKeys};
use crate::request::{Action, Request};
use crate::schedule::{self, Definitions, Schedule, TagValue};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Start,
    Stop,
    /// Already where it should be (or on its way there).
    Unchanged,
    /// Not acted on, for the reason given.
    Skip(String),
}

/// Named schedules: the SSM parameter that defines them and what loading it gave.
#[derive(Debug, Clone, Default)]
pub struct Named {
    /// The parameter's name, when one is configured.
    pub parameter: Option<String>,
    /// Its parsed contents, or why they couldn't be read.
    pub definitions: Option<Result<Definitions, String>>,
}

impl Named {
    fn resolve(&self, name: &str) -> Result<Schedule, String> {
        let Some(parameter) = &self.parameter else {
            return Err(format!(
                "\"{name}\" is a schedule name, but no SCHEDULES_PARAMETER is configured: point it at an SSM \
                 parameter holding a JSON map such as {{\"{name}\": \"Mon-Fri 08:00-19:00 Europe/London\"}}"
            ));
        };
        match &self.definitions {
            None => Err(format!("named schedule \"{name}\": {parameter} was not read")),
            Some(Err(e)) => Err(format!("named schedule \"{name}\": {e}")),
            Some(Ok(definitions)) => definitions
                .resolve(&TagValue::Named(name.to_owned()))
                .cloned()
                .map_err(|e| format!("{e} (SSM parameter {parameter})")),
        }
    }
}

/// Whether any of `resources` names a schedule (so the definitions parameter is worth reading).
pub fn needs_definitions<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> bool {
    resources.into_iter().any(|r| matches!(schedule::parse(&r.schedule), Ok(TagValue::Named(_))))
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
        Action::Reconcile => {
            let schedule = match schedule::parse(&resource.schedule) {
                Ok(TagValue::Spec(schedule)) => Ok(schedule),
                Ok(TagValue::Named(name)) => named.resolve(&name),
                Err(e) => Err(e.to_string()),
            };
            match schedule {
                Ok(schedule) => Direction::towards(schedule.is_running_at(request.at)),
                Err(e) => return Decision::Skip(format!("{} tag \"{}\": {e}", keys.schedule, resource.schedule)),
            }
        }
    };
    match (wanted, &resource.state) {
        (Direction::Start, State::Running | State::Starting | State::Busy(_)) => Decision::Unchanged,
        (Direction::Start, State::Stopped) => Decision::Start,
        (Direction::Start, State::Stopping) => {
            Decision::Skip("is stopping; it can be started once it has stopped".into())
        }
        // A group at capacity 0 whose protected instances outlive it is not really stopped.
        (Direction::Stop, State::Stopped | State::Stopping) => match resource.scale_in_protection() {
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
        (Direction::Stop, State::Busy(status)) => {
            Decision::Skip(format!("has status \"{status}\"; AWS stops a database only when it is available"))
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Kind;

    fn keys() -> TagKeys {
        TagKeys {
            schedule: "Schedule".into(),
            override_until: "ScheduleOverride".into(),
            saved_capacity: "stackhand:saved-capacity".into(),
            hibernate: "ScheduleHibernate".into(),
        }
    }

    fn resource(state: State, schedule: &str) -> Resource {
        Resource {
            kind: Kind::Ec2Instance,
            id: "i-0123456789abcdef0".into(),
            state,
            schedule: schedule.into(),
            override_until: None,
            hold: None,
            unstoppable: None,
            capacity: None,
            saved: None,
            start_failure: None,
            protected: Vec::new(),
            protects_new: false,
            hibernate: Default::default(),
            service: None,
        }
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
        let named = Named { parameter: Some("/stackhand/schedules".into()), definitions: Some(Ok(definitions)) };
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
        let unreadable = Named {
            parameter: Some("/stackhand/schedules".into()),
            definitions: Some(Err("GetParameter failed: ParameterNotFound".into())),
        };
        match decide_with(&unreadable) {
            Decision::Skip(reason) => assert!(reason.ends_with("GetParameter failed: ParameterNotFound"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(needs_definitions([&r]));
        assert!(!needs_definitions([&resource(State::Stopped, OFFICE)]));
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
}
