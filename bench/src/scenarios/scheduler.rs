//! instance-scheduler against a one-call-per-resource Python scheduler
//! (bench/peers/instance_scheduler.py): each a fresh process reconciling a fleet that should all be
//! stopped; on the 1,000 fleet also the cold start, the warm reconcile, memory and the cost model.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::local::{self, aws_env_in, moto_url, sdk_config_in};
use testkit::{Answer, FunctionProcess, RuntimeApi, ThrottlingProxy};

use super::{python_peer, until_first_poll};
use crate::cost;
use crate::report::{fill, millis, paired, Row};

const SCHEDULER_PEER: &str = "instance_scheduler.lambda_handler";
const PEER_NAME: &str = "Python 3.11 + boto3, one call per resource (awslambdaric)";

const SCHEDULER_RUNS: usize = 3;
const SCHEDULE: &str = "Mon-Fri 08:00-19:00 Europe/London";
/// Monday 20:00 in London: every resource of the fleet should be stopped.
const NIGHT: &str = "2026-11-23T20:00:00Z";
const DATABASES: usize = 200;
/// The scheduler's transition marker (instance-scheduler's SCHEDULE_APPLIED_TAG).
const MARKER: &str = "stackhand:schedule-applied";

/// Where moto's first DescribeInstances page takes longer than this, the scheduler scenario is not run:
/// both sides give up on an attempt after 60 s.
const LISTING_LIMIT: Duration = Duration::from_secs(45);

const NOT_MEASURED_NOTE: &str = "not measured in this run: moto took {seconds} s to answer the first \
     DescribeInstances page (1,000 instances, tag-key filter), over the 60 s per-attempt read timeout of both \
     stackhand and boto3, so neither side could list the fleet. Real EC2 answers such a page in seconds; moto's \
     time grows with the square of the Region's instances and with the machine";

const STOP_NOTE: &str = "medians of {runs} runs, each a fresh process against a fleet that should all be stopped; \
     stackhand stops instances 100 per call and databases 8 at a time, the peer one call per resource. Each run \
     is a first run after deployment (the fleet's transition markers removed between runs), so stackhand also \
     records the transition it applied on every resource: CreateTags per 100 instances, AddTagsToResource per \
     database (RDS tags one resource per call); a later run in the same period writes nothing";

const CPU_NOTE: &str = "the function process's own work, from /proc/<pid>/stat in 10 ms ticks; the wall time above \
     is mostly moto answering";

/// A fleet in a region of its own: `instances` EC2 instances and DATABASES RDS instances, all tagged
/// with SCHEDULE and running.
struct Fleet {
    region: &'static str,
    ec2: aws_sdk_ec2::Client,
    rds: aws_sdk_rds::Client,
    instances: Vec<String>,
    databases: Vec<String>,
}

impl Fleet {
    async fn seed(region: &'static str, instances: usize) -> Self {
        let config = sdk_config_in(&moto_url(), region).await;
        let (ec2, rds) = (aws_sdk_ec2::Client::new(&config), aws_sdk_rds::Client::new(&config));
        let image = ec2.describe_images().owners("amazon").send().await.unwrap();
        let image = image.images()[0].image_id().unwrap().to_owned();
        let tag = aws_sdk_ec2::types::ResourceType::Instance;
        let mut ids = Vec::new();
        while ids.len() < instances {
            let n = (instances - ids.len()).min(1000) as i32;
            let out = ec2
                .run_instances()
                .image_id(&image)
                .min_count(n)
                .max_count(n)
                .tag_specifications(local::tags(tag.clone(), &[("Schedule", SCHEDULE)]))
                .send()
                .await
                .expect("RunInstances");
            ids.extend(out.instances().iter().map(|i| i.instance_id().unwrap().to_owned()));
        }
        let mut databases = Vec::new();
        for i in 0..DATABASES {
            let id = format!("bench-db-{i:03}");
            testkit::fleet::db_instance(&rds, &id, None, &[("Schedule", SCHEDULE)]).await;
            databases.push(id);
        }
        Self { region, ec2, rds, instances: ids, databases }
    }

