//! Databases and clusters against mocked answers: what moto can't give (global databases, Multi-AZ
//! SQL Server, Aurora Serverless v1).

use crate::request::Action;
use crate::testing::{self, Rules, KEY};
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
use aws_sdk_rds::operation::stop_db_cluster::StopDbClusterOutput;
use aws_sdk_rds::operation::stop_db_instance::StopDbInstanceOutput;
use aws_sdk_rds::types::{DbCluster, DbInstance, GlobalCluster, GlobalClusterMember, Tag as RdsTag};
use aws_smithy_mocks::mock;

use crate::testing::fixtures::*;

#[tokio::test]
async fn databases_aws_cannot_stop_are_skipped_with_the_reason() {
    let tag = || RdsTag::builder().key(KEY).value("office").build();
    let db = move |id: &str| {
        DbInstance::builder().db_instance_identifier(id).db_instance_status("available").tag_list(tag())
    };
    let instances = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
        DescribeDbInstancesOutput::builder()
            .db_instances(db("mysql").engine("mysql").multi_az(true).build())
            .db_instances(db("mssql").engine("sqlserver-se").multi_az(true).build())
            .db_instances(db("mssql-single").engine("sqlserver-ex").multi_az(false).build())
            .db_instances(db("primary").engine("mysql").read_replica_db_instance_identifiers("replica").build())
            .db_instances(db("replica").engine("mysql").read_replica_source_db_instance_identifier("primary").build())
            .build()
    });
    let cluster = move |id: &str| DbCluster::builder().db_cluster_identifier(id).status("available").tag_list(tag());
    let clusters = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(move || {
        DescribeDbClustersOutput::builder()
            .db_clusters(cluster("provisioned").engine_mode("provisioned").build())
            .db_clusters(cluster("v1").engine_mode("serverless").build())
            .db_clusters(cluster("global-2").engine_mode("provisioned").global_cluster_identifier("world").build())
            .db_clusters(cluster("global-1").engine_mode("provisioned").global_cluster_identifier("alone").build())
            .db_clusters(
                cluster("source")
                    .engine_mode("provisioned")
                    .read_replica_identifiers("arn:aws:rds:eu-west-2:123456789012:cluster:copy")
                    .build(),
            )
            .build()
    });
    let global = mock!(aws_sdk_rds::Client::describe_global_clusters).then_output(|| {
        let member = |arn: &str| GlobalClusterMember::builder().db_cluster_arn(arn).build();
        DescribeGlobalClustersOutput::builder()
            .global_clusters(
                GlobalCluster::builder()
                    .global_cluster_identifier("world")
                    .global_cluster_members(member("arn:aws:rds:eu-west-1:123456789012:cluster:global-2"))
                    .global_cluster_members(member("arn:aws:rds:us-east-1:123456789012:cluster:far"))
                    .build(),
            )
            .global_clusters(
                GlobalCluster::builder()
                    .global_cluster_identifier("alone")
                    .global_cluster_members(member("arn:aws:rds:eu-west-1:123456789012:cluster:global-1"))
                    .build(),
            )
            .build()
    });
    let stop_db = mock!(aws_sdk_rds::Client::stop_db_instance).then_output(|| StopDbInstanceOutput::builder().build());
    let stop_cluster =
        mock!(aws_sdk_rds::Client::stop_db_cluster).then_output(|| StopDbClusterOutput::builder().build());
    let clients = testing::clients(Rules {
        rds: vec![&instances, &clusters, &global, &stop_db, &stop_cluster],
        ..Default::default()
    });
    let summary = run_with(&clients, Action::Stop).await;
    assert_eq!(
        summary.stopped,
        ["rds-cluster/global-1", "rds-cluster/provisioned", "rds-instance/mssql-single", "rds-instance/mysql"],
        "{summary:?}"
    );
    assert!(summary.failed.is_empty(), "{summary:?}");
    assert!(reason(&summary, "rds-instance/mssql").contains("SQL Server in a Multi-AZ deployment"));
    assert!(reason(&summary, "rds-instance/primary").contains("has read replicas"));
    assert!(reason(&summary, "rds-instance/replica").contains("is a read replica of primary"));
    assert!(reason(&summary, "rds-cluster/v1").contains("Aurora Serverless v1"));
    assert!(reason(&summary, "rds-cluster/global-2").contains("one of 2 clusters of global database world"));
    assert!(reason(&summary, "rds-cluster/source").contains("has read replicas (arn:aws:rds:eu-west-2"));
    assert_eq!((stop_db.num_calls(), stop_cluster.num_calls()), (2, 2), "{:?}", reasons(&summary));
}

// Issue 21 item 5: DocumentDB and Neptune clusters come through RDS's DescribeDBClusters and stop with
// StopDBCluster, under the one documented form `rds-cluster/<id>`; their instances go with them.
#[tokio::test]
async fn documentdb_and_neptune_clusters_are_stopped_as_db_clusters_and_their_instances_held() {
    let tag = || RdsTag::builder().key(KEY).value("office").build();
    let cluster = move |id: &str, engine: &str| {
        DbCluster::builder().db_cluster_identifier(id).status("available").engine(engine).tag_list(tag()).build()
    };
    let clusters = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(move || {
        DescribeDbClustersOutput::builder()
            .db_clusters(cluster("docs", "docdb"))
            .db_clusters(cluster("graph", "neptune"))
            .build()
    });
    let instances = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
        let member = DbInstance::builder()
            .db_instance_identifier("docs-1")
            .db_instance_status("available")
            .engine("docdb")
            .db_cluster_identifier("docs")
            .tag_list(tag())
            .build();
        DescribeDbInstancesOutput::builder().db_instances(member).build()
    });
    let stop_cluster = mock!(aws_sdk_rds::Client::stop_db_cluster)
        .match_requests(|r| matches!(r.db_cluster_identifier(), Some("docs" | "graph")))
        .then_output(|| StopDbClusterOutput::builder().build());
    let clients = testing::clients(Rules { rds: vec![&clusters, &instances, &stop_cluster], ..Default::default() });
    let summary = run_with(&clients, Action::Stop).await;
    assert_eq!(summary.stopped, ["rds-cluster/docs", "rds-cluster/graph"], "{summary:?}");
    assert!(reason(&summary, "rds-instance/docs-1").contains("member of DB cluster docs"), "{summary:?}");
    assert_eq!(stop_cluster.num_calls(), 2);
}
