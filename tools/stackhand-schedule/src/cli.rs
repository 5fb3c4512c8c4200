//! The command line.

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};

/// Check a Schedule tag value, and show its transitions, its week and its monthly usage, with the
/// scheduler's own parser and evaluator.
#[derive(Debug, Parser)]
#[command(name = "stackhand-schedule", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exit 0 if every value is a schedule the scheduler can use, 1 (with each error and its fix) if
    /// not. Without VALUE, one value per line from stdin (blank lines skipped).
    Check {
        values: Vec<String>,
        #[command(flatten)]
        definitions: Definitions,
    },
    /// The next N transitions (start or stop), in the schedule's zone and UTC, DST marked.
    Next {
        value: String,
        /// From this instant (RFC 3339); now by default.
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        #[arg(short = 'n', default_value_t = 5)]
        n: usize,
        #[command(flatten)]
        definitions: Definitions,
    },
    /// A 7 × 24 grid, per half hour: running ■, stopped ·; in the schedule's zone and in UTC.
    Week {
        value: String,
        /// The first day (YYYY-MM-DD, in the schedule's zone); today by default.
        #[arg(long)]
        from: Option<NaiveDate>,
        #[command(flatten)]
        definitions: Definitions,
    },
    /// Running hours per day of a month (in the schedule's zone) and the share of an always-on month
    /// saved.
    Usage {
        value: String,
        /// The month, YYYY-MM.
        #[arg(long, conflicts_with = "year", required_unless_present = "year")]
        month: Option<String>,
        /// A whole year, month by month.
        #[arg(long)]
        year: Option<i32>,
        #[command(flatten)]
        definitions: Definitions,
    },
}

/// Where named schedules and holiday lists come from.
#[derive(Debug, Args, Clone)]
pub struct Definitions {
    /// A JSON file as the SCHEDULES_PARAMETER holds: {"name": "<schedule>", "holidays": {...}}.
    #[arg(long, conflicts_with = "parameter")]
    pub definitions: Option<std::path::PathBuf>,
    /// The SSM parameter itself (the AWS SDK's usual credentials and Region).
    #[arg(long)]
    pub parameter: Option<String>,
}
