//! Finding the scheduled resources: every EC2 instance, RDS DB instance, DB cluster and Auto Scaling
//! group carrying the schedule tag (ECS services: `ecs.rs`), with its state in the terms the planner uses, and what AWS would
//! refuse to stop, known before asking. Paginated throughout; one list call per page per service, never
//! one call per resource (plus, only when there are any, one DescribeSpotInstanceRequests per 100 Spot
//! Instances and DescribeGlobalClusters for clusters in a global database).

use std::collections::{HashMap, HashSet};
use std::fmt;

use aws_sdk_autoscaling::types::Filter as AsgFilter;
use aws_sdk_ec2::types::{DeviceType, Filter, InstanceLifecycleType, InstanceStateName, SpotInstanceType};
use stackhand::aws::{AwsError, AwsResultExt as _};

/// The kinds of resource the scheduler acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Ec2Instance,
    DbInstance,
    DbCluster,
    AutoScalingGroup,
    EcsService,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Ec2Instance => "ec2-instance",
            Self::DbInstance => "rds-instance",
            Self::DbCluster => "rds-cluster",
            Self::AutoScalingGroup => "autoscaling-group",
            Self::EcsService => "ecs-service",
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

/// The `min=<n> max=<n> desired=<n>` fields of a saved-capacity tag (an Auto Scaling group's, an ECS
/// service's): each one present with its number (`None` when not a whole number of 0 or more; the last
/// one written counts), and whether any other key was there.
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
    pub fn parse(value: &str) -> Result<Self, String> {
        let fields = SavedFields::read(value);
        match (fields.min.flatten(), fields.max.flatten(), fields.desired.flatten()) {
            (Some(min), Some(max), Some(desired)) => Ok(Capacity { min, max, desired }),
            _ => Err(format!("\"{value}\" is not a saved capacity: expected \"min=<n> max=<n> desired=<n>\"")),
        }
    }
}

/// Whether a saved capacity may be restored: a maximum or desired count above `bound` (the owner's
/// SCHEDULER_MAX_RESTORED_CAPACITY) is refused, since whoever can write the tag would otherwise choose
/// what a start launches.
pub(crate) fn within_bound(saved: &dyn fmt::Display, max: i32, desired: i32, bound: i32) -> Result<(), String> {
    if max.max(desired) > bound {
        return Err(format!(
            "\"{saved}\" is larger than the {bound} that SCHEDULER_MAX_RESTORED_CAPACITY allows (the template's \
             SchedulerMaxRestoredCapacity), so nothing was started: a saved capacity is only a tag, and a tag must \
             not choose what a start launches. Raise the setting if the group really is that large"
        ));
    }
    Ok(())
}

impl Capacity {
    /// This capacity, if a start may restore it: consistent (min ≤ desired ≤ max) and within `bound`.
    pub fn restorable(self, bound: i32) -> Result<Self, String> {
        if self.min > self.max || !(self.min..=self.max).contains(&self.desired) {
            return Err(format!("\"{self}\" is not a capacity a group can have (min <= desired <= max)"));
        }
        within_bound(&self, self.max, self.desired, bound).map(|()| self)
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
    /// An Auto Scaling group's saved-capacity tag, present while the scheduler has it stopped (or
    /// while a stop is half done: the tag written, the capacity not yet 0).
    pub saved: Option<String>,
    /// A stopped EC2 instance whose last start fell back to stopped: why (its StateReason).
    pub start_failure: Option<String>,
    /// An Auto Scaling group's instances that are protected from scale in (they outlive desired 0).
    pub protected: Vec<String>,
    /// An Auto Scaling group protects the instances it launches from scale in.
    pub protects_new: bool,
    /// An EC2 instance's hibernation tag and whether it was launched able to hibernate.
    pub hibernate: Hibernation,
    /// An ECS service: what stopping and starting it needs.
    pub service: Option<crate::ecs::Service>,
    /// The marker tag's value: the schedule transition a reconcile last applied to it (RFC 3339).
    pub applied: Option<String>,
    /// How many tags it has: at AWS's limit of 50, the scheduler's marker can't be added.
    pub tag_count: usize,
    /// An Auto Scaling group's suspended processes (ScheduledActions, AlarmNotification, …), or an ECS
    /// service's scalable target's suspended flags (`in`, `out`, `scheduled`), as listed.
    pub suspended: Vec<String>,
    /// A database's or cluster's ARN, which RDS tagging calls take instead of the identifier.
    pub arn: Option<String>,
}

/// Whether an EC2 instance is to be hibernated rather than stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hibernation {
    /// No hibernation tag (or not `true`): a normal stop.
    #[default]
    NotAsked,
    /// Tagged, and launched with hibernation enabled (`HibernationOptions.Configured`).
    Configured,
    /// Tagged, but not enabled for hibernation (which can only be done at launch): a normal stop,
    /// reported.
    NotConfigured,
    /// Tagged, but a Spot Instance: older EC2 docs say StopInstances cannot hibernate Spot Instances,
    /// and the error it would give is undocumented. A normal stop, reported, rather than a stop that
    /// might never happen.
    Spot,
}

