//! `instance-scheduler`: time-based start/stop of EC2 instances, RDS databases, Aurora clusters and
//! Auto Scaling groups, driven by EventBridge schedules, in one or many accounts and Regions. Wiring only.

// The runtime future's layout, built from the library crate's futures, is deeper than rustc's default
// query depth allows.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::Duration;

use instance_scheduler::scheduler;
use instance_scheduler::targets::Hub;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

/// A page of 1,000 instances can take EC2 a while: a longer attempt than the custom resources' 20 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stackhand::logging::init();
    // Large fleets meet throttling: the clients retry within the run's cutoff (stackhand::aws::within).
    let config = stackhand::aws::config_with_attempt_timeout(ATTEMPT_TIMEOUT).await;
    // A setting that can't be used stops the function at start-up (an init error), said in the log.
    let settings = Arc::new(scheduler::Settings::from_env().inspect_err(|e| tracing::error!(error = %e, "settings"))?);
    // No client yet: each target's are built on its first run (its account and Region decide them).
    let hub = Arc::new(Hub::new(config));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (hub, settings) = (Arc::clone(&hub), Arc::clone(&settings));
        async move {
            let deadline = stackhand::lambda::deadline(event.context.deadline);
            // The function's own account and partition, from the ARN it was invoked by.
            let own = match hub.identity(&event.context.invoked_function_arn).await {
                Ok(own) => own,
                Err(e) => return Err(stackhand::lambda::diagnostic("Stackhand.InstanceScheduler", &e)),
            };
            scheduler::handle(&hub, &settings, event.payload, &own, deadline).await
        }
    }))
    .await
}
