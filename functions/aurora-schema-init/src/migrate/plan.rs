//! Where each migration starts, from the history: skipped when applied and unchanged, resumed after
//! an unchanged prefix, refused when applied SQL changed, a new migration would run out of order, or a
//! statement's outcome is unknown.

use std::time::Duration;

use super::history::{Applied, InFlight};
use super::prepare::Prepared;
use super::sql::{excerpt, quoted};
use crate::error::Interruption;
use crate::SchemaError;

/// The leading decimal number of a migration name, without leading zeros (`None` if it has none).
fn leading_number(id: &str) -> Option<&str> {
    let digits = id.len() - id.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    (digits > 0).then(|| id[..digits].trim_start_matches('0'))
}

/// Whether `a` has the higher leading number of the two (numbers compared as numbers).
pub(super) fn numbered_higher(a: &str, b: &str) -> bool {
    match (leading_number(a), leading_number(b)) {
        (Some(x), Some(y)) => (x.len(), x) > (y.len(), y),
        _ => false,
    }
}

/// Refuses new migrations that would run out of order: one whose name sorts before a migration already
/// started or applied, and new numbered ones whose names sort against their numbers (`10-x` before
/// `2-y`: names compare byte by byte).
fn check_order(prepared: &[Prepared], history: &[Applied]) -> Result<(), SchemaError> {
    let known = |id: &str| history.iter().any(|h| h.migration == id);
    let mut problems = Vec::new();
    for p in prepared.iter().filter(|p| !known(&p.migration.id)) {
        let id = &p.migration.id;
        if let Some(later) =
            history.iter().filter(|h| h.migration.as_str() > id.as_str()).max_by(|a, b| a.migration.cmp(&b.migration))
        {
            problems.push(format!(
                "migration {id} (parameter {}) is new, but its name sorts before {}, which an earlier run already \
                 {} on {}",
                p.migration.parameter,
                later.migration,
                if later.status == "applied" { "applied" } else { "started" },
                later.finished
            ));
        }
    }
    let pending: Vec<&Prepared> = prepared.iter().filter(|p| !known(&p.migration.id)).collect();
    for (i, a) in pending.iter().enumerate() {
        if let Some(b) = pending[i + 1..].iter().find(|b| numbered_higher(&a.migration.id, &b.migration.id)) {
            problems.push(format!(
                "migrations {} and {} are new, and {} would run first although its number is higher",
                a.migration.id, b.migration.id, a.migration.id
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(SchemaError::OutOfOrder(problems.join("; ")))
}

/// Where each migration starts: `None` when applied and unchanged, `Some(k)` to run from statement k.
pub(super) fn plan(
    prepared: &[Prepared],
    history: &[Applied],
    scope: (&str, &str),
) -> Result<Vec<Option<usize>>, SchemaError> {
    let mut changed = Vec::new();
    let mut interrupted = None;
    let mut starts = Vec::new();
    for p in prepared {
        let id = &p.migration.id;
        let start = match history.iter().find(|h| &h.migration == id) {
            None => Some(0),
            Some(h) if h.status == "applied" && h.checksum == p.checksum => None,
            Some(h) if h.status == "applied" => {
                changed.push(format!(
                    "migration {id} (parameter {}) was applied on {} with checksum {}…, but its SQL now has checksum {}…",
                    p.migration.parameter,
                    h.finished,
                    &h.checksum[..12],
                    &p.checksum[..12]
                ));
                None
            }
            Some(h) => {
                let k = h.statements_applied.min(p.statements.len());
                if p.prefixes[k] != h.prefix {
                    changed.push(format!(
                        "migration {id} failed on {} after statements 1-{k} had been applied and committed, \
                         and those statements have changed since, so it cannot resume",
                        h.finished
                    ));
                    None
                } else {
                    if let (Some(f), None) = (&h.in_flight, &interrupted) {
                        interrupted = Some(interruption(p, f, scope, InterruptedBy::EarlierRun));
                    }
                    Some(k)
                }
            }
        };
        starts.push(start);
    }
    if !changed.is_empty() {
        return Err(SchemaError::Changed(format!(
            "{}. Applied SQL never runs again, so the change would be silently ignored: restore the original SQL \
             and put the change in a new migration that sorts after it (a new parameter under SqlParameterPath). \
             Nothing was applied",
            changed.join("; ")
        )));
    }
    check_order(prepared, history)?;
    if let Some(e) = interrupted {
        return Err(e);
    }
    Ok(starts)
}

/// How a statement came to be in flight with its outcome unknown.
pub(super) enum InterruptedBy {
    EarlierRun,
    /// Killed `margin` before the deadline.
    Deadline {
        killed: String,
        margin: Duration,
    },
    LostConnection {
        error: String,
        killed: String,
    },
}

/// The error for statement `f.statement` of `p` whose outcome is unknown, with what the operator checks
/// and the two UPDATEs that record the answer.
pub(super) fn interruption(
    p: &Prepared,
    f: &InFlight,
    (database, source): (&str, &str),
    by: InterruptedBy,
) -> SchemaError {
    let n = f.statement.clamp(1, p.statements.len().max(1));
    let statement = p.statements.get(n - 1);
    let connection = f.connection.map_or("of that run".to_owned(), |c| c.to_string());
    let mut cause = match by {
        InterruptedBy::EarlierRun => {
            format!("an earlier run started it on connection {connection} at {} and stopped answering", f.since)
        }
        InterruptedBy::Deadline { killed, margin } => {
            format!("it was still running {} s before the deadline; {killed}", margin.as_secs())
        }
        InterruptedBy::LostConnection { error, killed } => format!("the connection was lost ({error}); {killed}"),
    };
    if f.checksum.as_deref().is_some_and(|c| Some(c) != p.prefixes.get(n).map(String::as_str)) {
        cause.push_str("; its text has changed since it ran");
    }
    let key = format!(
        "target_database = {} AND source = {} AND migration = {}",
        quoted(database),
        quoted(source),
        quoted(&p.migration.id)
    );
    SchemaError::Interrupted(Box::new(Interruption {
        migration: p.migration.id.clone(),
        number: n,
        total: p.statements.len(),
        line: statement.map_or(0, |s| s.line),
        excerpt: statement.map(|s| excerpt(&s.text)).unwrap_or_default(),
        cause,
        connection,
        key,
    }))
}
