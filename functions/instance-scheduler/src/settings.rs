//! The scheduler's settings, from the function's environment: the tag keys, the reconcile interval,
//! the hub's accounts, Regions and role, and the owner's bounds. Each bad value is an error naming the
//! variable and what it takes.

/// The tag keys the scheduler reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagKeys {
    pub schedule: String,
    pub override_until: String,
    pub saved_capacity: String,
    /// `SCHEDULE_HIBERNATE_TAG_KEY`: an EC2 instance with this tag = `true` is hibernated on a stop.
    pub hibernate: String,
    /// The marker of the schedule transition last applied (`stackhand:schedule-applied`).
    pub applied: String,
    /// `SCHEDULE_MUTE_ALARMS_TAG_KEY`: a resource with this tag = `true` has its CloudWatch alarms
    /// muted while it is stopped.
    pub mute_alarms: String,
}

/// Configuration from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub keys: TagKeys,
    /// `SCHEDULES_PARAMETER`: an SSM parameter with named schedules, `{"name": "<schedule>", …}`.
    pub definitions_parameter: Option<String>,
    /// Instances per StartInstances/StopInstances call.
    pub batch_size: usize,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// `RECONCILE_INTERVAL_MINUTES`: how often the reconcile rule fires. A Scheduled Event whose `time`
    /// is further than this from now (a retried or long-queued one) is evaluated at now instead.
    pub interval: chrono::TimeDelta,
    /// `SCHEDULER_ACCOUNTS`: the accounts to schedule (none: the function's own).
    pub accounts: Vec<String>,
    /// `SCHEDULER_REGIONS`: the Regions to schedule in (none: the function's own).
    pub regions: Vec<String>,
    /// `SCHEDULER_ROLE_NAME`: the role assumed in every other account.
    pub role_name: String,
    /// `SCHEDULER_EXTERNAL_ID`: sent with every AssumeRole when set.
    pub external_id: Option<String>,
    /// `SCHEDULER_CONCURRENT_TARGETS`: targets run at once.
    pub target_concurrency: usize,
    /// `SCHEDULER_MAX_RESTORED_CAPACITY`: the largest maximum or desired count a start restores from a
    /// saved-capacity tag. Whoever can write that tag could otherwise have the scheduler start any size.
    pub max_restored_capacity: i32,
    /// `SCHEDULER_MUTE_ALARMS`: mute the alarms of every resource while it is stopped, tagged or not.
    pub mute_alarms: bool,
    /// `SCHEDULER_EVENT_BUS`: the event bus (name, in the function's account and Region) the run's
    /// events go to; `default` unless set, None for `none`.
    pub event_bus: Option<String>,
    /// `SCHEDULER_QUEUE_URL`: the FIFO queue the hub sends one message per target to, when it fans
    /// out, and which Lambda delivers back to this function (its workers). None: every run is inline.
    pub queue_url: Option<String>,
    /// `SCHEDULER_FAN_OUT_THRESHOLD`: a run of more targets than this fans out (with a queue). Unset:
    /// as many as one invocation runs in half the interval (see [`Settings::fan_out_threshold`]).
    pub fan_out_threshold: Option<usize>,
    /// `SCHEDULER_ORGANIZATIONAL_UNITS`: the targets' accounts are those of these OUs (and the OUs
    /// under them), not `SCHEDULER_ACCOUNTS`; such a run always fans out.
    pub organizational_units: Vec<String>,
}

pub const DEFAULT_SCHEDULE_TAG: &str = "Schedule";
pub const DEFAULT_OVERRIDE_TAG: &str = "ScheduleOverride";
pub const DEFAULT_HIBERNATE_TAG: &str = "ScheduleHibernate";
pub const DEFAULT_MUTE_ALARMS_TAG: &str = "ScheduleMuteAlarms";
pub const SAVED_CAPACITY_TAG: &str = "stackhand:saved-capacity";
/// On each resource, the schedule transition a reconcile last applied to it (RFC 3339, UTC).
pub const SCHEDULE_APPLIED_TAG: &str = "stackhand:schedule-applied";
const BATCH_SIZE: usize = 100;
const CONCURRENCY: usize = 8;
const TARGET_CONCURRENCY: usize = 8;
/// The template's default `SchedulerMaxRestoredCapacity`.
pub const DEFAULT_MAX_RESTORED_CAPACITY: i32 = 100;
/// The account's own event bus, which every account has.
pub const DEFAULT_EVENT_BUS: &str = "default";
pub const DEFAULT_ROLE_NAME: &str = "stackhand-instance-scheduler";
/// The template's default `SchedulerReconcileMinutes`.
const DEFAULT_INTERVAL_MINUTES: i64 = 5;

