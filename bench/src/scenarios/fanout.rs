//! instance-scheduler's fan-out (issue 22): 200 targets (100 accounts × 2 Regions, a few instances
//! each) in moto, stopped by one invocation running them 8 at a time, against the same stop fanned
//! out: the hub sends one message per target to an SQS FIFO queue in moto and 10 worker processes
//! take them one message per invocation, as Lambda's event source mapping would (batch size 1,
//! MaximumConcurrency 10; this driver receives, hands each to a free worker and deletes what it
//! answered done). Wall time from the hub's invocation until every target is done, both sides through
//! a proxy that delays every call as a Region's network would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::local::{aws_env_in, moto_url, sdk_config_in};
use testkit::{Answer, FunctionProcess, RuntimeApi, ThrottlingProxy};
use tokio::sync::Mutex;

use crate::report::{fill, median_f, millis, Row};

const ACCOUNTS: usize = 100;
const REGIONS: [&str; 2] = ["ca-central-1", "eu-south-1"];
const PER_TARGET: usize = 2;
const WORKERS: usize = 10;
const RUNS: usize = 3;
/// What a call to a real Region waits on the network, added per call by a proxy in front of moto.
const LATENCY: Duration = Duration::from_millis(100);

const INLINE: &str = "the same function, every target in one invocation (8 at a time)";

const NOTE: &str = "median of {runs} runs each, interleaved: {targets} targets ({accounts} accounts × {regions} \
     Regions, {per} instances each) stopped, every call delayed {ms} ms by a proxy in front of moto. Ours: the hub \
     sends one message per target to an SQS FIFO queue (moto) and {workers} worker processes take one each, as \
     the event source mapping would at MaximumConcurrency {workers}, batch size 1; wall time from the hub's \
     invocation to the last target done, the driver's own SQS calls straight to moto ({per_target} ms a target). Peer: one invocation, 8 targets at a time. \
     Fan-out is not for speed at this size (10 workers against 8 concurrent targets): it is for what one \
     invocation can't reach in its timeout";

struct World {
    key: String,
    accounts: Vec<String>,
    /// Each target's EC2 client and instances, to start them again between runs.
    instances: Vec<(aws_sdk_ec2::Client, Vec<String>)>,
    sqs: aws_sdk_sqs::Client,
    queue: String,
}

async fn seed() -> World {
    let key = testkit::unique("BenchFanOut");
    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("{}", 230_000_000_000u64 + i as u64)).collect();
    let mut instances = Vec::new();
    for account in &accounts {
        for region in REGIONS {
            instances.push(super::tagged_instances(account, region, &key, PER_TARGET).await);
        }
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk_config_in(&moto_url(), REGIONS[0]).await);
    let created = sqs
        .create_queue()
        .queue_name(format!("{}.fifo", key.replace('_', "-")))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "300")
        .send()
        .await
        .expect("CreateQueue");
    World { key, accounts, instances, sqs, queue: created.queue_url().unwrap().to_owned() }
}

impl World {
    async fn start_all(&self) {
        for (ec2, ids) in &self.instances {
            ec2.start_instances().set_instance_ids(Some(ids.clone())).send().await.expect("StartInstances");
        }
    }

    fn env(&self, endpoint: &str, fan_out: bool) -> Vec<(String, String)> {
        let mut env = aws_env_in(endpoint, REGIONS[0]);
        env.push(("SCHEDULE_TAG_KEY".into(), self.key.clone()));
        env.push(("SCHEDULER_ACCOUNTS".into(), self.accounts.join(",")));
        env.push(("SCHEDULER_REGIONS".into(), REGIONS.join(",")));
        env.push(("SCHEDULER_EVENT_BUS".into(), "none".into()));
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()));
        if fan_out {
            env.push(("SCHEDULER_QUEUE_URL".into(), self.queue.clone()));
            env.push(("SCHEDULER_FAN_OUT_THRESHOLD".into(), "0".into()));
        }
        env
    }

    fn targets(&self) -> usize {
        self.accounts.len() * REGIONS.len()
    }
}

