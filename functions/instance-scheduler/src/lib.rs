//! `instance-scheduler`: time-based start/stop of EC2 instances, RDS databases, Aurora, DocumentDB and
//! Neptune clusters, Auto Scaling groups and ECS services, from schedules in tags. The binary
//! (`main.rs`) only wires it to the Lambda runtime; fuzz/ uses [`schedule`] (its hooks behind the
//! `fuzzing` feature).
//!
//! Layers, each importing only those below it: [`handler`] (the event: every target run here, or sent
//! to the queue one message each; or a worker's messages) → `fanout` (the targets' messages), `run`
//! (one target: list → plan → act → mark → summarize over the registry), `metrics`, `events` → `fleet`,
//! `kinds` (one module per kind of resource, each a `Kind`) → `call`, `clients`, `plan`, `named`,
//! [`targets`] (→ `organizations`) → [`schedule`], [`settings`].

mod alarms;
mod call;
mod clients;
mod direction;
mod events;
mod fanout;
mod fleet;
pub mod handler;
mod kinds;
mod metrics;
mod named;
mod organizations;
mod pace;
mod plan;
mod request;
mod run;
pub mod schedule;
mod settings;
mod summary;
pub mod targets;
#[cfg(test)]
mod testing;

/// The names `main.rs`, the tests and the bench use.
pub mod scheduler {
    pub use crate::clients::Clients;
    pub use crate::events::{SCHEDULING_ACTION, SCHEDULING_FAILED, SOURCE as EVENT_SOURCE};
    pub use crate::handler::{handle, run_targets, SchedulerError, FAILED_ERROR_TYPE};
    pub use crate::metrics::{NAMES as METRIC_NAMES, NAMESPACE as METRIC_NAMESPACE};
    pub use crate::named::Definer;
    pub use crate::settings::{
        Settings, SettingsError, TagKeys, DEFAULT_HIBERNATE_TAG, DEFAULT_MAX_RESTORED_CAPACITY, DEFAULT_OVERRIDE_TAG,
        DEFAULT_ROLE_NAME, DEFAULT_SCHEDULE_TAG, SAVED_CAPACITY_TAG, SCHEDULE_APPLIED_TAG,
    };
}