/// A setting in the function's environment that can't be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("RECONCILE_INTERVAL_MINUTES is \"{0}\": give the reconcile rule's interval as a whole number of minutes, 1 or more")]
    Interval(String),
    #[error("SCHEDULER_ACCOUNTS has \"{0}\": give 12-digit account ids separated by commas (e.g. 111122223333,444455556666), or leave it empty for the function's own account")]
    Account(String),
    #[error("SCHEDULER_REGIONS has \"{0}\": give Region codes separated by commas (e.g. eu-west-1,us-east-1), or leave it empty for the function's own Region")]
    Region(String),
    #[error("SCHEDULER_ROLE_NAME is \"{0}\": give the spoke role's name only (letters, digits and +=,.@_-, up to 64), not its ARN")]
    RoleName(String),
    #[error("SCHEDULER_CONCURRENT_TARGETS is \"{0}\": give a whole number from 1 to 64")]
    TargetConcurrency(String),
    #[error("SCHEDULER_EXTERNAL_ID has {0} character(s), or one outside letters, digits and +=,.@:/_-: STS takes 2 to 1,224 of those (leave it unset for none)")]
    ExternalId(usize),
    #[error("SCHEDULER_MUTE_ALARMS is \"{0}\": give true (mute every resource's alarms while it is stopped) or false (only those tagged ScheduleMuteAlarms=true)")]
    MuteAlarms(String),
    #[error("SCHEDULER_EVENT_BUS is \"{0}\": give an event bus name in this account and Region (1 to 256 of letters, digits and ._-/; not an ARN), default, or none for no events")]
    EventBus(String),
    #[error("SCHEDULER_MAX_RESTORED_CAPACITY is \"{0}\": give a whole number from 1 to 100000, the largest group or service size a start may restore")]
    MaxRestoredCapacity(String),
    #[error("SCHEDULER_QUEUE_URL is \"{0}\": give the URL of an SQS FIFO queue (https://sqs.<region>.amazonaws.com/<account>/<name>.fifo): the targets' messages are grouped by target so that two runs never work on one target at once")]
    QueueUrl(String),
    #[error("SCHEDULER_FAN_OUT_THRESHOLD is \"{0}\": give a whole number of targets (0: always fan out), or leave it unset for as many as one run reaches in half the interval")]
    FanOutThreshold(String),
    #[error("SCHEDULER_ORGANIZATIONAL_UNITS has \"{0}\": give organizational unit ids (ou-xxxx-xxxxxxxx) or the root's (r-xxxx), separated by commas")]
    OrganizationalUnit(String),
    #[error("SCHEDULER_ORGANIZATIONAL_UNITS is set but SCHEDULER_QUEUE_URL is not: an organization's targets are always fanned out through the queue (the template's SchedulerOrganizationalUnits creates it)")]
    OrganizationsWithoutQueue,
    #[error(
        "set SCHEDULER_ACCOUNTS or SCHEDULER_ORGANIZATIONAL_UNITS, not both: the accounts come from one or the other"
    )]
    AccountsAndOrganizationalUnits,
}

/// A 12-digit AWS account id.
pub fn is_account(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// STS's ExternalId: 2 to 1,224 characters of `[\w+=,.@:/-]`.
fn is_external_id(id: &str) -> bool {
    (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c))
}

/// A comma-separated list, blanks dropped; each item checked by `valid`, the first bad one named by `error`.
fn comma_list(
    text: Option<String>,
    valid: impl Fn(&str) -> bool,
    error: impl Fn(String) -> SettingsError,
) -> Result<Vec<String>, SettingsError> {
    let mut items = Vec::new();
    for item in text.iter().flat_map(|t| t.split(',')).map(str::trim).filter(|i| !i.is_empty()) {
        if !valid(item) {
            return Err(error(item.to_owned()));
        }
        items.push(item.to_owned());
    }
    Ok(items)
}

