//! RDS DB instances and DB clusters (Aurora, and the DocumentDB and Neptune clusters RDS's API also
//! lists) carrying the schedule tag. Listed with DescribeDBInstances and DescribeDBClusters (100 a page,
//! tags included), plus DescribeGlobalClusters only for clusters in a global database. What AWS refuses
//! to stop (read replicas, Multi-AZ SQL Server, Aurora Serverless v1, …) is known from the listing and
//! skipped with the reason. One call per resource to start or stop, one AddTagsToResource per marker.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use stackhand::aws::{AwsError, AwsResultExt as _};
use tokio::time::Instant;

use super::kind::{tag, Act, Acted, Kind, Marked, Resource, State, Unit};
use crate::call::{aws_call, done, CallError};
use crate::clients::Clients;
use crate::direction::Direction;
use crate::settings::TagKeys;

/// AWS starts a database that has been stopped for 7 days by itself.
const RESTART: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// The kind: `rds-instance/<identifier>`.
pub struct Instances;

/// The kind: `rds-cluster/<identifier>`.
pub struct Clusters;

impl Kind for Instances {
    fn label(&self) -> &'static str {
        "rds-instance"
    }

    fn listing(&self) -> (&'static str, &'static str) {
        ("rds-instances", "DescribeDBInstances")
    }

    fn list<'a>(&'a self, clients: &'a Clients, keys: &'a TagKeys) -> BoxFuture<'a, Result<Vec<Resource>, AwsError>> {
        Box::pin(db_instances(&clients.rds, keys))
    }

    fn act<'a>(&'a self, act: Act<'a>, direction: Direction, batch: Vec<&'a Resource>) -> BoxFuture<'a, Acted> {
        Box::pin(async move {
            let mut acted = Vec::new();
            for resource in batch {
                let (rds, id, cutoff) = (&act.clients.rds, &resource.id, act.cutoff);
                let result = match direction {
                    Direction::Start => {
                        aws_call(cutoff, "StartDBInstance", rds.start_db_instance().db_instance_identifier(id).send())
                            .await
                    }
                    Direction::Stop => {
                        aws_call(cutoff, "StopDBInstance", rds.stop_db_instance().db_instance_identifier(id).send())
                            .await
                    }
                };
                acted.push((resource.name(), done(result)));
            }
            acted
        })
    }

    fn alarm_dimensions(&self, resource: &Resource) -> Vec<(&'static str, String)> {
        vec![("DBInstanceIdentifier", resource.id.clone())]
    }

    fn mark<'a>(&'a self, act: Act<'a>, key: &'a str, batch: Vec<(&'a Resource, String)>) -> BoxFuture<'a, Marked> {
        Box::pin(mark(act, key, batch))
    }

    fn restarts_after(&self) -> Option<chrono::TimeDelta> {
        Some(RESTART)
    }
}

impl Kind for Clusters {
    fn label(&self) -> &'static str {
        "rds-cluster"
    }

    fn listing(&self) -> (&'static str, &'static str) {
        ("rds-clusters", "DescribeDBClusters")
    }

    fn list<'a>(&'a self, clients: &'a Clients, keys: &'a TagKeys) -> BoxFuture<'a, Result<Vec<Resource>, AwsError>> {
        Box::pin(db_clusters(&clients.rds, keys))
    }

    fn act<'a>(&'a self, act: Act<'a>, direction: Direction, batch: Vec<&'a Resource>) -> BoxFuture<'a, Acted> {
        Box::pin(async move {
            let mut acted = Vec::new();
            for resource in batch {
                let (rds, id, cutoff) = (&act.clients.rds, &resource.id, act.cutoff);
                let result = match direction {
                    Direction::Start => {
                        aws_call(cutoff, "StartDBCluster", rds.start_db_cluster().db_cluster_identifier(id).send())
                            .await
                    }
                    Direction::Stop => {
                        aws_call(cutoff, "StopDBCluster", rds.stop_db_cluster().db_cluster_identifier(id).send()).await
                    }
                };
                acted.push((resource.name(), done(result)));
            }
            acted
        })
    }

    fn alarm_dimensions(&self, resource: &Resource) -> Vec<(&'static str, String)> {
        vec![("DBClusterIdentifier", resource.id.clone())]
    }

    fn mark<'a>(&'a self, act: Act<'a>, key: &'a str, batch: Vec<(&'a Resource, String)>) -> BoxFuture<'a, Marked> {
        Box::pin(mark(act, key, batch))
    }

    fn restarts_after(&self) -> Option<chrono::TimeDelta> {
        Some(RESTART)
    }
}

