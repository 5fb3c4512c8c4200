//! `eip-binding`: the Lambda behind `Custom::EipBinding`, and the target of the EC2 state-change rule.
//! Wiring only.

// The runtime future's layout, built from the library crate's futures, is deeper than rustc's default
// query depth allows.
#![recursion_limit = "256"]

use std::sync::Arc;

use eip_binding::{binding, resource, state_change};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stackhand::logging::init();
    let config = stackhand::aws::config().await;
    let bindable = std::env::var("EIP_BINDABLE_TAG_VALUE").unwrap_or_default();
    let binder =
        Arc::new(binding::Binder::new(stackhand::client!(aws_sdk_ec2, &config)).with_bindable_value(&bindable));
    let pool_key: Arc<str> =
        std::env::var("EIP_POOL_TAG_KEY").unwrap_or_else(|_| state_change::DEFAULT_POOL_TAG_KEY.into()).into();
    let events = Arc::clone(&binder);
    stackhand::cfn::serve(resource::EipBinding::new(binder), move |event| {
        let (binder, pool_key) = (Arc::clone(&events), Arc::clone(&pool_key));
        async move { state_change::handle(&binder, &pool_key, event).await }
    })
    .await
}
