//! Amazon Redshift provisioned clusters carrying the schedule tag: a stop is PauseCluster (billing of
//! the nodes stops; storage is still charged), a start ResumeCluster. Listed with DescribeClusters
//! filtered on the tag key (100 a page, tags included). What PauseCluster's documentation excludes
//! (HSM clusters, clusters with automated snapshots off; EC2-Classic ones are gone since 2023) is known
//! from the listing and skipped with the reason; a cluster that is not `available` is busy. Redshift
//! Serverless has no pause (it bills by use) and DescribeClusters does not list its workgroups.
//! Marked with CreateTags, one cluster ARN per call.

use aws_sdk_redshift::types::{Cluster, Tag};
use futures_util::future::BoxFuture;
use stackhand::aws::{AwsError, AwsResultExt as _};

use super::kind::{tag, Act, Acted, Kind, Marked, Resource, State, Unit};
use crate::call::{aws_call, done, CallError};
use crate::clients::Clients;
use crate::direction::Direction;
use crate::settings::TagKeys;

/// The kind: `redshift-cluster/<identifier>`.
pub struct Clusters;

impl Kind for Clusters {
    fn label(&self) -> &'static str {
        "redshift-cluster"
    }

    fn listing(&self) -> (&'static str, &'static str) {
        ("redshift-clusters", "DescribeClusters")
    }

    fn list<'a>(&'a self, clients: &'a Clients, keys: &'a TagKeys) -> BoxFuture<'a, Result<Vec<Resource>, AwsError>> {
        Box::pin(async move {
            let mut pages =
                clients.redshift.describe_clusters().tag_keys(&keys.schedule).max_records(100).into_paginator().send();
            let mut found = Vec::new();
            while let Some(page) = pages.next().await {
                for cluster in page.op("DescribeClusters")?.clusters() {
                    found.extend(resource(cluster, keys, clients));
                }
            }
            Ok(found)
        })
    }

    fn act<'a>(&'a self, act: Act<'a>, direction: Direction, batch: Vec<&'a Resource>) -> BoxFuture<'a, Acted> {
        Box::pin(async move {
            let (redshift, cutoff) = (&act.clients.redshift, act.cutoff);
            let mut acted = Vec::new();
            for cluster in batch {
                let id = &cluster.id;
                let result = match direction {
                    Direction::Start => {
                        aws_call(cutoff, "ResumeCluster", redshift.resume_cluster().cluster_identifier(id).send()).await
                    }
                    Direction::Stop => {
                        aws_call(cutoff, "PauseCluster", redshift.pause_cluster().cluster_identifier(id).send()).await
                    }
                };
                acted.push((cluster.name(), done(result)));
            }
            acted
        })
    }

    fn alarm_dimensions(&self, resource: &Resource) -> Vec<(&'static str, String)> {
        vec![("ClusterIdentifier", resource.id.clone())]
    }

    /// CreateTags takes one cluster ARN per call.
    fn mark<'a>(&'a self, act: Act<'a>, key: &'a str, batch: Vec<(&'a Resource, String)>) -> BoxFuture<'a, Marked> {
        Box::pin(async move {
            let mut marked = Vec::new();
            for (cluster, value) in batch {
                let result = match &cluster.arn {
                    Some(arn) => {
                        let tag = Tag::builder().key(key).value(value).build();
                        let request = act.clients.redshift.create_tags().resource_name(arn).tags(tag);
                        aws_call(act.cutoff, "CreateTags", request.send()).await
                    }
                    None => Err(CallError::other("its listing gave no ARN to tag")),
                };
                marked.push((cluster.name(), result));
            }
            marked
        })
    }

    fn busy(&self, status: &str) -> String {
        format!("has status \"{status}\"; AWS pauses a cluster only when it is available")
    }
}

/// A listed cluster as a resource, if it carries the schedule tag.
fn resource(cluster: &Cluster, keys: &TagKeys, clients: &Clients) -> Option<Resource> {
    let tags = || cluster.tags().iter().map(|t| (t.key(), t.value()));
    let (id, schedule) = (cluster.cluster_identifier()?, tag(tags(), &keys.schedule)?);
    let state = state(cluster.cluster_status().unwrap_or_default());
    let mut resource = Resource::new(&Clusters, id, state, schedule).with_tags(tags(), keys);
    resource.arn = Some(clients.place.arn("redshift", &format!("cluster:{id}")));
    resource.units = vec![Unit::new(cluster.node_type(), cluster.number_of_nodes().unwrap_or(1))];
    resource.unstoppable = unpausable(cluster);
    Some(resource)
}

/// A cluster's ClusterStatus in the planner's terms.
fn state(status: &str) -> State {
    match status {
        "available" => State::Running,
        "paused" => State::Stopped,
        "resuming" => State::Starting,
        "pausing" => State::Stopping,
        other => State::Busy(other.to_owned()),
    }
}

/// Why PauseCluster would refuse this cluster, by its documentation ("Pausing and resuming clusters").
fn unpausable(cluster: &Cluster) -> Option<String> {
    // EC2-Classic clusters, which it excludes too, no longer exist: AWS retired EC2-Classic in 2023.
    if cluster.hsm_status().is_some() {
        return Some("uses a hardware security module (HSM); AWS can't pause HSM clusters".into());
    }
    if cluster.automated_snapshot_retention_period() == Some(0) {
        return Some(
            "has automated snapshots turned off (AutomatedSnapshotRetentionPeriod 0); AWS can't pause such a \
             cluster: give it a retention period of 1 day or more"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests;
