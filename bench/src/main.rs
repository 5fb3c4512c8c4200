//! `make bench`: each stackhand function measured beside a peer doing the same job, in the same run,
//! on the same machine and the same local stack. Prints a table and writes docs/benchmarks.md.
//!
//! Scenarios:
//! - nlb-cold-start: nlb-ip-allowlist (release) vs. the NLB-whitelisting function as commonly
//!   published (bench/peers/nlb_whitelist.py: boto3 + cfnresponse under awslambdaric): process start to
//!   the first Runtime API poll, the first invocation (a Create over 3 ENIs and 2 port ranges), peak RSS.
//! - nlb-api-calls: AWS calls one Create makes with 2, 6 and 12 ENIs, counted at a proxy before moto.
//! - eip-cold-start: eip-binding vs. pool binding as commonly published (bench/peers/eip_pool.py), the
//!   same three figures for a Create binding one address of a 2-address pool to an instance.
//! - schema-cold-start: aurora-schema-init vs. schema init as commonly published
//!   (bench/peers/schema_init.py: boto3 + PyMySQL + cfnresponse), the same three figures for a Create
//!   applying the generated 1,000-statement script from SSM.
//! - schema-1000: a generated 1,000-statement script (20 migrations of 50 statements, each within
//!   SSM's 4 KB standard-parameter limit) applied by aurora-schema-init (release build, through the
//!   Runtime API, SQL from moto's SSM) vs. the `mariadb` command-line client feeding the same
//!   statements to the same server. Median of RUNS runs each, interleaved.
//! - scheduler-N: instance-scheduler (release) vs. a one-call-per-resource Python scheduler
//!   (bench/peers/instance_scheduler.py under awslambdaric), each a fresh process reconciling a fleet of
//!   N instances + 200 RDS databases that should all be stopped: wall time and AWS calls (counted at a
//!   proxy before moto); then, for N = 1,000, warm, a second reconcile with nothing to change — its duration and the
//!   peak RSS give the monthly Lambda cost of reconciling every 5 minutes. Each process's CPU time
//!   (/proc/<pid>/stat) is measured beside the wall time, which is mostly moto's, and prices the
//!   functions' own work. The 1,000 fleet's runs also give the process start to first poll. Median of
//!   SCHEDULER_RUNS.
//! - fleet-N: instance-scheduler (release) alone, for N = 5,000, 20,000 and 50,000 instances, against
//!   a local server replaying EC2's XML shapes from pages built in advance (src/replay.rs), not moto
//!   (whose listing time grows with the square of the fleet): one reconcile stopping the whole fleet,
//!   its wall time, calls per action, CPU time and peak RSS, and whether the fleet fits the function's
//!   128 MB and 300 s. Median of FLEET_RUNS. STACKHAND_BENCH_FLEET_SIZES / _RUNS choose fewer;
//!   STACKHAND_BENCH_BASELINE (a binary; scripts/bench builds it from STACKHAND_BENCH_BASELINE_REV) runs
//!   an earlier scheduler beside this one and fills the peer column with it.
//! - cli-usage-year: the stackhand-schedule CLI's `usage --year`, spawn to exit (no peer; goal 50 ms).
//! - scheduler-10-targets-x-100: instance-scheduler stopping 10 targets (5 accounts × 2 Regions in
//!   moto, 100 instances each) with its targets run concurrently (8 at a time) against one at a time,
//!   a fresh release process per run. Median of 3 each, interleaved.
//! - <function>-init-vs-floor: each function's process start to first Runtime API poll against
//!   stackhand-floor (src/bin/stackhand-floor.rs), a minimal Rust Lambda with the same release profile.
//!
//! STACKHAND_BENCH_ONLY=eip,schema runs only the groups named (floor, nlb, eip, schema, scheduler, fleet, targets, fanout, cli).
//!
//! Layout: src/scenarios/ (one module per function, the floor and the fleets), src/report.rs (rows,
//! medians, the table and docs/benchmarks.md), src/cost.rs (the scheduler's Lambda cost model),
//! src/replay.rs (the EC2 replay server of the fleet rows).

mod cost;
mod replay;
mod report;
mod scenarios;

use scenarios::{cli, eip, fanout, fleet, floor, nlb, scheduler, schema, targets};

#[tokio::main]
async fn main() {
    let bin_dir =
        std::env::var("STACKHAND_BENCH_BIN_DIR").expect("STACKHAND_BENCH_BIN_DIR: where the release binaries are");
    // STACKHAND_BENCH_ONLY=eip,schema runs only the scenario groups named (floor, nlb, eip, schema, scheduler, fleet, targets, fanout, cli)
    // and, unless STACKHAND_BENCH_OUT says where, prints the table without writing docs/benchmarks.md.
    let only = std::env::var("STACKHAND_BENCH_ONLY").ok();
    let wanted = |group: &str| only.as_deref().is_none_or(|o| o.split(',').any(|g| g.trim() == group));
    let out = match (std::env::var("STACKHAND_BENCH_OUT"), &only) {
        (Ok(out), _) => Some(out),
        (Err(_), None) => Some("docs/benchmarks.md".to_owned()),
        (Err(_), Some(_)) => None,
    };
    let mut rows = Vec::new();
    if wanted("floor") {
        rows.extend(floor::rows(&bin_dir).await);
    }
    if wanted("nlb") {
        rows.extend(nlb::cold_start(&bin_dir).await);
        rows.extend(nlb::api_calls(&bin_dir).await);
    }
    if wanted("eip") {
        rows.extend(eip::cold_start(&bin_dir).await);
    }
    if wanted("schema") {
        rows.extend(schema::cold_start(&bin_dir).await);
        rows.push(schema::script_1000(&bin_dir).await);
    }
    if wanted("scheduler") {
        rows.extend(scheduler::rows(&bin_dir, "eu-central-1", 1000).await);
        rows.extend(scheduler::rows(&bin_dir, "eu-north-1", 5000).await);
    }
    if wanted("fleet") {
        rows.extend(fleet::rows(&bin_dir).await);
    }
    if wanted("targets") {
        rows.extend(targets::rows(&bin_dir).await);
    }
    if wanted("fanout") {
        rows.extend(fanout::rows(&bin_dir).await);
    }
    if wanted("cli") {
        rows.extend(cli::rows(&bin_dir));
    }
    assert!(
        !rows.is_empty(),
        "STACKHAND_BENCH_ONLY={only:?} names no scenario group (floor, nlb, eip, schema, scheduler, fleet, targets, fanout, cli)"
    );

    let table = report::table(&rows);
    println!("{table}");
    let doc = report::document(&rows, &table, scenarios::RUNS);
    match out {
        Some(out) => {
            std::fs::create_dir_all(std::path::Path::new(&out).parent().unwrap()).unwrap();
            std::fs::write(&out, doc).unwrap();
            println!("written to {out}");
        }
        None => println!("STACKHAND_BENCH_ONLY is set: docs/benchmarks.md left as it was"),
    }
}