    /// Everything running again and never scheduled (no transition marker, which the scheduler writes
    /// on the first run in a period and which would otherwise leave the restarted fleet alone as
    /// "started by hand"): each measured run is a first run after deployment, converging the fleet.
    async fn wake(&self) {
        let marker = aws_sdk_ec2::types::Tag::builder().key(MARKER).build();
        for chunk in self.instances.chunks(1000) {
            self.ec2.start_instances().set_instance_ids(Some(chunk.to_vec())).send().await.expect("StartInstances");
            let untag = self.ec2.delete_tags().set_resources(Some(chunk.to_vec())).tags(marker.clone());
            untag.send().await.expect("DeleteTags");
        }
        for db in &self.databases {
            if testkit::fleet::db_instance_status(&self.rds, db).await == "stopped" {
                self.rds.start_db_instance().db_instance_identifier(db).send().await.expect("StartDBInstance");
            }
            let arn = format!("arn:aws:rds:{}:123456789012:db:{db}", self.region);
            let untag = self.rds.remove_tags_from_resource().resource_name(arn).tag_keys(MARKER);
            untag.send().await.expect("RemoveTagsFromResource");
        }
    }

    /// How long moto takes to answer the first page the scheduler asks for.
    async fn first_page(&self) -> Duration {
        let started = Instant::now();
        self.ec2
            .describe_instances()
            .filters(aws_sdk_ec2::types::Filter::builder().name("tag-key").values("Schedule").build())
            .max_results(1000)
            .send()
            .await
            .expect("DescribeInstances");
        started.elapsed()
    }

    async fn all_stopped(&self) -> bool {
        let states = testkit::fleet::instance_states(&self.ec2, &self.instances).await;
        let mut ok = states.iter().all(|s| s == "stopped");
        for db in &self.databases {
            ok &= testkit::fleet::db_instance_status(&self.rds, db).await == "stopped";
        }
        ok
    }
}

struct SchedulerRun {
    /// Process start to the first Runtime API poll.
    init_ms: f64,
    /// The reconcile that stops the whole fleet: wall time, AWS calls, the process's CPU time.
    stop_ms: f64,
    stop_calls: f64,
    stop_cpu_ms: f64,
    /// The same reconcile again, warm, with nothing to change: wall time, CPU time.
    steady_ms: f64,
    steady_cpu_ms: f64,
    rss_mib: f64,
}

/// With `steady`, also the warm second reconcile (only the 1,000 fleet reports it: on the 5,000 fleet
/// moto's one-page answer to the peer can outlast boto3's 60 s read timeout).
async fn scheduler_run(command: Command, fleet: &Fleet, steady: bool) -> SchedulerRun {
    let proxy = ThrottlingProxy::counting(&moto_url()).await;
    let mut env = aws_env_in(&proxy.url(), fleet.region);
    env.push(("AWS_DEFAULT_REGION".into(), fleet.region.into()));
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    let api = RuntimeApi::start().await;
    let process = FunctionProcess::spawn_command(command, &api.address(), &env);
    let init_ms = millis(until_first_poll(&api, &process).await);
    let cpu = || millis(process.cpu_time().expect("the process's CPU time from /proc"));
    let event = json!({"action": "reconcile", "time": NIGHT});
    let invoke = || async {
        let started = Instant::now();
        let answer = api.invoke_json(&event, Duration::from_secs(900)).await.answer;
        assert!(matches!(answer, Answer::Response(_)), "{answer:?}\n{}", process.output());
        millis(started.elapsed())
    };
    let cpu_at_init = cpu();
    let stop_ms = invoke().await;
    let stop_calls = proxy.seen() as f64;
    let cpu_after_stop = cpu();
    assert!(fleet.all_stopped().await, "the fleet was not stopped:\n{}", process.output());
    let (steady_ms, steady_cpu_ms) =
        if steady { (invoke().await, cpu() - cpu_after_stop) } else { (f64::NAN, f64::NAN) };
    let rss_mib = process.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
    SchedulerRun {
        init_ms,
        stop_ms,
        stop_calls,
        stop_cpu_ms: cpu_after_stop - cpu_at_init,
        steady_ms,
        steady_cpu_ms,
        rss_mib,
    }
}

