//! SageMaker notebook instances against mocked answers: the statuses moto does not model.

use aws_sdk_sagemaker::operation::list_notebook_instances::ListNotebookInstancesOutput;
use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
use aws_sdk_sagemaker::operation::start_notebook_instance::StartNotebookInstanceOutput;
use aws_sdk_sagemaker::operation::stop_notebook_instance::StopNotebookInstanceOutput;
use aws_sdk_sagemaker::types::{NotebookInstanceStatus, NotebookInstanceSummary, Tag};
use aws_smithy_mocks::{mock, Rule};

use crate::request::Action;
use crate::testing::fixtures::{reason, run_with};
use crate::testing::{self, Rules, KEY};

fn arn(name: &str) -> String {
    format!("arn:aws:sagemaker:eu-west-1:123456789012:notebook-instance/{name}")
}

/// ListNotebookInstances with `(name, status)`, and ListTags giving each the schedule tag unless its
/// name starts with `untagged`.
fn listing(notebooks: &[(&str, NotebookInstanceStatus)]) -> [Rule; 2] {
    let summaries: Vec<NotebookInstanceSummary> = notebooks
        .iter()
        .map(|(name, status)| {
            NotebookInstanceSummary::builder()
                .notebook_instance_name(*name)
                .notebook_instance_arn(arn(name))
                .notebook_instance_status(status.clone())
                .build()
        })
        .collect();
    [
        mock!(aws_sdk_sagemaker::Client::list_notebook_instances).then_output(move || {
            ListNotebookInstancesOutput::builder().set_notebook_instances(Some(summaries.clone())).build()
        }),
        mock!(aws_sdk_sagemaker::Client::list_tags).then_compute_output(|r| {
            let arn = r.resource_arn().unwrap_or_default();
            let mut out = ListTagsOutput::builder();
            if !arn.contains("/untagged") {
                out = out.tags(Tag::builder().key(KEY).value("office").build());
            }
            out.build()
        }),
    ]
}

#[tokio::test]
async fn a_stop_stops_notebooks_in_service_and_skips_busy_and_failed_ones_with_the_reason() {
    let list = listing(&[
        ("lab", NotebookInstanceStatus::InService),
        ("off", NotebookInstanceStatus::Stopped),
        ("waking", NotebookInstanceStatus::Pending),
        ("changing", NotebookInstanceStatus::Updating),
        ("broken", NotebookInstanceStatus::Failed),
        ("untagged-one", NotebookInstanceStatus::InService),
    ]);
    let stop = mock!(aws_sdk_sagemaker::Client::stop_notebook_instance)
        .match_requests(|r| r.notebook_instance_name() == Some("lab"))
        .then_output(|| StopNotebookInstanceOutput::builder().build());
    let [a, b] = &list;
    let clients = testing::clients(Rules { sagemaker: vec![a, b, &stop], ..Default::default() });
    let summary = run_with(&clients, Action::Stop).await;
    assert_eq!(summary.stopped, ["sagemaker-notebook/lab"], "{summary:?}");
    assert_eq!(summary.unchanged, 1, "the stopped one");
    assert_eq!(stop.num_calls(), 1);
    assert_eq!(b.num_calls(), 6, "one ListTags per notebook: the listing carries none");
    assert_eq!(
        reason(&summary, "sagemaker-notebook/waking"),
        "has status \"Pending\"; SageMaker stops a notebook instance only when it is InService"
    );
    assert!(reason(&summary, "sagemaker-notebook/changing").contains("\"Updating\""), "{summary:?}");
    assert!(reason(&summary, "sagemaker-notebook/broken").contains("FailureReason"), "{summary:?}");
    assert!(!format!("{summary:?}").contains("untagged-one"), "untagged: not listed");
    assert!(summary.failed.is_empty(), "{summary:?}");
}

#[tokio::test]
async fn a_start_starts_stopped_notebooks_and_one_stopping_waits() {
    let list = listing(&[("lab", NotebookInstanceStatus::Stopped), ("going", NotebookInstanceStatus::Stopping)]);
    let start = mock!(aws_sdk_sagemaker::Client::start_notebook_instance)
        .match_requests(|r| r.notebook_instance_name() == Some("lab"))
        .then_output(|| StartNotebookInstanceOutput::builder().build());
    let [a, b] = &list;
    let clients = testing::clients(Rules { sagemaker: vec![a, b, &start], ..Default::default() });
    let summary = run_with(&clients, Action::Start).await;
    assert_eq!(summary.started, ["sagemaker-notebook/lab"], "{summary:?}");
    assert_eq!(reason(&summary, "sagemaker-notebook/going"), "is stopping; it can be started once it has stopped");
}
