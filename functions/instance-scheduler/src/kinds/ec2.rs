//! EC2 instances carrying the schedule tag. Listed with DescribeInstances (1,000 a page, filtered on
//! the tag key and state), plus one DescribeSpotInstanceRequests per 100 Spot Instances when there are
//! any. Started and stopped in batches — one StartInstances/StopInstances call per batch, paced to EC2's
//! request and instance buckets, a batch that fails retried by halves so that one bad instance doesn't
//! hold back the rest — with `Hibernate` for those tagged for it and launched able to. Marked with
//! CreateTags, one call per batch that shares a value.

use std::collections::{HashMap, HashSet};

use aws_sdk_ec2::types::{DeviceType, Filter, InstanceLifecycleType, InstanceStateName, SpotInstanceType};
use futures_util::future::BoxFuture;
use stackhand::aws::{AwsError, AwsResultExt as _};
use tokio::time::Instant;

use super::kind::{chunked, each, tag, Act, Acted, Detail, Kind, Marked, Resource, State, Unit};
use crate::call::{aws_call, by_halves, outcome, CallError, Outcome};
use crate::clients::Clients;
use crate::direction::Direction;
use crate::settings::{Settings, TagKeys};

/// The kind: `ec2-instance/<instance id>`.
pub struct Instances;

pub const LABEL: &str = "ec2-instance";