/// The rows of the fleet of `instances` EC2 instances (and DATABASES RDS instances) in `region`.
pub async fn rows(bin_dir: &str, region: &'static str, instances: usize) -> Vec<Row> {
    let binary = format!("{bin_dir}/instance-scheduler");
    let fleet = Fleet::seed(region, instances).await;
    let what = format!("{instances} instances + {DATABASES} RDS");
    // moto answers a DescribeInstances page in time that grows with the square of the Region's
    // instances (each instance's tags are found by scanning all of them). Where one page takes longer
    // than both sides' per-attempt timeout (60 s), neither can list the fleet: say so, measure nothing.
    let page = fleet.first_page().await;
    if page > LISTING_LIMIT {
        return vec![Row {
            scenario: format!("scheduler-{instances}: reconcile stopping {what}, event to answer"),
            unit: "ms",
            ours: f64::NAN,
            peer_name: PEER_NAME,
            peer: f64::NAN,
            note: fill(NOT_MEASURED_NOTE, &[("seconds", format!("{:.0}", page.as_secs_f64()))]),
        }];
    }
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    // The 1,000 fleet also gives the cold start, the warm reconcile, memory and cost.
    let detailed = instances == 1000;
    for _ in 0..SCHEDULER_RUNS {
        ours.push(scheduler_run(Command::new(&binary), &fleet, detailed).await);
        fleet.wake().await;
        peer.push(scheduler_run(python_peer(SCHEDULER_PEER), &fleet, detailed).await);
        fleet.wake().await;
    }
    let row = |scenario: String, unit, f: fn(&SchedulerRun) -> f64| paired(scenario, unit, &ours, PEER_NAME, &peer, f);
    let mut rows = vec![
        Row {
            note: fill(STOP_NOTE, &[("runs", SCHEDULER_RUNS.to_string())]),
            ..row(format!("scheduler-{instances}: reconcile stopping {what}, event to answer"), "ms", |r| r.stop_ms)
        },
        row(format!("scheduler-{instances}-calls: AWS calls for that reconcile"), "calls", |r| r.stop_calls),
        Row {
            note: CPU_NOTE.into(),
            ..row(format!("scheduler-{instances}-cpu: CPU time (user + system) of that reconcile"), "ms", |r| {
                r.stop_cpu_ms
            })
        },
    ];
    if detailed {
        rows.insert(
            0,
            row("scheduler-cold-start: process start to first Runtime API poll".into(), "ms", |r| r.init_ms),
        );
        let steady_row =
            row(format!("scheduler-steady-{instances}: warm reconcile of {what}, nothing to change"), "ms", |r| {
                r.steady_ms
            });
        let steady_cpu_row = row(
            format!("scheduler-steady-cpu-{instances}: CPU time (user + system) of that warm reconcile"),
            "ms",
            |r| r.steady_cpu_ms,
        );
        let rss_row =
            row(format!("scheduler-rss-{instances}: peak resident memory over both reconciles"), "MiB", |r| r.rss_mib);
        let cost_rows = cost::rows(
            instances,
            &what,
            PEER_NAME,
            (steady_row.ours, steady_row.peer),
            (steady_cpu_row.ours, steady_cpu_row.peer),
            (rss_row.ours, rss_row.peer),
        );
        rows.extend([steady_row, steady_cpu_row, rss_row]);
        rows.extend(cost_rows);
    }
    rows
}
