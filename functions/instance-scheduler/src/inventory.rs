//! Finding the scheduled resources: every EC2 instance, RDS DB instance, DB cluster and Auto Scaling
//! group carrying the schedule tag, with its state in the terms the planner uses. Paginated throughout;
//! one list call per page per service, never one call per resource.

use std::fmt;

use aws_sdk_autoscaling::types::Filter as AsgFilter;
use aws_sdk_ec2::types::{Filter, InstanceStateName};
use stackhand::aws::describe_error;

/// The kinds of resource the scheduler acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Ec2Instance,
    DbInstance,
    DbCluster,
    AutoScalingGroup,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Ec2Instance => "ec2-instance",
            Self::DbInstance => "rds-instance",
            Self::DbCluster => "rds-cluster",
            Self::AutoScalingGroup => "autoscaling-group",
        }
    }
}

/// A resource's state, reduced to what deciding needs. Transitional states count as where they lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Running,
    Stopped,
    Starting,
    Stopping,
    /// Up, but in a state from which AWS won't stop it (an RDS `backing-up`, `modifying`, …).
    Busy(String),
}

/// Minimum, maximum and desired capacity of an Auto Scaling group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub min: i32,
    pub max: i32,
    pub desired: i32,
}

impl Capacity {
    pub const ZERO: Capacity = Capacity { min: 0, max: 0, desired: 0 };

    /// Reads the saved-capacity tag value written by [`Capacity`]'s `Display`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut min = None;
        let mut max = None;
        let mut desired = None;
        for part in value.split_whitespace() {
            let (key, number) = part.split_once('=').unwrap_or((part, ""));
            let slot = match key {
                "min" => &mut min,
                "max" => &mut max,
                "desired" => &mut desired,
                _ => &mut None,
            };
            *slot = number.parse::<i32>().ok().filter(|n| *n >= 0);
        }
        match (min, max, desired) {
            (Some(min), Some(max), Some(desired)) => Ok(Capacity { min, max, desired }),
            _ => Err(format!("\"{value}\" is not a saved capacity: expected \"min=<n> max=<n> desired=<n>\"")),
        }
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "min={} max={} desired={}", self.min, self.max, self.desired)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: Kind,
    pub id: String,
    pub state: State,
    /// The schedule tag's value.
    pub schedule: String,
    /// The override tag's value, if the resource has one.
    pub override_until: Option<String>,
    /// Why this resource is never acted on by itself (an Aurora member, an Auto Scaling group's instance).
    pub hold: Option<String>,
    /// Why AWS refuses to stop it (a read replica, or a database with replicas).
    pub unstoppable: Option<String>,
    /// An Auto Scaling group's current capacity.
    pub capacity: Option<Capacity>,
    /// An Auto Scaling group's saved-capacity tag, present while the scheduler has it stopped.
    pub saved: Option<String>,
}

impl Resource {
    pub fn name(&self) -> String {
        format!("{}/{}", self.kind.label(), self.id)
    }

    fn new(kind: Kind, id: &str, state: State, schedule: &str) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            state,
            schedule: schedule.to_owned(),
            override_until: None,
            hold: None,
            unstoppable: None,
            capacity: None,
            saved: None,
        }
    }
}

/// The tag keys the scheduler reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagKeys {
    pub schedule: String,
    pub override_until: String,
    pub saved_capacity: String,
}

fn tag<'a>(tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>, key: &str) -> Option<&'a str> {
    tags.into_iter().find(|(k, _)| *k == Some(key)).map(|(_, v)| v.unwrap_or_default())
}

pub async fn ec2_instances(ec2: &aws_sdk_ec2::Client, keys: &TagKeys) -> Result<Vec<Resource>, String> {
    let mut pages = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag-key").values(&keys.schedule).build())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(["pending", "running", "stopping", "stopped"].map(String::from).to_vec()))
                .build(),
        )
        .max_results(1000)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| describe_error("DescribeInstances", &e))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = instance.instance_id() else { continue };
            let tags = || instance.tags().iter().map(|t| (t.key(), t.value()));
            let Some(schedule) = tag(tags(), &keys.schedule) else { continue };
            let state = match instance.state().and_then(|s| s.name()) {
                Some(InstanceStateName::Running) => State::Running,
                Some(InstanceStateName::Stopped) => State::Stopped,
                Some(InstanceStateName::Pending) => State::Starting,
                Some(InstanceStateName::Stopping) => State::Stopping,
                _ => continue,
            };
            let mut resource = Resource::new(Kind::Ec2Instance, id, state, schedule);
            resource.override_until = tag(tags(), &keys.override_until).map(Into::into);
            if let Some(group) = tag(tags(), "aws:autoscaling:groupName") {
                resource.hold = Some(format!(
                    "belongs to Auto Scaling group {group}, which would replace it: tag the group to schedule it"
                ));
            }
            found.push(resource);
        }
    }
    Ok(found)
}

