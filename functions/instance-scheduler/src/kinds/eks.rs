//! EKS managed node groups carrying the schedule tag (on the node group's ARN). A stop saves min, max
//! and desired in the saved-capacity tag, then sets min and desired to 0 and keeps max (EKS rejects a
//! maxSize below 1: "Requested max capacity can't be less than 1"); a start restores them and removes
//! the tag. Listed with ListClusters, ListNodegroups per cluster and DescribeNodegroup per node group
//! (the listing carries no tags), all paginated. The node group's own Auto Scaling group is never
//! scheduled by itself (the autoscaling kind holds it).

use std::collections::HashMap;

use aws_sdk_eks::types::{Nodegroup, NodegroupScalingConfig, NodegroupStatus};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use stackhand::aws::{AwsError, AwsResultExt as _};
use tokio::time::Instant;

use super::kind::{Act, Acted, Detail, Kind, Marked, Resource, State, Unit};
use super::saved::{saved_desired, Capacity, ZERO_WITHOUT_SAVED};
use crate::call::{aws_call, outcome, CallError, Outcome};
use crate::clients::Clients;
use crate::direction::Direction;
use crate::settings::TagKeys;

/// DescribeNodegroup calls in flight at once while listing.
const DESCRIBE_CONCURRENCY: usize = 8;

/// The kind: `eks-nodegroup/<cluster>/<node group>`.
pub struct NodeGroups;

/// What a node group's stop and start need, from the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeGroup {
    cluster: String,
    name: String,
    capacity: Capacity,
}

impl Kind for NodeGroups {
    fn label(&self) -> &'static str {
        "eks-nodegroup"
    }

    fn listing(&self) -> (&'static str, &'static str) {
        ("eks-nodegroups", "ListNodegroups")
    }

    fn list<'a>(&'a self, clients: &'a Clients, keys: &'a TagKeys) -> BoxFuture<'a, Result<Vec<Resource>, AwsError>> {
        Box::pin(node_groups(&clients.eks, keys))
    }

    fn act<'a>(&'a self, act: Act<'a>, direction: Direction, batch: Vec<&'a Resource>) -> BoxFuture<'a, Acted> {
        Box::pin(async move {
            let mut acted = Vec::new();
            for resource in batch {
                let outcome = match direction {
                    Direction::Start => start(act, resource).await,
                    Direction::Stop => stop(act, resource).await,
                };
                acted.push((resource.name(), outcome));
            }
            acted
        })
    }

    /// TagResource takes one node group ARN per call.
    fn mark<'a>(&'a self, act: Act<'a>, key: &'a str, batch: Vec<(&'a Resource, String)>) -> BoxFuture<'a, Marked> {
        Box::pin(async move {
            let mut marked = Vec::new();
            for (resource, value) in batch {
                let result = match &resource.arn {
                    Some(arn) => tag(act, arn, key, &value).await,
                    None => Err(CallError::other("its listing gave no ARN to tag")),
                };
                marked.push((resource.name(), result));
            }
            marked
        })
    }

    fn busy(&self, status: &str) -> String {
        format!("has status \"{status}\"; EKS changes a node group's size only when it is ACTIVE")
    }
}