/// One invocation stopping every target: its time.
async fn inline(binary: &str, endpoint: &str, world: &World) -> f64 {
    world.start_all().await;
    let api = RuntimeApi::start().await;
    let process = FunctionProcess::spawn(binary, &api.address(), &world.env(endpoint, false));
    let started = Instant::now();
    let answer = api.invoke_json(&json!({"action": "stop"}), Duration::from_secs(600)).await.answer;
    let elapsed = millis(started.elapsed());
    let Answer::Response(summary) = answer else { panic!("the inline run failed: {answer:?}\n{}", process.output()) };
    let stopped = summary["stopped"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(stopped, world.targets() * PER_TARGET, "every instance of every target: {summary}");
    elapsed
}

/// The hub's dispatch, then the workers on the queue until every target is done: the whole time.
async fn fanned_out(binary: &str, endpoint: &str, world: &World) -> f64 {
    world.start_all().await;
    let env = world.env(endpoint, true);
    let hub_api = RuntimeApi::start().await;
    let hub = FunctionProcess::spawn(binary, &hub_api.address(), &env);
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let api = RuntimeApi::start().await;
        let process = FunctionProcess::spawn(binary, &api.address(), &env);
        workers.push((api, process));
    }
    let started = Instant::now();
    let answer = hub_api.invoke_json(&json!({"action": "stop"}), Duration::from_secs(600)).await.answer;
    let Answer::Response(summary) = answer else { panic!("the hub failed: {answer:?}\n{}", hub.output()) };
    assert_eq!(summary["dispatched"], world.targets(), "{summary}");
    let done = Arc::new(Mutex::new(0usize));
    // Each worker polls on its own, as Lambda's pollers do.
    let runs = workers.iter().map(|(api, process)| {
        let done = Arc::clone(&done);
        async move {
            loop {
                let message = {
                    if *done.lock().await >= world.targets() {
                        return;
                    }
                    let out = world
                        .sqs
                        .receive_message()
                        .queue_url(&world.queue)
                        .max_number_of_messages(1)
                        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                        .send()
                        .await
                        .expect("ReceiveMessage");
                    out.messages().first().cloned()
                };
                let Some(message) = message else {
                    if *done.lock().await >= world.targets() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let event = json!({"Records": [testkit::sqs::record(&message, &world.queue, REGIONS[0])]});
                let answer = api.invoke_json(&event, Duration::from_secs(300)).await.answer;
                let Answer::Response(answer) = answer else {
                    panic!("a worker failed: {answer:?}\n{}", process.output())
                };
                assert_eq!(answer["batchItemFailures"], json!([]), "{}", process.output());
                let receipt = message.receipt_handle().unwrap_or_default();
                world
                    .sqs
                    .delete_message()
                    .queue_url(&world.queue)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .expect("DeleteMessage");
                *done.lock().await += 1;
            }
        }
    });
    futures_util::future::join_all(runs).await;
    let elapsed = millis(started.elapsed());
    for (ec2, ids) in world.instances.iter().take(3) {
        let out = ec2.describe_instances().set_instance_ids(Some(ids.clone())).send().await.expect("DescribeInstances");
        for instance in out.reservations().iter().flat_map(|r| r.instances()) {
            let state = instance.state().and_then(|s| s.name()).map(|n| n.as_str()).unwrap_or_default();
            assert!(state == "stopped" || state == "stopping", "{state}");
        }
    }
    elapsed
}

pub async fn rows(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/instance-scheduler");
    let world = seed().await;
    let far = ThrottlingProxy::delaying(&moto_url(), LATENCY).await;
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        ours.push(fanned_out(&binary, &far.url(), &world).await);
        peer.push(inline(&binary, &far.url(), &world).await);
    }
    let (ours, peer) = (median_f(ours), median_f(peer));
    let note = fill(
        NOTE,
        &[
            ("runs", RUNS.to_string()),
            ("targets", world.targets().to_string()),
            ("accounts", ACCOUNTS.to_string()),
            ("regions", REGIONS.len().to_string()),
            ("per", PER_TARGET.to_string()),
            ("ms", LATENCY.as_millis().to_string()),
            ("workers", WORKERS.to_string()),
            ("per_target", format!("{:.0}", ours / world.targets() as f64)),
        ],
    );
    vec![Row {
        scenario: format!("scheduler-fan-out-{}-targets-{WORKERS}-workers", world.targets()),
        unit: "ms",
        ours,
        peer_name: INLINE,
        peer,
        note,
    }]
}
