//! stackhand-schedule (release), the CLI over the scheduler's own parser and evaluator: `usage --year`,
//! the heaviest command (twelve months of a schedule's transitions, day by day in its zone), each run a
//! fresh process, spawn to exit. No peer: AWS Instance Scheduler's `describe-schedule-usage` runs inside
//! its Lambda behind its CLI, not something to run here; the figure is held to the 50 ms goal.

use std::process::Command;
use std::time::Instant;

use crate::report::{fill, median_f, millis, Row};

const RUNS: usize = 11;
/// A schedule with a DST zone, an nth weekday and two periods: every day of the year has transitions.
const VALUE: &str = "Mon-Fri 08:00-12:00 13:00-19:00 Sat#1 10:00-14:00 Europe/London";
const PEER: &str = "no peer: the CLI's own cost (goal: under 50 ms)";
const NOTE: &str = "median of {runs} fresh processes of the release binary (`stackhand-schedule usage \"{value}\" \
     --year 2027`), spawn to exit; slowest {slowest} ms";

pub fn rows(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/stackhand-schedule");
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let out = Command::new(&binary).args(["usage", VALUE, "--year", "2027"]).output().expect("stackhand-schedule");
        times.push(millis(started.elapsed()));
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && printed.contains("\n2027 "), "{out:?}");
    }
    let slowest = times.iter().copied().fold(f64::MIN, f64::max);
    vec![Row {
        scenario: "cli-usage-year: stackhand-schedule usage over a year, process start to exit".into(),
        unit: "ms",
        ours: median_f(times),
        peer_name: PEER,
        peer: f64::NAN,
        note: fill(
            NOTE,
            &[("runs", RUNS.to_string()), ("value", VALUE.to_owned()), ("slowest", format!("{slowest:.1}"))],
        ),
    }]
}
