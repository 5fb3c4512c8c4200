//! One module per command; each writes to `out` and says whether everything it was given is usable.

use std::io::{BufRead, Write};

use instance_scheduler::schedule::Schedule;

use crate::cli::{self, Cli, Command};
use crate::resolve::{self, SetupError};

mod check;
mod next;
mod usage;
mod week;

/// Runs the command: `Ok(false)` when a value is not a usable schedule (exit 1).
pub async fn run(cli: Cli, out: &mut impl Write, input: &mut impl BufRead) -> Result<bool, SetupError> {
    match cli.command {
        Command::Check { values, definitions } => {
            let definitions = resolve::definitions(&definitions).await?;
            let values = if values.is_empty() {
                let lines: Result<Vec<String>, _> = input.lines().collect();
                lines.map_err(SetupError::Stdin)?.into_iter().filter(|l| !l.trim().is_empty()).collect()
            } else {
                values
            };
            check::run(&values, definitions.as_ref(), out)
        }
        Command::Next { value, from, n, definitions } => {
            let Some(schedule) = usable(&value, &definitions, out).await? else { return Ok(false) };
            next::run(&schedule, from.unwrap_or_else(chrono::Utc::now), n, out)
        }
        Command::Week { value, from, definitions } => {
            let Some(schedule) = usable(&value, &definitions, out).await? else { return Ok(false) };
            week::run(&schedule, from, out)
        }
        Command::Usage { value, month, year, definitions } => {
            let Some(schedule) = usable(&value, &definitions, out).await? else { return Ok(false) };
            usage::run(&schedule, month.as_deref(), year, out)
        }
    }
}

/// The schedule `value` gives, resolved through the definitions asked for; None (said on `out`) when
/// it gives none.
async fn usable(value: &str, from: &cli::Definitions, out: &mut impl Write) -> Result<Option<Schedule>, SetupError> {
    let definitions = resolve::definitions(from).await?;
    match resolve::schedule(value, definitions.as_ref()) {
        Ok(schedule) => Ok(Some(schedule)),
        Err(e) => {
            unusable(value, &e, out)?;
            Ok(None)
        }
    }
}

/// A value that gives no schedule: said on `out`, and the command fails.
fn unusable(value: &str, error: &resolve::ValueError, out: &mut impl Write) -> Result<bool, SetupError> {
    writeln!(out, "error: {}: {error}", value.trim())?;
    Ok(false)
}
