//! `nlb-ip-allowlist`: the Lambda behind `Custom::NlbIpAllowlist`. Wiring only.

// The runtime future's layout, built from the library crate's futures, is deeper than rustc's default
// query depth allows.
#![recursion_limit = "256"]

use nlb_ip_allowlist::allowlist;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stackhand::logging::init();
    let config = stackhand::aws::config().await;
    let quota = std::env::var(allowlist::QUOTA_ENV).ok();
    let group_tag = std::env::var(allowlist::GROUP_TAG_ENV).ok();
    let handler = allowlist::Allowlist::new(stackhand::client!(aws_sdk_ec2, &config))
        .with_quota_setting(quota.as_deref())
        .with_group_tag_setting(group_tag.as_deref());
    stackhand::cfn::run(handler).await
}