fn rds_state(status: &str) -> State {
    match status {
        "available" => State::Running,
        "stopped" => State::Stopped,
        "starting" => State::Starting,
        "stopping" => State::Stopping,
        other => State::Busy(other.to_owned()),
    }
}

pub async fn db_instances(rds: &aws_sdk_rds::Client, keys: &TagKeys) -> Result<Vec<Resource>, String> {
    let mut pages = rds.describe_db_instances().max_records(100).into_paginator().send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| describe_error("DescribeDBInstances", &e))?;
        for db in page.db_instances() {
            let tags = || db.tag_list().iter().map(|t| (t.key(), t.value()));
            let (Some(id), Some(schedule)) = (db.db_instance_identifier(), tag(tags(), &keys.schedule)) else {
                continue;
            };
            let state = rds_state(db.db_instance_status().unwrap_or_default());
            let mut resource = Resource::new(Kind::DbInstance, id, state, schedule);
            resource.override_until = tag(tags(), &keys.override_until).map(Into::into);
            if let Some(cluster) = db.db_cluster_identifier() {
                resource.hold = Some(format!(
                    "is a member of DB cluster {cluster}; members start and stop with their cluster: tag the cluster instead"
                ));
            } else if let Some(source) = db.read_replica_source_db_instance_identifier() {
                resource.unstoppable = Some(format!("is a read replica of {source}; AWS can't stop read replicas"));
            } else if !db.read_replica_db_instance_identifiers().is_empty() {
                resource.unstoppable = Some("has read replicas; AWS can't stop a database that has them".into());
            }
            found.push(resource);
        }
    }
    Ok(found)
}

pub async fn db_clusters(rds: &aws_sdk_rds::Client, keys: &TagKeys) -> Result<Vec<Resource>, String> {
    let mut pages = rds.describe_db_clusters().max_records(100).into_paginator().send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| describe_error("DescribeDBClusters", &e))?;
        for cluster in page.db_clusters() {
            let tags = || cluster.tag_list().iter().map(|t| (t.key(), t.value()));
            let (Some(id), Some(schedule)) = (cluster.db_cluster_identifier(), tag(tags(), &keys.schedule)) else {
                continue;
            };
            let state = rds_state(cluster.status().unwrap_or_default());
            let mut resource = Resource::new(Kind::DbCluster, id, state, schedule);
            resource.override_until = tag(tags(), &keys.override_until).map(Into::into);
            if cluster.replication_source_identifier().is_some() {
                resource.unstoppable = Some("is a replica cluster; AWS can't stop replica clusters".into());
            }
            found.push(resource);
        }
    }
    Ok(found)
}

pub async fn auto_scaling_groups(asg: &aws_sdk_autoscaling::Client, keys: &TagKeys) -> Result<Vec<Resource>, String> {
    let mut pages = asg
        .describe_auto_scaling_groups()
        .filters(AsgFilter::builder().name("tag-key").values(&keys.schedule).build())
        .max_records(100)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| describe_error("DescribeAutoScalingGroups", &e))?;
        for group in page.auto_scaling_groups() {
            let tags = || group.tags().iter().map(|t| (t.key(), t.value()));
            let (Some(id), Some(schedule)) = (group.auto_scaling_group_name(), tag(tags(), &keys.schedule)) else {
                continue;
            };
            let saved = tag(tags(), &keys.saved_capacity);
            let state = if saved.is_some() { State::Stopped } else { State::Running };
            let mut resource = Resource::new(Kind::AutoScalingGroup, id, state, schedule);
            resource.override_until = tag(tags(), &keys.override_until).map(Into::into);
            resource.saved = saved.map(Into::into);
            resource.capacity = Some(Capacity {
                min: group.min_size().unwrap_or_default(),
                max: group.max_size().unwrap_or_default(),
                desired: group.desired_capacity().unwrap_or_default(),
            });
            if let Some(status) = group.status() {
                resource.hold = Some(format!("has status \"{status}\""));
            }
            found.push(resource);
        }
    }
    Ok(found)
}

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
    fn rds_statuses() {
        assert_eq!(rds_state("available"), State::Running);
        assert_eq!(rds_state("stopped"), State::Stopped);
        assert_eq!(rds_state("starting"), State::Starting);
        assert_eq!(rds_state("stopping"), State::Stopping);
        assert_eq!(rds_state("backing-up"), State::Busy("backing-up".into()));
    }
}
