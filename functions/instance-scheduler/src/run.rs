//! One run in one target: list every kind, decide for each resource, act in each kind's batches with
//! bounded concurrency, mark what was applied, and sum it up. Nothing here knows a kind: each is a
//! [`Kind`] of the registry ([`kinds::all`]). Per-resource trouble is reported and never stops the
//! run; the run fails only when nothing at all could be listed.

use std::collections::{HashMap, HashSet};

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use tokio::time::Instant;

use crate::call::{by_cutoff, Outcome};
use crate::clients::Clients;
use crate::direction::Direction;
use crate::kinds::{self, Act, Kind, Resource, State};
use crate::named::{named, Definer};
use crate::plan::{decide_transition, selected, Decision, Named};
use crate::request::Request;
use crate::settings::Settings;
use crate::summary::{Failed, Note, Skipped, Summary};

/// A run that evaluated nothing.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("nothing could be evaluated: {0}")]
    NothingListed(String),
}

/// What the jobs did: per resource, its name, which way it was moved, and how it went.
type Done = Vec<(String, Direction, Outcome)>;

/// One call's worth of work: a kind's batch of resources to move one way.
struct Job<'a> {
    kind: &'static dyn Kind,
    direction: Direction,
    batch: Vec<&'a Resource>,
}

/// Everything the plan needs from AWS.
struct Listed {
    /// The tagged resources the request selects.
    resources: Vec<Resource>,
    /// The listings that failed.
    failed: Vec<Failed>,
    named: Named,
}

/// What the run is to send, and what it decided without sending anything.
struct Plan<'a> {
    jobs: Vec<Job<'a>>,
    decided: Decided,
    /// The transitions to record on resources once their job, if any, is done.
    marks: Vec<(&'a Resource, String)>,
}

#[derive(Default)]
struct Decided {
    unchanged: usize,
    skipped: Vec<Skipped>,
    /// In a dry run, what would be started or stopped.
    would: Vec<(String, Direction)>,
}

/// One run: list, plan, execute, mark, summarize.
pub async fn run(
    clients: &Clients,
    definer: &Definer,
    settings: &Settings,
    request: &Request,
    cutoff: Instant,
) -> Result<Summary, RunError> {
    let listed = list(clients, definer, request, settings, cutoff).await?;
    let Plan { jobs, decided, marks } = plan(&listed.resources, request, settings, &listed.named);
    let act = Act { clients, settings, cutoff };
    let done = execute(act, jobs).await;
    let unmarked = mark(act, marks, &done).await;
    let muted = crate::alarms::apply(act, &listed.resources, &done).await;
    // Which way each resource the run moved went: started, stopped, or found already so.
    let moved: HashMap<String, Direction> = done
        .iter()
        .filter(|(_, _, outcome)| {
            matches!(outcome, Outcome::Done | Outcome::Noted(_) | Outcome::Fallback(_) | Outcome::Repeated(_))
        })
        .map(|(name, direction, _)| (name.clone(), *direction))
        .collect();
    let fleet = crate::fleet::count(&listed.resources, &moved);
    let mut summary = summarize(request, listed, decided, done);
    summary.fleet = fleet;
    summary.notes.extend(muted.notes);
    summary.failed.extend(muted.failed);
    // A marker refused for the tag limit is no failure of the run: the next run, seeing 50 tags, acts
    // only at transitions.
    let (limited, unmarked): (Vec<_>, Vec<_>) =
        unmarked.into_iter().partition(|f| f.error.contains("TagLimitExceeded"));
    summary.notes.extend(limited.into_iter().map(|f| Note {
        resource: f.resource,
        note: format!(
            "its {} marker could not be added: it has {} tags, AWS's limit; it is acted on only at transitions of \
             its schedule until a tag is removed",
            settings.keys.applied,
            crate::plan::TAG_LIMIT
        ),
    }));
    summary.failed.extend(unmarked);
    summary.sort();
    Ok(summary)
}

/// The tagged resources the request selects, and the named schedules if any of them names one. Fails
/// only when nothing at all could be listed.
async fn list(
    clients: &Clients,
    definer: &Definer,
    request: &Request,
    settings: &Settings,
    cutoff: Instant,
) -> Result<Listed, RunError> {
    let keys = &settings.keys;
    let kinds = kinds::all();
    // Every kind's listing at once; each ends at the cutoff: a page that hangs must not cost the run
    // its summary.
    let listings =
        join_all(kinds.iter().map(|kind| by_cutoff(cutoff, kind.listing().1, kind.list(clients, keys)))).await;
    let mut resources = Vec::new();
    let mut failed = Vec::new();
    for (kind, listed) in kinds.iter().zip(listings) {
        match listed {
            Ok(found) => resources.extend(found),
            Err(error) => {
                failed.push(Failed { resource: format!("{} (listing)", kind.listing().0), error: error.to_string() })
            }
        }
    }
    if failed.len() == kinds.len() {
        let errors: Vec<&str> = failed.iter().map(|f| f.error.as_str()).collect();
        return Err(RunError::NothingListed(errors.join("; ")));
    }
    resources.retain(|r| selected(r, request));
    let named = named(definer, request, &resources, cutoff).await;
    Ok(Listed { resources, failed, named })
}