impl Resource {
    pub fn name(&self) -> String {
        format!("{}/{}", self.kind.label(), self.id)
    }

    pub(crate) fn new(kind: Kind, id: &str, state: State, schedule: &str) -> Self {
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
            start_failure: None,
            protected: Vec::new(),
            protects_new: false,
            hibernate: Hibernation::NotAsked,
            service: None,
            applied: None,
            tag_count: 0,
            suspended: Vec::new(),
            arn: None,
        }
    }

    /// Why stopping this Auto Scaling group leaves instances running, if it does.
    pub fn scale_in_protection(&self) -> Option<String> {
        if self.protected.is_empty() {
            return None;
        }
        let mut why = format!(
            "{} instance(s) protected from scale in keep running at capacity 0: {}; remove their protection \
             (SetInstanceProtection) or terminate them",
            self.protected.len(),
            self.protected.join(", ")
        );
        if self.protects_new {
            why.push_str(
                "; the group protects every instance it launches (NewInstancesProtectedFromScaleIn): turn that off, \
                 or each start brings this back",
            );
        }
        Some(why)
    }
}

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
}

pub(crate) fn tag<'a>(
    tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
    key: &str,
) -> Option<&'a str> {
    tags.into_iter().find(|(k, _)| *k == Some(key)).map(|(_, v)| v.unwrap_or_default())
}

/// StateReason codes of an instance that went from `pending` back to `stopped`: its start failed.
const START_FAILURES: [&str; 5] = [
    "Client.InternalError",
    "Client.VolumeLimitExceeded",
    "Client.InvalidSnapshot.NotFound",
    "Server.InsufficientInstanceCapacity",
    "Server.InternalError",
];

/// Why a stopped instance with this StateReason did not stay started, if that is what it says.
fn start_failure(code: Option<&str>, message: Option<&str>) -> Option<String> {
    let code = code.filter(|c| START_FAILURES.contains(c))?;
    let mut why = format!("its last start fell back to stopped ({code}: {})", message.unwrap_or("no message"));
    if code == "Client.InternalError" {
        why.push_str(
            "; usually EBS volumes encrypted with a customer managed KMS key the scheduler may not use: \
             list the key in SchedulerKmsKeyArns (kms:CreateGrant)",
        );
    }
    Some(why)
}

pub async fn ec2_instances(ec2: &aws_sdk_ec2::Client, keys: &TagKeys) -> Result<Vec<Resource>, AwsError> {
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
    // Spot Instances by their request: only those of a persistent request can be stopped.
    let mut spot: Vec<(usize, Option<String>)> = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.op("DescribeInstances")?;
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
            resource.tag_count = instance.tags().len();
            resource.override_until = tag(tags(), &keys.override_until).map(Into::into);
            if tag(tags(), &keys.hibernate).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
                let configured = instance.hibernation_options().and_then(|h| h.configured()) == Some(true);
                resource.hibernate = if instance.instance_lifecycle() == Some(&InstanceLifecycleType::Spot) {
                    Hibernation::Spot
                } else if configured {
                    Hibernation::Configured
                } else {
                    Hibernation::NotConfigured
                };
            }
            resource.applied = tag(tags(), &keys.applied).map(Into::into);
            if let Some(group) = tag(tags(), "aws:autoscaling:groupName") {
                resource.hold = Some(format!(
                    "belongs to Auto Scaling group {group}, which would replace it: tag the group to schedule it"
                ));
            }
            if instance.root_device_type() == Some(&DeviceType::InstanceStore) {
                resource.unstoppable = Some(
                    "has an instance-store root volume; AWS can terminate such an instance but not stop it".into(),
                );
            } else if instance.instance_lifecycle() == Some(&InstanceLifecycleType::Spot) {
                spot.push((found.len(), instance.spot_instance_request_id().map(Into::into)));
            }
            if resource.state == State::Stopped {
                let reason = instance.state_reason();
                resource.start_failure = start_failure(reason.and_then(|r| r.code()), reason.and_then(|r| r.message()));
            }
            found.push(resource);
        }
    }
    if !spot.is_empty() {
        let requests: Vec<String> = spot.iter().filter_map(|(_, r)| r.clone()).collect();
        match persistent_spot_requests(ec2, requests).await {
            Ok(persistent) => {
                for (index, request) in spot {
                    if !request.is_some_and(|r| persistent.contains(&r)) {
                        found[index].unstoppable = Some(
                            "is a one-time Spot Instance; AWS stops only Spot Instances of a persistent request".into(),
                        );
                    }
                }
            }
            // Not knowing is no reason to skip them: AWS says if it refuses.
            Err(e) => tracing::warn!(error = %e, "can't tell one-time Spot Instances from persistent ones"),
        }
    }
    Ok(found)
}

