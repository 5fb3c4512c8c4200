//! EKS node groups against mocked answers: moto accepts a maxSize of 0 (EKS rejects it) and can't tag
//! node groups, so EKS's behaviour is modeled here.

use aws_sdk_eks::operation::describe_nodegroup::DescribeNodegroupOutput;
use aws_sdk_eks::operation::list_clusters::ListClustersOutput;
use aws_sdk_eks::operation::list_nodegroups::ListNodegroupsOutput;
use aws_sdk_eks::operation::tag_resource::TagResourceOutput;
use aws_sdk_eks::operation::untag_resource::UntagResourceOutput;
use aws_sdk_eks::operation::update_nodegroup_config::{UpdateNodegroupConfigError, UpdateNodegroupConfigOutput};
use aws_sdk_eks::types::{Nodegroup, NodegroupScalingConfig, NodegroupStatus};
use aws_smithy_mocks::{mock, MockResponse, Rule};

use crate::request::Action;
use crate::testing::fixtures::{reason, run_with};
use crate::testing::{self, error_meta, Rules, KEY, SAVED};

fn arn(name: &str) -> String {
    format!("arn:aws:eks:eu-west-1:123456789012:nodegroup/dev/{name}/0123")
}

fn group(name: &str, (min, max, desired): (i32, i32, i32), status: NodegroupStatus, saved: Option<&str>) -> Nodegroup {
    let mut group = Nodegroup::builder()
        .cluster_name("dev")
        .nodegroup_name(name)
        .nodegroup_arn(arn(name))
        .status(status)
        .scaling_config(NodegroupScalingConfig::builder().min_size(min).max_size(max).desired_size(desired).build())
        .tags(KEY, "office");
    if let Some(saved) = saved {
        group = group.tags(SAVED, saved);
    }
    group.build()
}

/// ListClusters (one cluster, `dev`), ListNodegroups and DescribeNodegroup answering for each group.
fn listing(groups: Vec<Nodegroup>) -> [Rule; 3] {
    let names: Vec<String> = groups.iter().filter_map(|g| g.nodegroup_name().map(Into::into)).collect();
    [
        mock!(aws_sdk_eks::Client::list_clusters).then_output(|| ListClustersOutput::builder().clusters("dev").build()),
        mock!(aws_sdk_eks::Client::list_nodegroups)
            .match_requests(|r| r.cluster_name() == Some("dev"))
            .then_output(move || ListNodegroupsOutput::builder().set_nodegroups(Some(names.clone())).build()),
        mock!(aws_sdk_eks::Client::describe_nodegroup).then_compute_output(move |r| {
            let found = groups.iter().find(|g| g.nodegroup_name() == r.nodegroup_name()).cloned();
            DescribeNodegroupOutput::builder().set_nodegroup(found).build()
        }),
    ]
}

type Resized = std::sync::Arc<std::sync::Mutex<Vec<(String, i32, i32, i32)>>>;

/// UpdateNodegroupConfig as EKS answers it: a maximum below 1 is refused; every request kept.
fn updating() -> (Rule, Resized) {
    let sent = Resized::default();
    let seen = std::sync::Arc::clone(&sent);
    let rule = mock!(aws_sdk_eks::Client::update_nodegroup_config).then_compute_response(move |r| {
        let c = r.scaling_config().expect("a scaling config");
        let (min, max, desired) = (c.min_size().unwrap(), c.max_size().unwrap(), c.desired_size().unwrap());
        seen.lock().unwrap().push((r.nodegroup_name().unwrap().to_owned(), min, max, desired));
        if max < 1 {
            let meta = error_meta("InvalidParameterException", "Requested max capacity can't be less than 1");
            return MockResponse::Error(UpdateNodegroupConfigError::generic(meta));
        }
        MockResponse::Output(UpdateNodegroupConfigOutput::builder().build())
    });
    (rule, sent)
}

