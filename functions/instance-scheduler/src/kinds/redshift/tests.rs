//! Redshift clusters against mocked answers: the statuses and documented exclusions moto does not
//! model (it pauses any cluster, whatever its state).

use aws_sdk_redshift::operation::create_tags::CreateTagsOutput;
use aws_sdk_redshift::operation::describe_clusters::DescribeClustersOutput;
use aws_sdk_redshift::operation::pause_cluster::{PauseClusterError, PauseClusterOutput};
use aws_sdk_redshift::operation::resume_cluster::ResumeClusterOutput;
use aws_sdk_redshift::types::{Cluster, HsmStatus, Tag};
use aws_smithy_mocks::{mock, Rule};

use crate::request::Action;
use crate::testing::fixtures::{reason, run_with};
use crate::testing::{self, error_meta, Rules, KEY};

fn cluster(id: &str, status: &str) -> aws_sdk_redshift::types::builders::ClusterBuilder {
    Cluster::builder()
        .cluster_identifier(id)
        .cluster_status(status)
        .automated_snapshot_retention_period(1)
        .tags(Tag::builder().key(KEY).value("office").build())
}

fn listing(clusters: Vec<Cluster>) -> Rule {
    mock!(aws_sdk_redshift::Client::describe_clusters)
        .match_requests(|r| r.tag_keys() == [KEY])
        .then_output(move || DescribeClustersOutput::builder().set_clusters(Some(clusters.clone())).build())
}

#[tokio::test]
async fn a_stop_pauses_available_clusters_and_skips_what_aws_would_refuse_with_the_reason() {
    let list = listing(vec![
        cluster("dw", "available").build(),
        cluster("asleep", "paused").build(),
        cluster("resizing", "resizing").build(),
        cluster("hsm", "available").hsm_status(HsmStatus::builder().status("active").build()).build(),
        cluster("nosnap", "available").automated_snapshot_retention_period(0).build(),
    ]);
    let pause = mock!(aws_sdk_redshift::Client::pause_cluster)
        .match_requests(|r| r.cluster_identifier() == Some("dw"))
        .then_output(|| PauseClusterOutput::builder().build());
    let clients = testing::clients(Rules { redshift: vec![&list, &pause], ..Default::default() });
    let summary = run_with(&clients, Action::Stop).await;
    assert_eq!(summary.stopped, ["redshift-cluster/dw"], "{summary:?}");
    assert_eq!(summary.unchanged, 1, "the paused one");
    assert_eq!(pause.num_calls(), 1);
    assert_eq!(
        reason(&summary, "redshift-cluster/resizing"),
        "has status \"resizing\"; AWS pauses a cluster only when it is available"
    );
    assert!(reason(&summary, "redshift-cluster/hsm").contains("HSM"), "{summary:?}");
    assert!(reason(&summary, "redshift-cluster/nosnap").contains("automated snapshots turned off"), "{summary:?}");
    assert!(summary.failed.is_empty(), "{summary:?}");
}

#[tokio::test]
async fn a_start_resumes_paused_clusters_and_a_wrong_state_answer_is_a_skip() {
    let list = listing(vec![cluster("dw", "paused").build(), cluster("waking", "resuming").build()]);
    let resume = mock!(aws_sdk_redshift::Client::resume_cluster).then_output(|| ResumeClusterOutput::builder().build());
    let clients = testing::clients(Rules { redshift: vec![&list, &resume], ..Default::default() });
    let summary = run_with(&clients, Action::Start).await;
    assert_eq!(summary.started, ["redshift-cluster/dw"], "{summary:?}");
    assert_eq!(summary.unchanged, 1, "resuming counts as where it leads");

    // A cluster that changed state since the listing: AWS's InvalidClusterState is a skip, not a failure.
    let list = listing(vec![cluster("dw", "available").build()]);
    let refused = mock!(aws_sdk_redshift::Client::pause_cluster).then_error(|| {
        PauseClusterError::generic(error_meta(
            "InvalidClusterState",
            "The specified cluster is not in the available state.",
        ))
    });
    let clients = testing::clients(Rules { redshift: vec![&list, &refused], ..Default::default() });
    let summary = run_with(&clients, Action::Stop).await;
    assert!(summary.failed.is_empty(), "{summary:?}");
    assert!(reason(&summary, "redshift-cluster/dw").contains("InvalidClusterState"), "{summary:?}");
}

#[tokio::test]
async fn a_reconcile_marks_the_cluster_by_its_arn_with_the_marker_key_only() {
    let list = listing(vec![cluster("dw", "available")
        .set_tags(Some(vec![Tag::builder().key(KEY).value("Mon-Fri 08:00-19:00 UTC").build()]))
        .build()]);
    let pause = mock!(aws_sdk_redshift::Client::pause_cluster).then_output(|| PauseClusterOutput::builder().build());
    let tagged = mock!(aws_sdk_redshift::Client::create_tags)
        .match_requests(|r| {
            r.resource_name() == Some("arn:aws:redshift:eu-west-1:123456789012:cluster:dw")
                && r.tags().len() == 1
                && r.tags()[0].key() == Some(crate::settings::SCHEDULE_APPLIED_TAG)
                && r.tags()[0].value() == Some("2026-11-23T19:00:00Z stop")
        })
        .then_output(|| CreateTagsOutput::builder().build());
    let clients = testing::clients(Rules { redshift: vec![&list, &pause, &tagged], ..Default::default() });
    let mut request = testing::request(Action::Reconcile);
    request.at = "2026-11-23T21:00:00Z".parse().unwrap();
    let cutoff = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    let summary = crate::run::run(&clients, &testing::no_definitions(), &testing::settings(), &request, cutoff)
        .await
        .expect("a summary");
    assert_eq!(summary.stopped, ["redshift-cluster/dw"], "{summary:?}");
    assert!(summary.failed.is_empty(), "{summary:?}");
    assert_eq!((pause.num_calls(), tagged.num_calls()), (1, 1));
}
