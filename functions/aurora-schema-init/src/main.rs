//! `aurora-schema-init`: the Lambda behind `Custom::AuroraSchema`. Wiring only.

// The runtime future's layout, built from the library crate's futures, is deeper than rustc's default
// query depth allows.
#![recursion_limit = "256"]

use aurora_schema_init::{policy, schema, source};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stackhand::logging::init();
    let config = stackhand::aws::config().await;
    let sources = source::Sources {
        ssm: stackhand::client!(aws_sdk_ssm, &config),
        secrets: stackhand::client!(aws_sdk_secretsmanager, &config),
        rds: stackhand::client!(aws_sdk_rds, &config),
    };
    stackhand::cfn::run(schema::Schema::new(sources, policy::Policy::from_env())).await
}
