//! `aurora-schema-init`: the Lambda behind `Custom::AuroraSchema`. Wiring only.

mod db;
mod error;
mod migrate;
mod props;
mod schema;
mod source;
mod split;

use error::SchemaError;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stackhand::logging::init();
    let config = stackhand::aws::config().await;
    let sources = source::Sources {
        ssm: stackhand::client!(aws_sdk_ssm, &config),
        secrets: stackhand::client!(aws_sdk_secretsmanager, &config),
    };
    stackhand::cfn::run(schema::Schema::new(sources)).await
}