/// Each resource's decision; what is to move goes in its kind's batches; a dry run sends nothing.
fn plan<'a>(resources: &'a [Resource], request: &Request, settings: &Settings, named: &Named) -> Plan<'a> {
    let mut decided = Decided::default();
    let mut marks = Vec::new();
    // Per kind of the registry, in its order: what to start and what to stop.
    let kinds = kinds::all();
    let mut moves: Vec<[Vec<&Resource>; 2]> = kinds.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    for resource in resources {
        let (decision, applies) = decide_transition(resource, request, &settings.keys, named, settings.interval);
        if let (Some(since), false) = (applies, request.dry_run) {
            // The direction applied: the decision's, or for a resource already in state, that state's.
            let direction = match decision {
                Decision::Stop => Direction::Stop,
                Decision::Start => Direction::Start,
                _ => Direction::towards(resource.state != State::Stopped),
            };
            marks.push((resource, crate::plan::marker(since, direction)));
        }
        let direction = match decision {
            Decision::Unchanged => {
                decided.unchanged += 1;
                continue;
            }
            Decision::Skip(reason) => {
                decided.skipped.push(Skipped { resource: resource.name(), reason });
                continue;
            }
            Decision::Start => Direction::Start,
            Decision::Stop => Direction::Stop,
        };
        if request.dry_run {
            decided.would.push((resource.name(), direction));
        } else if let Some(index) = kinds.iter().position(|k| *k == resource.kind) {
            moves[index][usize::from(direction == Direction::Stop)].push(resource);
        }
    }
    let mut jobs = Vec::new();
    for (kind, [starts, stops]) in kinds.iter().zip(moves) {
        for (direction, resources) in [(Direction::Start, starts), (Direction::Stop, stops)] {
            if resources.is_empty() {
                continue;
            }
            let batches = kind.batches(direction, resources, settings);
            jobs.extend(batches.into_iter().map(|batch| Job { kind: *kind, direction, batch }));
        }
    }
    Plan { jobs, decided, marks }
}

/// Runs the jobs, `settings.concurrency` at a time. A job not begun by the cutoff is not sent.
async fn execute(act: Act<'_>, jobs: Vec<Job<'_>>) -> Done {
    let done: Vec<Done> = stream::iter(jobs)
        .map(|Job { kind, direction, batch }| async move {
            let acted = if Instant::now() >= act.cutoff {
                let late = "not attempted: the invocation was about to time out; the next run picks it up";
                kinds::each(&batch, Outcome::Failed(late.into()))
            } else {
                kind.act(act, direction, batch).await
            };
            acted.into_iter().map(|(name, outcome)| (name, direction, outcome)).collect::<Done>()
        })
        .buffer_unordered(act.settings.concurrency.max(1))
        .collect()
        .await;
    done.into_iter().flatten().collect()
}

/// Records on each resource of `marks` the transition this run applied to it, unless its start or stop
/// did not get done (then the next run tries again). A marker that could not be written is reported
/// with its resource; the start or stop stands, and the next run applies the schedule again.
async fn mark(act: Act<'_>, marks: Vec<(&Resource, String)>, done: &Done) -> Vec<Failed> {
    let undone: HashSet<&str> =
        done.iter().filter(|(_, _, outcome)| !outcome.applied()).map(|(name, _, _)| name.as_str()).collect();
    let kinds = kinds::all();
    let mut by_kind: Vec<Vec<(&Resource, String)>> = kinds.iter().map(|_| Vec::new()).collect();
    for (resource, value) in marks {
        if undone.contains(resource.name().as_str()) {
            continue;
        }
        if let Some(index) = kinds.iter().position(|k| *k == resource.kind) {
            by_kind[index].push((resource, value));
        }
    }
    let key = act.settings.keys.applied.as_str();
    let jobs = kinds
        .iter()
        .zip(by_kind)
        .flat_map(|(kind, marks)| kind.mark_batches(marks, act.settings).into_iter().map(move |batch| (*kind, batch)));
    let failed: Vec<Vec<Failed>> = stream::iter(jobs)
        .map(|(kind, batch)| async move {
            let written = kind.mark(act, key, batch).await;
            let failed = written.into_iter().filter_map(|(resource, result)| result.err().map(|e| (resource, e)));
            failed
                .map(|(resource, e)| Failed {
                    resource,
                    error: format!(
                        "{e}; its {key} tag was not written, so the next run applies the schedule to it again"
                    ),
                })
                .collect()
        })
        .buffer_unordered(act.settings.concurrency.max(1))
        .collect()
        .await;
    failed.into_iter().flatten().collect()
}

/// The summary: what the listing, the plan and the jobs each reported.
fn summarize(request: &Request, listed: Listed, decided: Decided, done: Done) -> Summary {
    let mut summary = Summary {
        skipped: decided.skipped,
        failed: listed.failed,
        unchanged: decided.unchanged,
        ..Summary::of(request)
    };
    for (name, direction) in decided.would {
        summary.moved(direction).push(name);
    }
    for (name, direction, outcome) in done {
        match outcome {
            Outcome::Done => summary.moved(direction).push(name),
            Outcome::Noted(note) | Outcome::Fallback(note) => {
                summary.notes.push(Note { resource: name.clone(), note });
                summary.moved(direction).push(name);
            }
            Outcome::Repeated(error) | Outcome::Failed(error) => summary.failed.push(Failed { resource: name, error }),
            Outcome::Skipped(reason) => summary.skipped.push(Skipped { resource: name, reason }),
            Outcome::Deferred => summary.deferred.push(name),
        }
    }
    summary.sort();
    summary
}

#[cfg(test)]
mod tests;