impl Kind for Instances {
    fn label(&self) -> &'static str {
        LABEL
    }

    fn listing(&self) -> (&'static str, &'static str) {
        ("ec2-instances", "DescribeInstances")
    }

    fn list<'a>(&'a self, clients: &'a Clients, keys: &'a TagKeys) -> BoxFuture<'a, Result<Vec<Resource>, AwsError>> {
        Box::pin(instances(&clients.ec2, keys))
    }

    /// Starts, stops and hibernations apart (a hibernation is a StopInstances with `Hibernate`), each
    /// in batches of the run's batch size.
    fn batches<'r>(
        &self,
        direction: Direction,
        resources: Vec<&'r Resource>,
        settings: &Settings,
    ) -> Vec<Vec<&'r Resource>> {
        let (hibernate, plain): (Vec<_>, Vec<_>) = resources
            .into_iter()
            .partition(|r| direction == Direction::Stop && hibernation(r) == Hibernation::Configured);
        let mut batches = chunked(plain, settings);
        batches.extend(chunked(hibernate, settings));
        batches
    }

    fn act<'a>(&'a self, act: Act<'a>, direction: Direction, batch: Vec<&'a Resource>) -> BoxFuture<'a, Acted> {
        Box::pin(async move {
            // EC2's request and instance buckets for this account and Region: a batch they would not
            // admit before the cutoff is deferred to the next run, not sent to be throttled.
            if act.clients.pacer.admit(direction, batch.len(), act.cutoff).await.is_err() {
                return each(&batch, Outcome::Deferred);
            }
            let ids: Vec<String> = batch.iter().map(|r| r.id.clone()).collect();
            let hibernate =
                direction == Direction::Stop && batch.iter().all(|r| hibernation(r) == Hibernation::Configured);
            let outcomes = if hibernate {
                hibernate_batch(&act.clients.ec2, ids, act.cutoff).await
            } else {
                ec2_batch(&act.clients.ec2, direction, ids, act.cutoff).await
            };
            let by_id: HashMap<&str, &Resource> = batch.iter().map(|r| (r.id.as_str(), *r)).collect();
            outcomes
                .into_iter()
                .map(|(id, outcome)| {
                    let outcome = match by_id.get(id.as_str()) {
                        Some(resource) => noted(resource, direction, outcome),
                        None => outcome,
                    };
                    (format!("{LABEL}/{id}"), outcome)
                })
                .collect()
        })
    }

    /// Instances given the same value share a CreateTags call, in batches of the run's batch size.
    fn mark_batches<'r>(
        &self,
        marks: Vec<(&'r Resource, String)>,
        settings: &Settings,
    ) -> Vec<Vec<(&'r Resource, String)>> {
        let mut by_value: std::collections::BTreeMap<String, Vec<(&'r Resource, String)>> = Default::default();
        for (resource, value) in marks {
            by_value.entry(value.clone()).or_default().push((resource, value));
        }
        by_value.into_values().flat_map(|marks| chunked(marks, settings)).collect()
    }

    /// Its alarms: those on its `InstanceId`.
    fn alarm_dimensions(&self, resource: &Resource) -> Vec<(&'static str, String)> {
        vec![("InstanceId", resource.id.clone())]
    }

    fn mark<'a>(&'a self, act: Act<'a>, key: &'a str, batch: Vec<(&'a Resource, String)>) -> BoxFuture<'a, Marked> {
        Box::pin(async move {
            let Some((_, value)) = batch.first() else { return Vec::new() };
            let ids = batch.iter().map(|(r, _)| r.id.clone()).collect();
            let written = tag_instances(&act.clients.ec2, key, value, ids, act.cutoff).await;
            written.into_iter().map(|(id, result)| (format!("{LABEL}/{id}"), result)).collect()
        })
    }
}

/// An instance's hibernation, from its listing.
fn hibernation(resource: &Resource) -> Hibernation {
    resource.detail::<Hibernation>().copied().unwrap_or_default()
}

/// What the listing knew that the outcome should say: an instance that asked for hibernation but was
/// stopped normally, or one started again after its last start fell back to stopped.
fn noted(resource: &Resource, direction: Direction, outcome: Outcome) -> Outcome {
    match (outcome, direction) {
        (Outcome::Done, Direction::Stop) => match hibernation(resource) {
            Hibernation::NotConfigured => Outcome::Noted(
                "not hibernated: it asks for hibernation but was not launched with it enabled \
                 (HibernationOptions.Configured, which can only be set at launch); stopped normally instead"
                    .into(),
            ),
            Hibernation::Spot => Outcome::Noted(
                "not hibernated: a Spot Instance (EC2's documentation has said StopInstances cannot hibernate \
                 Spot Instances, and the error it gives is undocumented); stopped normally instead"
                    .into(),
            ),
            Hibernation::NotAsked | Hibernation::Configured => Outcome::Done,
        },
        (Outcome::Done, Direction::Start) => match &resource.start_failure {
            Some(why) => Outcome::Repeated(format!("{why}; started again")),
            None => Outcome::Done,
        },
        (other, _) => other,
    }
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

async fn instances(ec2: &aws_sdk_ec2::Client, keys: &TagKeys) -> Result<Vec<Resource>, AwsError> {
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
            let mut resource = Resource::new(&Instances, id, state, schedule).with_tags(tags(), keys);
            resource.units = Unit::one(instance.instance_type().map(|t| t.as_str()));
            if tag(tags(), &keys.hibernate).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
                let configured = instance.hibernation_options().and_then(|h| h.configured()) == Some(true);
                let hibernate = if instance.instance_lifecycle() == Some(&InstanceLifecycleType::Spot) {
                    Hibernation::Spot
                } else if configured {
                    Hibernation::Configured
                } else {
                    Hibernation::NotConfigured
                };
                resource.detail = Detail::new(hibernate);
            }
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

/// The instance a StopInstances refused for its stop protection names: `The instance 'i-…' may not be
/// stopped. Modify its 'disableApiStop' instance attribute and try again.`
fn stop_protected(error: &CallError) -> Option<&str> {
    if error.code.as_deref() != Some("OperationNotPermitted") || !error.message.contains("disableApiStop") {
        return None;
    }
    let (_, rest) = error.message.split_once("instance '")?;
    rest.split_once('\'').map(|(id, _)| id)
}

/// Starts or stops `ids` in one call; if that fails for the content of the request, each half is
/// tried on its own, down to single instances, whose error is then theirs alone. An instance refused
/// for its stop protection is taken out (AWS names it) and the rest tried again whole.
pub(crate) async fn ec2_batch(
    ec2: &aws_sdk_ec2::Client,
    direction: Direction,
    ids: Vec<String>,
    cutoff: Instant,
) -> Vec<(String, Outcome)> {
    batch(ec2, direction, ids, false, cutoff, &mut Vec::new()).await
}

/// Hibernates `ids` (instances tagged for it and launched with it enabled) in one StopInstances call
/// with `Hibernate`. An instance AWS refuses to hibernate is taken out — the one its answer names, or
/// else found by halving — and the rest hibernated again as one batch; those taken out are then
/// stopped normally, together in one batch, and reported with AWS's reason. Other errors go as in
/// [`ec2_batch`].
pub(crate) async fn hibernate_batch(
    ec2: &aws_sdk_ec2::Client,
    ids: Vec<String>,
    cutoff: Instant,
) -> Vec<(String, Outcome)> {
    let mut refused = Vec::new();
    let mut outcomes = batch(ec2, Direction::Stop, ids, true, cutoff, &mut refused).await;
    if refused.is_empty() {
        return outcomes;
    }
    let why: HashMap<String, String> = refused.into_iter().collect();
    let ids = why.keys().cloned().collect();
    for (id, outcome) in batch(ec2, Direction::Stop, ids, false, cutoff, &mut Vec::new()).await {
        let outcome = match outcome {
            Outcome::Done => Outcome::Fallback(format!("not hibernated ({}); stopped normally instead", why[&id])),
            other => other,
        };
        outcomes.push((id, outcome));
    }
    outcomes
}

/// Whether StopInstances refused to hibernate (not to stop): the instance isn't able to hibernate
/// (`UnsupportedHibernationConfiguration`; `UnsupportedOperation` about hibernation, as when it is
/// asked too soon after launch, before the hibernation agent is ready).
fn refuses_hibernation(error: &CallError) -> bool {
    match error.code.as_deref() {
        Some("UnsupportedHibernationConfiguration") => true,
        Some("UnsupportedOperation") => error.message.to_ascii_lowercase().contains("hibernat"),
        _ => false,
    }
}

/// [`ec2_batch`], and with `hibernate` a StopInstances with `Hibernate`, whose refusals are taken out
/// into `refused` (instance, reason) rather than reported.
async fn batch(
    ec2: &aws_sdk_ec2::Client,
    direction: Direction,
    ids: Vec<String>,
    hibernate: bool,
    cutoff: Instant,
    refused: &mut Vec<(String, String)>,
) -> Vec<(String, Outcome)> {
    if ids.is_empty() {
        return Vec::new();
    }
    let result = send(ec2, direction, &ids, hibernate, cutoff).await;
    match result {
        Ok(()) => ids.into_iter().map(|id| (id, Outcome::Done)).collect(),
        Err(e) if hibernate && refuses_hibernation(&e) => {
            // The instance its answer names (or the only one) falls back; else halve to find it.
            match ids.iter().position(|i| e.message.contains(i.as_str())).or((ids.len() == 1).then_some(0)) {
                Some(index) => {
                    let mut rest = ids;
                    refused.push((rest.remove(index), e.message));
                    Box::pin(batch(ec2, direction, rest, hibernate, cutoff, refused)).await
                }
                None => halves(ec2, direction, ids, hibernate, cutoff, refused).await,
            }
        }
        Err(e) if direction == Direction::Stop && stop_protected(&e).is_some_and(|id| ids.iter().any(|i| i == id)) => {
            let protected = stop_protected(&e).unwrap_or_default().to_owned();
            tracing::debug!(instance = %protected, "stop protection; retrying the batch without it");
            let rest = ids.into_iter().filter(|id| *id != protected).collect();
            let mut outcomes = Box::pin(batch(ec2, direction, rest, hibernate, cutoff, refused)).await;
            let why = "has stop protection (DisableApiStop); AWS won't stop it until that is turned off";
            outcomes.push((protected, Outcome::Skipped(why.into())));
            outcomes
        }
        Err(e) if e.splittable && ids.len() > 1 => {
            tracing::debug!(batch = ids.len(), error = %e.message, "batch failed; retrying by halves");
            halves(ec2, direction, ids, hibernate, cutoff, refused).await
        }
        Err(e) => {
            let outcome = outcome(e);
            ids.into_iter().map(|id| (id, outcome.clone())).collect()
        }
    }
}

/// [`batch`] for each half of `ids`.
async fn halves(
    ec2: &aws_sdk_ec2::Client,
    direction: Direction,
    mut ids: Vec<String>,
    hibernate: bool,
    cutoff: Instant,
    refused: &mut Vec<(String, String)>,
) -> Vec<(String, Outcome)> {
    let right = ids.split_off(ids.len() / 2);
    let mut outcomes = Box::pin(batch(ec2, direction, ids, hibernate, cutoff, refused)).await;
    outcomes.extend(Box::pin(batch(ec2, direction, right, hibernate, cutoff, refused)).await);
    outcomes
}

/// One StartInstances or StopInstances call for `ids`; with `hibernate`, StopInstances with `Hibernate`.
async fn send(
    ec2: &aws_sdk_ec2::Client,
    direction: Direction,
    ids: &[String],
    hibernate: bool,
    cutoff: Instant,
) -> Result<(), CallError> {
    match direction {
        Direction::Start => {
            aws_call(cutoff, "StartInstances", ec2.start_instances().set_instance_ids(Some(ids.to_vec())).send()).await
        }
        Direction::Stop => {
            let request = ec2.stop_instances().set_instance_ids(Some(ids.to_vec()));
            let request = if hibernate { request.hibernate(true) } else { request };
            aws_call(cutoff, "StopInstances", request.send()).await
        }
    }
}

/// Writes the tag `key` = `value` on the instances `ids`: one CreateTags call (AWS takes up to 1,000
/// ids; the caller sends as many as in a StartInstances), split by halves if refused.
async fn tag_instances(
    ec2: &aws_sdk_ec2::Client,
    key: &str,
    value: &str,
    ids: Vec<String>,
    cutoff: Instant,
) -> Vec<(String, Result<(), CallError>)> {
    let tag = aws_sdk_ec2::types::Tag::builder().key(key).value(value).build();
    let call = |ids: Vec<String>| {
        let request = ec2.create_tags().set_resources(Some(ids)).tags(tag.clone());
        aws_call(cutoff, "CreateTags", request.send())
    };
    by_halves(ids, &call).await
}

#[cfg(test)]
mod tests;