/// Organizations' ids: an OU's `ou-<root part, 4-32>-<8-32>` or a root's `r-<4-32>`, lowercase and digits.
fn is_organizational_unit(text: &str) -> bool {
    let part = |p: &str, range: std::ops::RangeInclusive<usize>| {
        range.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match text.split('-').collect::<Vec<_>>().as_slice() {
        ["ou", root, unit] => part(root, 4..=32) && part(unit, 8..=32),
        ["r", root] => part(root, 4..=32),
        _ => false,
    }
}

/// A FIFO queue's URL: http(s), its last path segment a name ending in `.fifo`.
fn is_fifo_queue_url(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")) else { return false };
    let name = rest.rsplit('/').next().unwrap_or_default();
    rest.contains('/') && name.len() > ".fifo".len() && name.ends_with(".fifo") && !text.contains(char::is_whitespace)
}

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-5`: lowercase words, then a number.
fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// EventBridge's event bus names: 1 to 256 of `[/\.\-_A-Za-z0-9]`.
fn is_event_bus(text: &str) -> bool {
    (1..=256).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
}

fn is_role_name(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let settings = Self::each_from_lookup(get)?;
        if !settings.organizational_units.is_empty() {
            if settings.queue_url.is_none() {
                return Err(SettingsError::OrganizationsWithoutQueue);
            }
            if !settings.accounts.is_empty() {
                return Err(SettingsError::AccountsAndOrganizationalUnits);
            }
        }
        Ok(settings)
    }

    /// Targets a run takes inline before it fans out (with a queue): as set, or as many as one
    /// invocation runs in half the interval — at about 15 s a target against AWS, `target_concurrency`
    /// at a time — so that an inline run ends well before the next one starts.
    pub fn fan_out_threshold(&self) -> usize {
        const SECONDS_PER_TARGET: i64 = 15;
        self.fan_out_threshold.unwrap_or_else(|| {
            let rounds = (self.interval.num_seconds() / 2 / SECONDS_PER_TARGET).max(1);
            usize::try_from(rounds).unwrap_or(1) * self.target_concurrency
        })
    }

    /// Each setting from the environment, before the checks across them.
    fn each_from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let interval = match get("RECONCILE_INTERVAL_MINUTES") {
            None => DEFAULT_INTERVAL_MINUTES,
            Some(text) => match text.trim().parse::<i64>() {
                Ok(minutes) if (1..=i64::from(u32::MAX)).contains(&minutes) => minutes,
                _ => return Err(SettingsError::Interval(text)),
            },
        };
        Ok(Self {
            keys: TagKeys {
                schedule: get("SCHEDULE_TAG_KEY").unwrap_or_else(|| DEFAULT_SCHEDULE_TAG.into()),
                override_until: get("SCHEDULE_OVERRIDE_TAG_KEY").unwrap_or_else(|| DEFAULT_OVERRIDE_TAG.into()),
                saved_capacity: SAVED_CAPACITY_TAG.into(),
                hibernate: get("SCHEDULE_HIBERNATE_TAG_KEY").unwrap_or_else(|| DEFAULT_HIBERNATE_TAG.into()),
                applied: SCHEDULE_APPLIED_TAG.into(),
                mute_alarms: get("SCHEDULE_MUTE_ALARMS_TAG_KEY").unwrap_or_else(|| DEFAULT_MUTE_ALARMS_TAG.into()),
            },
            mute_alarms: match get("SCHEDULER_MUTE_ALARMS").map(|v| v.trim().to_ascii_lowercase()) {
                None => false,
                Some(v) if v == "true" => true,
                Some(v) if v == "false" => false,
                Some(_) => return Err(SettingsError::MuteAlarms(get("SCHEDULER_MUTE_ALARMS").unwrap_or_default())),
            },
            definitions_parameter: get("SCHEDULES_PARAMETER"),
            batch_size: BATCH_SIZE,
            concurrency: CONCURRENCY,
            interval: chrono::TimeDelta::minutes(interval),
            accounts: comma_list(get("SCHEDULER_ACCOUNTS"), is_account, SettingsError::Account)?,
            regions: comma_list(get("SCHEDULER_REGIONS"), is_region, SettingsError::Region)?,
            role_name: match get("SCHEDULER_ROLE_NAME") {
                Some(name) if !is_role_name(name.trim()) => return Err(SettingsError::RoleName(name)),
                Some(name) => name.trim().to_owned(),
                None => DEFAULT_ROLE_NAME.into(),
            },
            external_id: match get("SCHEDULER_EXTERNAL_ID") {
                Some(id) if id.is_empty() => None,
                Some(id) if !is_external_id(&id) => return Err(SettingsError::ExternalId(id.chars().count())),
                id => id,
            },
            target_concurrency: match get("SCHEDULER_CONCURRENT_TARGETS") {
                None => TARGET_CONCURRENCY,
                Some(text) => match text.trim().parse::<usize>() {
                    Ok(n) if (1..=64).contains(&n) => n,
                    _ => return Err(SettingsError::TargetConcurrency(text)),
                },
            },
            event_bus: match get("SCHEDULER_EVENT_BUS").map(|v| v.trim().to_owned()) {
                None => Some(DEFAULT_EVENT_BUS.into()),
                Some(bus) if bus.eq_ignore_ascii_case("none") => None,
                Some(bus) if is_event_bus(&bus) => Some(bus),
                Some(bus) => return Err(SettingsError::EventBus(bus)),
            },
            queue_url: match get("SCHEDULER_QUEUE_URL").map(|v| v.trim().to_owned()) {
                Some(url) if !is_fifo_queue_url(&url) => return Err(SettingsError::QueueUrl(url)),
                url => url,
            },
            fan_out_threshold: match get("SCHEDULER_FAN_OUT_THRESHOLD") {
                None => None,
                Some(text) => match text.trim().parse::<usize>() {
                    Ok(n) => Some(n),
                    Err(_) => return Err(SettingsError::FanOutThreshold(text)),
                },
            },
            organizational_units: comma_list(
                get("SCHEDULER_ORGANIZATIONAL_UNITS"),
                is_organizational_unit,
                SettingsError::OrganizationalUnit,
            )?,
            max_restored_capacity: match get("SCHEDULER_MAX_RESTORED_CAPACITY") {
                None => DEFAULT_MAX_RESTORED_CAPACITY,
                Some(text) => match text.trim().parse::<i32>() {
                    Ok(n) if (1..=100_000).contains(&n) => n,
                    _ => return Err(SettingsError::MaxRestoredCapacity(text)),
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn settings_default_and_from_the_environment() {
        let defaults = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(defaults.keys.schedule, "Schedule");
        assert_eq!(defaults.keys.override_until, "ScheduleOverride");
        assert_eq!(defaults.keys.saved_capacity, "stackhand:saved-capacity");
        assert_eq!(defaults.definitions_parameter, None);
        let env: HashMap<&str, &str> = [
            ("SCHEDULE_TAG_KEY", "office-schedule"),
            ("SCHEDULE_OVERRIDE_TAG_KEY", "hold-until"),
            ("SCHEDULES_PARAMETER", "/stackhand/schedules"),
        ]
        .into();
        let set = Settings::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(set.keys.schedule, "office-schedule");
        assert_eq!(set.keys.override_until, "hold-until");
        assert_eq!(set.definitions_parameter.as_deref(), Some("/stackhand/schedules"));
    }

    #[test]
    fn the_reconcile_interval_defaults_to_five_minutes_and_must_be_a_whole_number() {
        let with = |value: &str| Settings::from_lookup(|k| (k == "RECONCILE_INTERVAL_MINUTES").then(|| value.into()));
        assert_eq!(Settings::from_lookup(|_| None).unwrap().interval, chrono::TimeDelta::minutes(5));
        assert_eq!(with(" 15 ").unwrap().interval, chrono::TimeDelta::minutes(15));
        for bad in ["0", "-5", "five", "2.5"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("RECONCILE_INTERVAL_MINUTES is \"{bad}\": ")), "{e}");
        }
    }

    #[test]
    fn an_external_id_is_what_sts_takes_2_to_1224_characters() {
        let with =
            |value: String| Settings::from_lookup(move |k| (k == "SCHEDULER_EXTERNAL_ID").then(|| value.clone()));
        assert_eq!(with("ab".into()).unwrap().external_id.as_deref(), Some("ab"));
        assert_eq!(with("x".repeat(1224)).unwrap().external_id.map(|id| id.len()), Some(1224));
        assert_eq!(with(String::new()).unwrap().external_id, None);
        for bad in ["a".to_owned(), "x".repeat(1225), "has space".into(), "semi;colon".into()] {
            let e = with(bad.clone()).unwrap_err().to_string();
            assert!(e.starts_with("SCHEDULER_EXTERNAL_ID has ") && e.contains("2 to 1,224"), "{e}");
            assert!(bad.len() < 3 || !e.contains(&bad), "the value itself is not echoed: {e}");
        }
    }

    #[test]
    fn the_restored_capacity_bound_defaults_to_100_and_must_be_a_positive_size() {
        let with = |value: &str| {
            let value = value.to_owned();
            Settings::from_lookup(move |k| (k == "SCHEDULER_MAX_RESTORED_CAPACITY").then(|| value.clone()))
        };
        assert_eq!(Settings::from_lookup(|_| None).unwrap().max_restored_capacity, 100);
        assert_eq!(with(" 250 ").unwrap().max_restored_capacity, 250);
        for bad in ["0", "-1", "lots", "100001"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("SCHEDULER_MAX_RESTORED_CAPACITY is \"{bad}\": ")), "{e}");
        }
    }

    #[test]
    fn muting_alarms_is_off_unless_asked_and_its_setting_takes_true_or_false_only() {
        let with = |value: &str| {
            let value = value.to_owned();
            Settings::from_lookup(move |k| (k == "SCHEDULER_MUTE_ALARMS").then(|| value.clone()))
        };
        let defaults = Settings::from_lookup(|_| None).unwrap();
        assert!(!defaults.mute_alarms);
        assert_eq!(defaults.keys.mute_alarms, "ScheduleMuteAlarms");
        assert!(with(" TRUE ").unwrap().mute_alarms);
        assert!(!with("false").unwrap().mute_alarms);
        let e = with("yes").unwrap_err().to_string();
        assert!(e.starts_with("SCHEDULER_MUTE_ALARMS is \"yes\": give true"), "{e}");
    }

    #[test]
    fn events_go_to_the_default_bus_unless_another_or_none_is_named() {
        let with = |value: &str| {
            let value = value.to_owned();
            Settings::from_lookup(move |k| (k == "SCHEDULER_EVENT_BUS").then(|| value.clone()))
        };
        assert_eq!(Settings::from_lookup(|_| None).unwrap().event_bus.as_deref(), Some("default"));
        assert_eq!(with(" ops-events ").unwrap().event_bus.as_deref(), Some("ops-events"));
        assert_eq!(with("NONE").unwrap().event_bus, None);
        for bad in ["arn:aws:events:eu-west-1:111122223333:event-bus/ops", "has space", &"x".repeat(257)] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.starts_with("SCHEDULER_EVENT_BUS is \""), "{e}");
            assert!(e.contains("or none for no events"), "{e}");
        }
    }

    #[test]
    fn fan_out_needs_a_fifo_queue_and_an_organization_needs_fan_out() {
        let with = |pairs: &[(&str, &str)]| {
            let env: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Settings::from_lookup(|k| env.get(k).cloned())
        };
        let queue = "https://sqs.eu-west-1.amazonaws.com/111122223333/stackhand-targets.fifo";
        let set =
            with(&[("SCHEDULER_QUEUE_URL", queue), ("SCHEDULER_ORGANIZATIONAL_UNITS", "ou-ab12-cdef3456, r-ab12")]);
        let set = set.unwrap();
        assert_eq!((set.queue_url.as_deref(), set.organizational_units.len()), (Some(queue), 2));
        let e = with(&[("SCHEDULER_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/111122223333/targets")]);
        assert!(e.unwrap_err().to_string().contains("FIFO queue"), "a standard queue can't group by target");
        let e = with(&[("SCHEDULER_ORGANIZATIONAL_UNITS", "ou-ab12-cdef3456")]).unwrap_err();
        assert_eq!(e, SettingsError::OrganizationsWithoutQueue);
        let e = with(&[("SCHEDULER_QUEUE_URL", queue), ("SCHEDULER_ORGANIZATIONAL_UNITS", "Dev")]).unwrap_err();
        assert_eq!(e, SettingsError::OrganizationalUnit("Dev".into()), "a name, not an id");
        let both = [
            ("SCHEDULER_QUEUE_URL", queue),
            ("SCHEDULER_ORGANIZATIONAL_UNITS", "ou-ab12-cdef3456"),
            ("SCHEDULER_ACCOUNTS", "111122223333"),
        ];
        assert_eq!(with(&both).unwrap_err(), SettingsError::AccountsAndOrganizationalUnits);
        let e = with(&[("SCHEDULER_FAN_OUT_THRESHOLD", "many")]).unwrap_err().to_string();
        assert!(e.starts_with("SCHEDULER_FAN_OUT_THRESHOLD is \"many\""), "{e}");
    }

    #[test]
    fn the_default_threshold_is_what_one_run_reaches_in_half_the_interval() {
        let with = |pairs: &[(&str, &str)]| {
            let env: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Settings::from_lookup(|k| env.get(k).cloned()).unwrap().fan_out_threshold()
        };
        // 5 minutes: 150 s at 15 s a target is 10 rounds of 8 targets.
        assert_eq!(with(&[]), 80);
        assert_eq!(with(&[("RECONCILE_INTERVAL_MINUTES", "1")]), 16);
        assert_eq!(with(&[("SCHEDULER_CONCURRENT_TARGETS", "16")]), 160);
        assert_eq!(with(&[("SCHEDULER_FAN_OUT_THRESHOLD", "0")]), 0, "0: always");
    }
}
