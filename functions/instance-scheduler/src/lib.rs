//! `instance-scheduler`: time-based start/stop of EC2 instances, RDS databases, Aurora clusters,
//! Auto Scaling groups and ECS services, from schedules in tags. The binary (`main.rs`) only wires it to the Lambda
//! runtime; fuzz/ uses [`schedule`] (its hooks behind the `fuzzing` feature).

mod actions;
mod call;
mod clients;
mod direction;
mod ecs;
mod inventory;
mod metrics;
mod named;
mod pace;
mod plan;
mod request;
pub mod schedule;
pub mod scheduler;
mod settings;
mod summary;
pub mod targets;
#[cfg(test)]
mod testing;