#[tokio::test]
async fn a_stop_saves_the_capacity_then_sets_min_and_desired_to_zero_keeping_the_maximum() {
    let list = listing(vec![
        group("web", (1, 3, 2), NodegroupStatus::Active, None),
        group("updating", (1, 3, 2), NodegroupStatus::Updating, None),
        group("stopped", (0, 3, 0), NodegroupStatus::Active, Some("min=1 max=3 desired=1")),
        group("empty", (0, 1, 0), NodegroupStatus::Active, None),
    ]);
    let saved = mock!(aws_sdk_eks::Client::tag_resource)
        .match_requests(|r| {
            r.resource_arn() == Some(arn("web").as_str())
                && r.tags()
                    .is_some_and(|t| t.len() == 1 && t.get(SAVED).map(String::as_str) == Some("min=1 max=3 desired=2"))
        })
        .then_output(|| TagResourceOutput::builder().build());
    let (resize, sent) = updating();
    let [a, b, c] = &list;
    let clients = testing::clients(Rules { eks: vec![a, b, c, &saved, &resize], ..Default::default() });
    let summary = run_with(&clients, Action::Stop).await;
    assert_eq!(summary.stopped, ["eks-nodegroup/dev/web"], "{summary:?}");
    assert!(summary.failed.is_empty(), "{summary:?}");
    assert_eq!(summary.unchanged, 1, "the stopped one: {summary:?}");
    assert_eq!(saved.num_calls(), 1);
    assert_eq!(*sent.lock().unwrap(), [("web".to_owned(), 0, 3, 0)], "max kept: EKS rejects a maximum below 1");
    assert_eq!(
        reason(&summary, "eks-nodegroup/dev/updating"),
        "has status \"UPDATING\"; EKS changes a node group's size only when it is ACTIVE"
    );
    assert!(reason(&summary, "eks-nodegroup/dev/empty").contains("taken as stopped"), "{summary:?}");
}

#[tokio::test]
async fn a_start_restores_the_saved_capacity_and_removes_the_tag_and_a_bad_one_starts_nothing() {
    let list = listing(vec![
        group("web", (0, 3, 0), NodegroupStatus::Active, Some("min=1 max=3 desired=2")),
        group("huge", (0, 3, 0), NodegroupStatus::Active, Some("min=0 max=900 desired=900")),
    ]);
    let (resize, sent) = updating();
    let untag = mock!(aws_sdk_eks::Client::untag_resource)
        .match_requests(|r| r.resource_arn() == Some(arn("web").as_str()) && r.tag_keys() == [SAVED])
        .then_output(|| UntagResourceOutput::builder().build());
    let [a, b, c] = &list;
    let clients = testing::clients(Rules { eks: vec![a, b, c, &resize, &untag], ..Default::default() });
    let summary = run_with(&clients, Action::Start).await;
    assert_eq!(summary.started, ["eks-nodegroup/dev/web"], "{summary:?}");
    assert_eq!(*sent.lock().unwrap(), [("web".to_owned(), 1, 3, 2)]);
    assert_eq!(untag.num_calls(), 1);
    let why = reason(&summary, "eks-nodegroup/dev/huge");
    assert!(why.contains("SCHEDULER_MAX_RESTORED_CAPACITY") && why.contains("nothing was started"), "{why}");
}

#[test]
fn a_node_group_counts_its_desired_nodes_of_its_first_type_a_stopped_one_what_it_saved() {
    let typed = |mut g: Nodegroup| {
        g.instance_types = Some(vec!["m5.large".into(), "m5a.large".into()]);
        g
    };
    let running = super::resource(&typed(group("web", (1, 4, 3), NodegroupStatus::Active, None)), &testing::keys());
    let units = running.unwrap().units;
    assert_eq!((units[0].type_name.as_str(), units[0].count), ("m5.large", 3));
    let saved = Some("min=1 max=4 desired=2");
    let stopped = super::resource(&typed(group("web", (0, 4, 0), NodegroupStatus::Active, saved)), &testing::keys());
    assert_eq!(stopped.unwrap().units[0].count, 2, "stopped, it counts what a start brings back");
}