/// Each database's or cluster's marker: AddTagsToResource takes one ARN.
async fn mark<'a>(act: Act<'a>, key: &'a str, batch: Vec<(&'a Resource, String)>) -> Marked {
    let mut marked = Vec::new();
    for (resource, value) in batch {
        let result = match &resource.arn {
            Some(arn) => tag_database(&act.clients.rds, key, arn, &value, act.cutoff).await,
            None => Err(CallError::other("its listing gave no ARN to tag")),
        };
        marked.push((resource.name(), result));
    }
    marked
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

async fn db_instances(rds: &aws_sdk_rds::Client, keys: &TagKeys) -> Result<Vec<Resource>, AwsError> {
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
            let mut resource = Resource::new(&Instances, id, state, schedule).with_tags(tags(), keys);
            resource.arn = db.db_instance_arn().map(Into::into);
            // A Multi-AZ instance deployment is a primary and a standby: two instances billed.
            let instances = if db.multi_az() == Some(true) { 2u64 } else { 1 };
            resource.units = vec![Unit::new(db.db_instance_class(), instances)];
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

async fn db_clusters(rds: &aws_sdk_rds::Client, keys: &TagKeys) -> Result<Vec<Resource>, AwsError> {
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
            let mut resource = Resource::new(&Clusters, id, state, schedule).with_tags(tags(), keys);
            resource.arn = cluster.db_cluster_arn().map(Into::into);
            // Until its members' classes are read (below): its members, of the class a Multi-AZ DB
            // cluster states for all of them.
            let members = cluster.db_cluster_members().len().max(1);
            resource.units = vec![Unit::new(cluster.db_cluster_instance_class(), members)];
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
    let ids: Vec<String> = found.iter().map(|r| r.id.clone()).collect();
    match member_classes(rds, &ids).await {
        Ok(mut classes) => {
            for cluster in &mut found {
                if let Some(units) = classes.remove(&cluster.id) {
                    cluster.units = units;
                }
            }
        }
        // Only the savings metrics lose detail: the members count as of the cluster's class.
        Err(e) => tracing::warn!(error = %e, "can't read the classes of the DB clusters' instances"),
    }
    Ok(found)
}

/// The instances of each of the DB clusters `ids`, by class: an Aurora cluster runs (and bills) its
/// members, each of its own class. One DescribeDBInstances per 100 clusters, filtered on
/// `db-cluster-id`.
async fn member_classes(rds: &aws_sdk_rds::Client, ids: &[String]) -> Result<HashMap<String, Vec<Unit>>, AwsError> {
    let mut classes: HashMap<String, Vec<Unit>> = HashMap::new();
    for chunk in ids.chunks(100) {
        let filter =
            aws_sdk_rds::types::Filter::builder().name("db-cluster-id").set_values(Some(chunk.to_vec())).build();
        let mut pages = rds.describe_db_instances().filters(filter).max_records(100).into_paginator().send();
        while let Some(page) = pages.next().await {
            for db in page.op("DescribeDBInstances")?.db_instances() {
                let Some(cluster) = db.db_cluster_identifier() else { continue };
                let units = classes.entry(cluster.to_owned()).or_default();
                let member = Unit::new(db.db_instance_class(), 1u64);
                match units.iter_mut().find(|u| u.type_name == member.type_name) {
                    Some(unit) => unit.count += 1,
                    None => units.push(member),
                }
            }
        }
    }
    Ok(classes)
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

/// Writes the tag `key` = `value` on the database or cluster `arn` (AddTagsToResource takes one).
async fn tag_database(
    rds: &aws_sdk_rds::Client,
    key: &str,
    arn: &str,
    value: &str,
    cutoff: Instant,
) -> Result<(), CallError> {
    let tag = aws_sdk_rds::types::Tag::builder().key(key).value(value).build();
    let request = rds.add_tags_to_resource().resource_name(arn).tags(tag);
    aws_call(cutoff, "AddTagsToResource", request.send()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_statuses() {
        assert_eq!(rds_state("available"), State::Running);
        assert_eq!(rds_state("stopped"), State::Stopped);
        assert_eq!(rds_state("starting"), State::Starting);
        assert_eq!(rds_state("stopping"), State::Stopping);
        assert_eq!(rds_state("backing-up"), State::Busy("backing-up".into()));
    }
}

#[cfg(test)]
mod mocked;
