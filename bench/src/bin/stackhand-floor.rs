//! The floor `make bench` measures cold starts against: a minimal Rust Lambda with what every
//! stackhand function needs at the least (lambda_runtime, aws-config, one SDK client), built with the
//! same release profile and the workspace's crate features (one HTTP/TLS stack, no SSO providers), so
//! the ratio is what the functions add. Not a stackhand function; never packaged.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let _client = &ec2;
        async { Ok::<_, Error>(json!({})) }
    }))
    .await
}
