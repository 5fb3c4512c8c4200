//! `instance-scheduler`: time-based start/stop of EC2 instances, RDS databases, Aurora clusters and
//! Auto Scaling groups, driven by EventBridge schedules. Wiring only.

mod actions;
mod inventory;
mod plan;
mod request;
mod schedule;
mod scheduler;
mod summary;

use std::sync::Arc;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

/// Large fleets meet throttling: more attempts than the SDK's default three, with its backoff, unless
/// the standard `AWS_MAX_ATTEMPTS` says otherwise.
const MAX_ATTEMPTS: u32 = 8;
/// A page of 1,000 instances can take EC2 a while: a longer attempt than the custom resources' 20 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stackhand::logging::init();
    let mut config = stackhand::aws::config_with_attempt_timeout(ATTEMPT_TIMEOUT).await.into_builder();
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
        config.set_retry_config(Some(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)));
    }
    let config = config.build();
    let clients = Arc::new(scheduler::Clients::new(&config));
    let settings = Arc::new(scheduler::Settings::from_env());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (clients, settings) = (Arc::clone(&clients), Arc::clone(&settings));
        async move {
            let deadline = stackhand::lambda::deadline(event.context.deadline);
            scheduler::handle(&clients, &settings, event.payload, deadline).await
        }
    }))
    .await
}