/// Every node group carrying the schedule tag, in every cluster of the Region.
async fn node_groups(eks: &aws_sdk_eks::Client, keys: &TagKeys) -> Result<Vec<Resource>, AwsError> {
    let mut clusters = Vec::new();
    let mut pages = eks.list_clusters().max_results(100).into_paginator().send();
    while let Some(page) = pages.next().await {
        clusters.extend(page.op("ListClusters")?.clusters().iter().cloned());
    }
    let mut names = Vec::new();
    for cluster in &clusters {
        let mut pages = eks.list_nodegroups().cluster_name(cluster).max_results(100).into_paginator().send();
        while let Some(page) = pages.next().await {
            names.extend(page.op("ListNodegroups")?.nodegroups().iter().map(|n| (cluster.clone(), n.clone())));
        }
    }
    let described: Vec<Option<Nodegroup>> = stream::iter(names)
        .map(|(cluster, name)| async move {
            let out = eks.describe_nodegroup().cluster_name(cluster).nodegroup_name(name).send().await;
            out.op("DescribeNodegroup").map(|o| o.nodegroup)
        })
        .buffered(DESCRIBE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(described.iter().flatten().filter_map(|group| resource(group, keys)).collect())
}

/// A described node group as a resource, if it carries the schedule tag.
fn resource(group: &Nodegroup, keys: &TagKeys) -> Option<Resource> {
    let empty = HashMap::new();
    let tags = group.tags().unwrap_or(&empty);
    let schedule = tags.get(&keys.schedule)?;
    let (cluster, name) = (group.cluster_name()?, group.nodegroup_name()?);
    let scaling = group.scaling_config();
    let capacity = Capacity {
        min: scaling.and_then(|s| s.min_size()).unwrap_or_default(),
        max: scaling.and_then(|s| s.max_size()).unwrap_or_default(),
        desired: scaling.and_then(|s| s.desired_size()).unwrap_or_default(),
    };
    let zero = capacity.min == 0 && capacity.desired == 0;
    let state = match group.status() {
        Some(NodegroupStatus::Active) if zero => State::Stopped,
        Some(NodegroupStatus::Active) => State::Running,
        Some(other) => State::Busy(other.as_str().to_owned()),
        None => State::Busy("unknown".into()),
    };
    let pairs = tags.iter().map(|(k, v)| (Some(k.as_str()), Some(v.as_str())));
    let mut resource = Resource::new(&NodeGroups, &format!("{cluster}/{name}"), state, schedule).with_tags(pairs, keys);
    resource.arn = group.nodegroup_arn().map(Into::into);
    resource.saved = tags.get(&keys.saved_capacity).cloned();
    // Stopped, it runs what its saved capacity says when started.
    let desired = if zero { saved_desired(resource.saved.as_deref()).unwrap_or(0) } else { capacity.desired };
    resource.units = vec![Unit::new(group.instance_types().first().map(String::as_str), desired)];
    if zero && resource.saved.is_none() {
        resource.hold = Some(ZERO_WITHOUT_SAVED.into());
    }
    resource.detail = Detail::new(NodeGroup { cluster: cluster.into(), name: name.into(), capacity });
    Some(resource)
}

/// Stopping a node group: its capacity saved in the tag first (so nothing is lost if the resize
/// fails), then min and desired set to 0, max kept. A node group that already has a valid saved
/// capacity (a stop half done) keeps it.
async fn stop(act: Act<'_>, resource: &Resource) -> Outcome {
    let Some(group) = resource.detail::<NodeGroup>() else { return Outcome::Failed("not an EKS node group".into()) };
    let key = &act.settings.keys.saved_capacity;
    let keeps_saved = resource.saved.as_deref().is_some_and(|saved| Capacity::parse(saved).is_ok());
    // An all-zero capacity is never saved: it would overwrite what an overlapping stop saved.
    if !keeps_saved && (group.capacity.min, group.capacity.desired) != (0, 0) {
        let Some(arn) = &resource.arn else { return Outcome::Failed("its listing gave no ARN to tag".into()) };
        if let Err(e) = tag(act, arn, key, &group.capacity.to_string()).await {
            return outcome(e);
        }
    }
    // EKS refuses a maximum below 1, so the maximum stays; no node runs at min 0 and desired 0.
    let stopped = Capacity { min: 0, max: group.capacity.max.max(1), desired: 0 };
    match resize(act, group, stopped, act.cutoff).await {
        Ok(()) => Outcome::Done,
        Err(e) => outcome(e),
    }
}

/// Starting a node group: the saved capacity restored (if consistent and within the owner's bound),
/// then the tag removed.
async fn start(act: Act<'_>, resource: &Resource) -> Outcome {
    let Some(group) = resource.detail::<NodeGroup>() else { return Outcome::Failed("not an EKS node group".into()) };
    let key = &act.settings.keys.saved_capacity;
    let saved = resource.saved.as_deref().unwrap_or_default();
    let capacity = match Capacity::parse(saved).and_then(|c| c.restorable(act.settings.max_restored_capacity)) {
        // EKS takes no maximum below 1 either way.
        Ok(capacity) if capacity.max >= 1 => capacity,
        Ok(capacity) => {
            return Outcome::Failed(format!(
                "{key} tag: \"{capacity}\" has a maximum below 1, which EKS rejects; set it to the capacity to \
                 restore"
            ))
        }
        Err(e) => {
            return Outcome::Failed(format!(
                "{key} tag: {e}; set it to the capacity to restore, or delete it if the node group is already running"
            ))
        }
    };
    if let Err(e) = resize(act, group, capacity, act.cutoff).await {
        return outcome(e);
    }
    let Some(arn) = &resource.arn else { return Outcome::Failed("its listing gave no ARN to untag".into()) };
    let untag = act.clients.eks.untag_resource().resource_arn(arn).tag_keys(key);
    match aws_call(act.cutoff, "UntagResource", untag.send()).await {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(format!(
            "capacity restored to {capacity}, but {}; the tag stays (the next stop keeps the capacity it holds)",
            e.message
        )),
    }
}

async fn resize(act: Act<'_>, group: &NodeGroup, c: Capacity, cutoff: Instant) -> Result<(), CallError> {
    let scaling = NodegroupScalingConfig::builder().min_size(c.min).max_size(c.max).desired_size(c.desired).build();
    let request = act
        .clients
        .eks
        .update_nodegroup_config()
        .cluster_name(&group.cluster)
        .nodegroup_name(&group.name)
        .scaling_config(scaling);
    aws_call(cutoff, "UpdateNodegroupConfig", request.send()).await
}

async fn tag(act: Act<'_>, arn: &str, key: &str, value: &str) -> Result<(), CallError> {
    let request = act.clients.eks.tag_resource().resource_arn(arn).tags(key, value);
    aws_call(act.cutoff, "TagResource", request.send()).await
}

#[cfg(test)]
mod tests;