/// Which of `requests` are persistent Spot Instance requests.
async fn persistent_spot_requests(
    ec2: &aws_sdk_ec2::Client,
    requests: Vec<String>,
) -> Result<HashSet<String>, AwsError> {
    let mut persistent = HashSet::new();
    for chunk in requests.chunks(100) {
        // A filter, not SpotInstanceRequestIds: a request that is gone is no error.
        let mut pages = ec2
            .describe_spot_instance_requests()
            .filters(Filter::builder().name("spot-instance-request-id").set_values(Some(chunk.to_vec())).build())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.op("DescribeSpotInstanceRequests")?;
            for request in page.spot_instance_requests() {
                if let (Some(id), Some(SpotInstanceType::Persistent)) =
                    (request.spot_instance_request_id(), request.r#type())
                {
                    persistent.insert(id.to_owned());
                }
            }
        }
    }
    Ok(persistent)
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

pub async fn db_instances(rds: &aws_sdk_rds::Client, keys: &TagKeys) -> Result<Vec<Resource>, AwsError> {
    let mut pages = rds.describe_db_instances().max_records(100).into_paginator().send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.op("DescribeDBInstances")?;
        for db in page.db_instances() {
            let tags = || db.tag_list().iter().map(|t| (t.key(), t.value()));
            let (Some(id), Some(schedule)) = (db.db_instance_identifier(), tag(tags(), &keys.schedule)) else {
                continue;
            };
            let state = rds_state(db.db_instance_status().unwrap_or_default());
            let mut resource = Resource::new(Kind::DbInstance, id, state, schedule);
            resource.tag_count = db.tag_list().len();
            resource.arn = db.db_instance_arn().map(Into::into);
            resource.override_until = tag(tags(), &keys.override_until).map(Into::into);
            resource.applied = tag(tags(), &keys.applied).map(Into::into);
            if let Some(cluster) = db.db_cluster_identifier() {
                resource.hold = Some(format!(
                    "is a member of DB cluster {cluster}; members start and stop with their cluster: tag the cluster instead"
                ));
            } else if let Some(source) = db.read_replica_source_db_instance_identifier() {
                resource.unstoppable = Some(format!("is a read replica of {source}; AWS can't stop read replicas"));
            } else if !db.read_replica_db_instance_identifiers().is_empty()
                || !db.read_replica_db_cluster_identifiers().is_empty()
            {
                resource.unstoppable = Some("has read replicas; AWS can't stop a database that has them".into());
            } else if db.engine().is_some_and(|e| e.starts_with("sqlserver")) && db.multi_az() == Some(true) {
                resource.unstoppable = Some("is SQL Server in a Multi-AZ deployment; AWS can't stop those".into());
            }
            found.push(resource);
        }
    }
    Ok(found)
}

