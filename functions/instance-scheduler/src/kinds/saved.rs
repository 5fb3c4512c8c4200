//! The saved-capacity tag (`stackhand:saved-capacity`): what a stop of an Auto Scaling group, an ECS
//! service or an EKS node group saves so that its start can restore it, and what it suspended.

use std::fmt;

/// A saved-capacity tag that can't be restored: the message names the form or the owner's bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedError {
    #[error("\"{0}\" is not a saved capacity: expected \"min=<n> max=<n> desired=<n>\"")]
    Capacity(String),
    #[error("\"{0}\" is not a saved task count: expected \"desired=<n>\" or \"min=<n> max=<n> desired=<n>\"")]
    TaskCount(String),
    #[error("\"{0}\" is not a capacity a group can have (min <= desired <= max)")]
    Inconsistent(String),
    #[error("\"{0}\" is not a scalable target's range (min <= max)")]
    Range(String),
    #[error(
        "\"{saved}\" is larger than the {bound} that SCHEDULER_MAX_RESTORED_CAPACITY allows (the template's \
         SchedulerMaxRestoredCapacity), so nothing was started: a saved capacity is only a tag, and a tag must \
         not choose what a start launches. Raise the setting if the group really is that large"
    )]
    Bound { saved: String, bound: i32 },
}

impl SavedError {
    /// Whether the message contains `text` (the tests' check).
    #[cfg(test)]
    pub fn contains(&self, text: &str) -> bool {
        self.to_string().contains(text)
    }

    #[cfg(test)]
    pub fn starts_with(&self, text: &str) -> bool {
        self.to_string().starts_with(text)
    }
}

/// Minimum, maximum and desired capacity of an Auto Scaling group or an EKS node group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub min: i32,
    pub max: i32,
    pub desired: i32,
}

/// The `min=<n> max=<n> desired=<n>` fields of a saved-capacity tag: each one present with its number
/// (`None` when not a whole number of 0 or more; the last one written counts), and whether any other
/// key was there.
#[derive(Debug, Default)]
pub(crate) struct SavedFields {
    pub min: Option<Option<i32>>,
    pub max: Option<Option<i32>>,
    pub desired: Option<Option<i32>>,
    /// `suspended=A,B`: what the stop suspended (scaling processes, or a scalable target's flags), for the
    /// start to resume, exactly those.
    pub suspended: Option<Vec<String>>,
    pub unknown: bool,
}

impl SavedFields {
    pub fn read(value: &str) -> Self {
        let mut fields = SavedFields::default();
        for part in value.split_whitespace() {
            let (key, number) = part.split_once('=').unwrap_or((part, ""));
            if key == "suspended" {
                fields.suspended = Some(number.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect());
                continue;
            }
            let slot = match key {
                "min" => &mut fields.min,
                "max" => &mut fields.max,
                "desired" => &mut fields.desired,
                _ => {
                    fields.unknown = true;
                    continue;
                }
            };
            *slot = Some(number.parse::<i32>().ok().filter(|n| *n >= 0));
        }
        fields
    }
}

/// The desired capacity (or task count) a saved-capacity tag holds, if it holds a valid one.
pub fn saved_desired(value: Option<&str>) -> Option<i32> {
    SavedFields::read(value?).desired.flatten()
}

/// What a saved-capacity tag says the stop suspended (none for a tag of an earlier version).
pub fn saved_suspended(value: &str) -> Vec<String> {
    SavedFields::read(value).suspended.unwrap_or_default()
}

/// A saved-capacity tag's value: the capacity, and what the stop suspended if anything.
pub fn saved_value(capacity: &dyn fmt::Display, suspended: &[String]) -> String {
    if suspended.is_empty() {
        capacity.to_string()
    } else {
        format!("{capacity} suspended={}", suspended.join(","))
    }
}

impl Capacity {
    pub const ZERO: Capacity = Capacity { min: 0, max: 0, desired: 0 };

    /// Reads the saved-capacity tag value written by [`Capacity`]'s `Display`.
    pub fn parse(value: &str) -> Result<Self, SavedError> {
        let fields = SavedFields::read(value);
        match (fields.min.flatten(), fields.max.flatten(), fields.desired.flatten()) {
            (Some(min), Some(max), Some(desired)) => Ok(Capacity { min, max, desired }),
            _ => Err(SavedError::Capacity(value.to_owned())),
        }
    }

    /// This capacity, if a start may restore it: consistent (min ≤ desired ≤ max) and within `bound`.
    pub fn restorable(self, bound: i32) -> Result<Self, SavedError> {
        if self.min > self.max || !(self.min..=self.max).contains(&self.desired) {
            return Err(SavedError::Inconsistent(self.to_string()));
        }
        within_bound(&self, self.max, self.desired, bound).map(|()| self)
    }
}

/// Whether a saved capacity may be restored: a maximum or desired count above `bound` (the owner's
/// SCHEDULER_MAX_RESTORED_CAPACITY) is refused, since whoever can write the tag would otherwise choose
/// what a start launches.
pub(crate) fn within_bound(saved: &dyn fmt::Display, max: i32, desired: i32, bound: i32) -> Result<(), SavedError> {
    if max.max(desired) > bound {
        return Err(SavedError::Bound { saved: saved.to_string(), bound });
    }
    Ok(())
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "min={} max={} desired={}", self.min, self.max, self.desired)
    }
}

/// Why a group or service at 0 with no saved capacity is left alone. Counting it as running would
/// have its stop save "0": two overlapping runs (Lambda delivers an event twice; a long run meets the
/// next one) would then overwrite the real saved capacity, and the next start would "restore" 0.
pub const ZERO_WITHOUT_SAVED: &str = "is at capacity 0 with no saved capacity: taken as stopped, and nothing is saved \
     or restored (a stop never saves an all-zero capacity); give it a size by hand to have it scheduled again";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_capacity_round_trips_and_bad_values_say_the_form() {
        let c = Capacity { min: 1, max: 4, desired: 2 };
        assert_eq!(c.to_string(), "min=1 max=4 desired=2");
        assert_eq!(Capacity::parse(&c.to_string()), Ok(c));
        assert_eq!(Capacity::parse(" desired=0  min=0 max=0 "), Ok(Capacity::ZERO));
        for bad in ["", "min=1 max=4", "min=-1 max=4 desired=2", "min=a max=4 desired=2", "1 4 2"] {
            let e = Capacity::parse(bad).unwrap_err();
            assert!(e.contains("expected \"min=<n> max=<n> desired=<n>\""), "{bad}: {e}");
        }
    }

    #[test]
    fn a_saved_capacity_is_restored_only_if_consistent_and_within_the_owners_bound() {
        let c = Capacity { min: 1, max: 4, desired: 2 };
        assert_eq!(c.restorable(4), Ok(c));
        let e = Capacity { min: 0, max: 500, desired: 500 }.restorable(100).unwrap_err();
        assert!(
            e.starts_with(
                "\"min=0 max=500 desired=500\" is larger than the 100 that SCHEDULER_MAX_RESTORED_CAPACITY allows"
            ),
            "{e}"
        );
        assert!(e.contains("nothing was started"), "{e}");
        let e = Capacity { min: 3, max: 2, desired: 2 }.restorable(100).unwrap_err();
        assert!(e.contains("min <= desired <= max"), "{e}");
        assert!(Capacity { min: 1, max: 4, desired: 5 }.restorable(100).is_err());
    }
}
