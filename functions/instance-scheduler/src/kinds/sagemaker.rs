//! SageMaker notebook instances carrying the schedule tag: StopNotebookInstance and
//! StartNotebookInstance (`InService` ↔ `Stopped`). ListNotebookInstances carries no tags, so each
//! notebook's come from ListTags, 8 calls at a time; `Pending`, `Updating` and the maintenance states
//! are busy, `Stopping` counts as where it leads, and a `Failed` notebook is skipped with the reason.
//! Marked with AddTags, one notebook ARN per call.

use aws_sdk_sagemaker::types::{NotebookInstanceStatus, NotebookInstanceSummary, Tag};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use stackhand::aws::{AwsError, AwsResultExt as _};

use super::kind::{tag, Act, Acted, Kind, Marked, Resource, State, Unit};
use crate::call::{aws_call, done, CallError};
use crate::clients::Clients;
use crate::direction::Direction;
use crate::settings::TagKeys;

/// ListTags calls in flight at once while listing.
const TAG_CONCURRENCY: usize = 8;

/// The kind: `sagemaker-notebook/<name>`.
pub struct Notebooks;

impl Kind for Notebooks {
    fn label(&self) -> &'static str {
        "sagemaker-notebook"
    }

    fn listing(&self) -> (&'static str, &'static str) {
        ("sagemaker-notebooks", "ListNotebookInstances")
    }

    fn list<'a>(&'a self, clients: &'a Clients, keys: &'a TagKeys) -> BoxFuture<'a, Result<Vec<Resource>, AwsError>> {
        Box::pin(notebooks(&clients.sagemaker, keys))
    }

    fn act<'a>(&'a self, act: Act<'a>, direction: Direction, batch: Vec<&'a Resource>) -> BoxFuture<'a, Acted> {
        Box::pin(async move {
            let (sagemaker, cutoff) = (&act.clients.sagemaker, act.cutoff);
            let mut acted = Vec::new();
            for notebook in batch {
                let name = &notebook.id;
                let result = match direction {
                    Direction::Start => {
                        let request = sagemaker.start_notebook_instance().notebook_instance_name(name);
                        aws_call(cutoff, "StartNotebookInstance", request.send()).await
                    }
                    Direction::Stop => {
                        let request = sagemaker.stop_notebook_instance().notebook_instance_name(name);
                        aws_call(cutoff, "StopNotebookInstance", request.send()).await
                    }
                };
                acted.push((notebook.name(), done(result)));
            }
            acted
        })
    }

    fn mark<'a>(&'a self, act: Act<'a>, key: &'a str, batch: Vec<(&'a Resource, String)>) -> BoxFuture<'a, Marked> {
        Box::pin(async move {
            let mut marked = Vec::new();
            for (notebook, value) in batch {
                let result = match &notebook.arn {
                    Some(arn) => {
                        let tag = Tag::builder().key(key).value(value).build();
                        let request = act.clients.sagemaker.add_tags().resource_arn(arn).tags(tag);
                        aws_call(act.cutoff, "AddTags", request.send()).await
                    }
                    None => Err(CallError::other("its listing gave no ARN to tag")),
                };
                marked.push((notebook.name(), result));
            }
            marked
        })
    }

    fn busy(&self, status: &str) -> String {
        format!("has status \"{status}\"; SageMaker stops a notebook instance only when it is InService")
    }
}

/// Every notebook instance carrying the schedule tag.
async fn notebooks(sagemaker: &aws_sdk_sagemaker::Client, keys: &TagKeys) -> Result<Vec<Resource>, AwsError> {
    let mut listed = Vec::new();
    let mut pages = sagemaker.list_notebook_instances().max_results(100).into_paginator().send();
    while let Some(page) = pages.next().await {
        listed.extend(page.op("ListNotebookInstances")?.notebook_instances().iter().cloned());
    }
    stream::iter(listed)
        .map(|notebook| async move {
            let Some(arn) = notebook.notebook_instance_arn() else { return Ok(None) };
            let mut tags = Vec::new();
            let mut pages = sagemaker.list_tags().resource_arn(arn).max_results(100).into_paginator().send();
            while let Some(page) = pages.next().await {
                tags.extend(page.op("ListTags")?.tags().iter().cloned());
            }
            Ok(resource(&notebook, &tags, keys))
        })
        .buffered(TAG_CONCURRENCY)
        .try_filter_map(|found| async move { Ok(found) })
        .try_collect()
        .await
}

/// A listed notebook with its tags as a resource, if it carries the schedule tag.
fn resource(notebook: &NotebookInstanceSummary, tags: &[Tag], keys: &TagKeys) -> Option<Resource> {
    let pairs = || tags.iter().map(|t| (t.key(), t.value()));
    let schedule = tag(pairs(), &keys.schedule)?;
    let name = notebook.notebook_instance_name()?;
    let status = notebook.notebook_instance_status();
    let state = match status {
        Some(NotebookInstanceStatus::InService) => State::Running,
        Some(NotebookInstanceStatus::Stopped) => State::Stopped,
        Some(NotebookInstanceStatus::Stopping) => State::Stopping,
        Some(other) => State::Busy(other.as_str().to_owned()),
        None => State::Busy("unknown".into()),
    };
    let mut resource = Resource::new(&Notebooks, name, state, schedule).with_tags(pairs(), keys);
    resource.arn = notebook.notebook_instance_arn().map(Into::into);
    resource.units = Unit::one(notebook.instance_type().map(|t| t.as_str()));
    if status == Some(&NotebookInstanceStatus::Failed) {
        resource.hold =
            Some("has status \"Failed\"; see its FailureReason (DescribeNotebookInstance), fix it or delete it".into());
    }
    Some(resource)
}

#[cfg(test)]
mod tests;
