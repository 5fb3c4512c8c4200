//! Test harness for stackhand's functions: they run as real binaries against a Lambda Runtime API
//! emulator, answer CloudFormation through a recording endpoint (or a real presigned S3 URL from the
//! emulator), and reach AWS only through moto's server via the SDK's standard `AWS_ENDPOINT_URL`.

mod faults;
pub mod fleet;
mod harness;
mod iam_context;
pub mod local;
mod process;
mod recorder;
mod runtime_api;
mod samples;
pub mod shapes;
pub mod sqs;
mod throttle;

pub use faults::FaultMatrix;
pub use harness::{status, Harness};
pub use process::{FunctionProcess, OBSERVED_CALLS};
pub use recorder::{RecordedPut, ResponseRecorder, SIGNATURE};
pub use runtime_api::{Answer, Invocation, RuntimeApi};
pub use samples::assert_sample_events_agree;
pub use throttle::{Call, Refusal, ThrottlingProxy};

/// An EC2 client whose calls are answered by aws-smithy-mocks `rules`, in order: for error paths the
/// emulator cannot produce (races, vanished resources, denied calls).
pub fn mock_ec2(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_ec2::Client {
    mock_ec2_with(aws_smithy_mocks::RuleMode::Sequential, rules)
}

/// [`mock_ec2`] with a choice of rule mode (`MatchAny`: the first rule whose matcher accepts a request).
/// The client is built as the functions build theirs ([`stackhand::client!`]): the same retry budget.
pub fn mock_ec2_with(mode: aws_smithy_mocks::RuleMode, rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_ec2::Client {
    use aws_smithy_mocks::MockResponseInterceptor;
    let interceptor = rules.iter().fold(MockResponseInterceptor::new().rule_mode(mode), |i, r| i.with_rule(r));
    stackhand::client!(aws_sdk_ec2, &mock_sdk_config(), builder => builder.interceptor(interceptor))
}

/// The shared configuration a function loads, with aws-smithy-mocks' HTTP client in place of the network.
pub fn mock_sdk_config() -> aws_config::SdkConfig {
    use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::for_tests()))
        .http_client(aws_smithy_mocks::create_mock_http_client())
        .retry_config(stackhand::aws::sdk_retry_config())
        .build()
}

/// A name unique to this test process and call: databases, pools, parameters never collide.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// A CloudFormation custom-resource request, as CloudFormation sends it.
pub fn cfn_event(
    request_type: &str,
    response_url: &str,
    logical_id: &str,
    resource_type: &str,
    properties: serde_json::Value,
) -> serde_json::Value {
    let request_id = format!("{logical_id}-{request_type}-{}", std::process::id());
    serde_json::json!({
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:under-test",
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/stackhand-test/6c3f1a40-c7e4-11ef-9d1b-0a1b2c3d4e5f",
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": properties,
    })
}

/// `relative` (e.g. `events/eip-binding`) in the checkout under test. Found from the package
/// directory `cargo test` gives the running test, not the one compiled in: clones sharing one target
/// directory reuse each other's test binaries, and a compiled-in path would read another clone's files.
pub fn checkout_path(relative: &str) -> std::path::PathBuf {
    let package = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR: run the tests with cargo test");
    let root = std::path::Path::new(&package)
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or_else(|| panic!("no Cargo.lock above {package}"));
    root.join(relative)
}