pub async fn db_clusters(rds: &aws_sdk_rds::Client, keys: &TagKeys) -> Result<Vec<Resource>, AwsError> {
    let mut pages = rds.describe_db_clusters().max_records(100).into_paginator().send();
    let mut found = Vec::new();
    // Clusters in a global database, by index in `found`, with the global database's id.
    let mut global: Vec<(usize, String)> = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.op("DescribeDBClusters")?;
        for cluster in page.db_clusters() {
            let tags = || cluster.tag_list().iter().map(|t| (t.key(), t.value()));
            let (Some(id), Some(schedule)) = (cluster.db_cluster_identifier(), tag(tags(), &keys.schedule)) else {
                continue;
            };
            let state = rds_state(cluster.status().unwrap_or_default());
            let mut resource = Resource::new(Kind::DbCluster, id, state, schedule);
            resource.tag_count = cluster.tag_list().len();
            resource.arn = cluster.db_cluster_arn().map(Into::into);
            resource.override_until = tag(tags(), &keys.override_until).map(Into::into);
            resource.applied = tag(tags(), &keys.applied).map(Into::into);
            resource.unstoppable = match cluster.engine_mode() {
                Some("serverless") => {
                    Some("is Aurora Serverless v1 (EngineMode serverless); AWS can't stop those".into())
                }
                Some("multimaster") => Some("is an Aurora multi-master cluster; AWS can't stop those".into()),
                Some("parallelquery") => {
                    Some("is an Aurora parallel query cluster (EngineMode parallelquery); AWS can't stop those".into())
                }
                _ if cluster.replication_source_identifier().is_some() => {
                    Some("is a replica cluster; AWS can't stop replica clusters".into())
                }
                _ if !cluster.read_replica_identifiers().is_empty() => Some(format!(
                    "has read replicas ({}); AWS can't stop a cluster that has them",
                    cluster.read_replica_identifiers().join(", ")
                )),
                _ => None,
            };
            if let Some(database) = cluster.global_cluster_identifier().filter(|g| !g.is_empty()) {
                if resource.unstoppable.is_none() {
                    global.push((found.len(), database.to_owned()));
                }
            }
            found.push(resource);
        }
    }
    if !global.is_empty() {
        match global_cluster_members(rds).await {
            Ok(members) => {
                for (index, database) in global {
                    let count = members.get(&database).copied().unwrap_or_default();
                    if count > 1 {
                        found[index].unstoppable = Some(format!(
                            "is one of {count} clusters of global database {database}; AWS can't stop a cluster \
                             of a global database that has more than one"
                        ));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "can't count the clusters of global databases"),
        }
    }
    Ok(found)
}

/// The number of member clusters of each global database.
async fn global_cluster_members(rds: &aws_sdk_rds::Client) -> Result<HashMap<String, usize>, AwsError> {
    let mut pages = rds.describe_global_clusters().max_records(100).into_paginator().send();
    let mut members = HashMap::new();
    while let Some(page) = pages.next().await {
        let page = page.op("DescribeGlobalClusters")?;
        for database in page.global_clusters() {
            if let Some(id) = database.global_cluster_identifier() {
                members.insert(id.to_owned(), database.global_cluster_members().len());
            }
        }
    }
    Ok(members)
}

/// Why a group or service at 0 with no saved capacity is left alone. Counting it as running would
/// have its stop save "0": two overlapping runs (Lambda delivers an event twice; a long run meets the
/// next one) would then overwrite the real saved capacity, and the next start would "restore" 0.
pub const ZERO_WITHOUT_SAVED: &str = "is at capacity 0 with no saved capacity: taken as stopped, and nothing is saved \
     or restored (a stop never saves an all-zero capacity); give it a size by hand to have it scheduled again";

pub async fn auto_scaling_groups(asg: &aws_sdk_autoscaling::Client, keys: &TagKeys) -> Result<Vec<Resource>, AwsError> {
    let mut pages = asg
        .describe_auto_scaling_groups()
        .filters(AsgFilter::builder().name("tag-key").values(&keys.schedule).build())
        .max_records(100)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.op("DescribeAutoScalingGroups")?;
        for group in page.auto_scaling_groups() {
            let tags = || group.tags().iter().map(|t| (t.key(), t.value()));
            let (Some(id), Some(schedule)) = (group.auto_scaling_group_name(), tag(tags(), &keys.schedule)) else {
                continue;
            };
            let saved = tag(tags(), &keys.saved_capacity);
            let capacity = Capacity {
                min: group.min_size().unwrap_or_default(),
                max: group.max_size().unwrap_or_default(),
                desired: group.desired_capacity().unwrap_or_default(),
            };
            // Stopped only when both halves of a stop are done: the tag alone may be a stop whose
            // UpdateAutoScalingGroup failed, and such a group is stopped again (keeping the tag).
            let state = if capacity == Capacity::ZERO { State::Stopped } else { State::Running };
            let mut resource = Resource::new(Kind::AutoScalingGroup, id, state, schedule);
            resource.tag_count = group.tags().len();
            resource.suspended =
                group.suspended_processes().iter().filter_map(|p| p.process_name()).map(Into::into).collect();
            if capacity == Capacity::ZERO && saved.is_none() {
                resource.hold = Some(ZERO_WITHOUT_SAVED.into());
            }
            resource.override_until = tag(tags(), &keys.override_until).map(Into::into);
            resource.applied = tag(tags(), &keys.applied).map(Into::into);
            resource.saved = saved.map(Into::into);
            resource.capacity = Some(capacity);
            resource.protects_new = group.new_instances_protected_from_scale_in() == Some(true);
            resource.protected = group
                .instances()
                .iter()
                .filter(|i| i.protected_from_scale_in() == Some(true))
                .filter(|i| {
                    let state = i.lifecycle_state().map(|s| s.as_str()).unwrap_or_default();
                    !(state.starts_with("Terminat") || state.starts_with("Detach"))
                })
                .filter_map(|i| i.instance_id().map(Into::into))
                .collect();
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

    #[test]
    fn rds_statuses() {
        assert_eq!(rds_state("available"), State::Running);
        assert_eq!(rds_state("stopped"), State::Stopped);
        assert_eq!(rds_state("starting"), State::Starting);
        assert_eq!(rds_state("stopping"), State::Stopping);
        assert_eq!(rds_state("backing-up"), State::Busy("backing-up".into()));
    }
}
