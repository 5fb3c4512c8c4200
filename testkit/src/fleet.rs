//! Seeding what the instance scheduler acts on, in moto: RDS DB instances and clusters, Auto Scaling
//! groups, and reading their states back.

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as AsgTag};
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use aws_sdk_rds::types::Tag as RdsTag;

use crate::local::MARIADB_PASSWORD;

fn rds_tags(tags: &[(&str, &str)]) -> Vec<RdsTag> {
    tags.iter().map(|(k, v)| RdsTag::builder().key(*k).value(*v).build()).collect()
}

/// A MySQL DB instance, or (with `cluster`) a member instance of that Aurora cluster.
pub async fn db_instance(rds: &aws_sdk_rds::Client, id: &str, cluster: Option<&str>, tags: &[(&str, &str)]) {
    let mut req = rds
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.medium")
        .set_tags(Some(rds_tags(tags)));
    req = match cluster {
        Some(cluster) => req.engine("aurora-mysql").db_cluster_identifier(cluster),
        None => {
            req.engine("mysql").allocated_storage(20).master_username("admin").master_user_password(MARIADB_PASSWORD)
        }
    };
    req.send().await.expect("CreateDBInstance");
}

/// An Aurora MySQL cluster (add members with [`db_instance`]).
pub async fn db_cluster(rds: &aws_sdk_rds::Client, id: &str, tags: &[(&str, &str)]) {
    rds.create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-mysql")
        .master_username("admin")
        .master_user_password(MARIADB_PASSWORD)
        .set_tags(Some(rds_tags(tags)))
        .send()
        .await
        .expect("CreateDBCluster");
}

pub async fn db_instance_status(rds: &aws_sdk_rds::Client, id: &str) -> String {
    let out = rds.describe_db_instances().db_instance_identifier(id).send().await.expect("DescribeDBInstances");
    out.db_instances()[0].db_instance_status().unwrap_or_default().to_owned()
}

pub async fn db_cluster_status(rds: &aws_sdk_rds::Client, id: &str) -> String {
    let out = rds.describe_db_clusters().db_cluster_identifier(id).send().await.expect("DescribeDBClusters");
    out.db_clusters()[0].status().unwrap_or_default().to_owned()
}

/// An Auto Scaling group of (min, max, desired) in `subnet` from a new launch template, its tags
/// propagated to its instances as usual.
pub async fn auto_scaling_group(
    autoscaling: &aws_sdk_autoscaling::Client,
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    subnet: &str,
    (min, max, desired): (i32, i32, i32),
    tags: &[(&str, &str)],
) {
    let image = ec2.describe_images().owners("amazon").send().await.expect("DescribeImages");
    let image = image.images().first().and_then(|i| i.image_id()).expect("an image").to_owned();
    let template = format!("{name}-lt");
    ec2.create_launch_template()
        .launch_template_name(&template)
        .launch_template_data(
            RequestLaunchTemplateData::builder().image_id(image).instance_type("t3.micro".into()).build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    let tags = tags
        .iter()
        .map(|(k, v)| {
            AsgTag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(*k)
                .value(*v)
                .propagate_at_launch(true)
                .build()
        })
        .collect();
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(LaunchTemplateSpecification::builder().launch_template_name(template).build())
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .vpc_zone_identifier(subnet)
        .set_tags(Some(tags))
        .send()
        .await
        .expect("CreateAutoScalingGroup");
}

/// A group's (min, max, desired) and its tags.
pub async fn group(autoscaling: &aws_sdk_autoscaling::Client, name: &str) -> ((i32, i32, i32), Vec<(String, String)>) {
    let out = autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    let g = &out.auto_scaling_groups()[0];
    let tags = g.tags().iter().map(|t| (t.key().unwrap_or_default().into(), t.value().unwrap_or_default().into()));
    ((g.min_size().unwrap_or(-1), g.max_size().unwrap_or(-1), g.desired_capacity().unwrap_or(-1)), tags.collect())
}

/// The state name of each of `ids` (`running`, `stopped`, …), in order.
pub async fn instance_states(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Vec<String> {
    let mut states = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let mut pages = ec2.describe_instances().set_instance_ids(Some(chunk.to_vec())).into_paginator().send();
        while let Some(page) = pages.next().await {
            for i in page.expect("DescribeInstances").reservations().iter().flat_map(|r| r.instances()) {
                let state = i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()).unwrap_or_default();
                states.insert(i.instance_id().unwrap_or_default().to_owned(), state);
            }
        }
    }
    ids.iter().map(|id| states.get(id).cloned().unwrap_or_default()).collect()
}
