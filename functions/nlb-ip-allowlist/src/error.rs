//! What a Create, Update or Delete of an allowlist can fail with: each names the property and the fix.

use stackhand::aws::AwsError;

use crate::settings::QUOTA_ENV;

#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    #[error(
        "no network interfaces found for {arn} (LoadBalancerArn) after waiting {waited_s} s: searched every \
         Availability Zone for the description {description:?}; check that the Network Load Balancer exists in \
         this account and Region and has finished provisioning, then retry"
    )]
    NoInterfaces { arn: String, description: String, waited_s: u64 },
    #[error(
        "security group {group} (SecurityGroupId) would need {total} inbound {family} rules, above the quota of \
         {quota} rules per security group: {existing} there now + {adding} new ({addresses} {family} addresses × \
         {ranges} port ranges of Ports); nothing was changed. Allow fewer ranges (one range such as \"8000-8100\" \
         is one rule per address) or request an increase of the VPC quota \"Inbound or outbound rules per \
         security group\" (L-0EA8095F) and set the function's environment variable {QUOTA_ENV} to the new value"
    )]
    OverQuota {
        group: String,
        family: &'static str,
        existing: usize,
        adding: usize,
        total: usize,
        addresses: usize,
        ranges: usize,
        quota: usize,
    },
    #[error(
        "security group {group} (SecurityGroupId) reached its rules-per-group quota ({detail}); allow fewer port \
         ranges in Ports, remove unused rules from the group, or request an increase of the VPC quota \"Inbound \
         or outbound rules per security group\" (L-0EA8095F) and set the function's environment variable \
         {QUOTA_ENV} to the new value"
    )]
    QuotaReached { group: String, detail: String },
    #[error(
        "the function's environment variable {QUOTA_ENV} is {value:?}, not a number of rules; set it to the \
         account's \"Inbound or outbound rules per security group\" quota (e.g. 60, AWS's default) or remove it"
    )]
    QuotaSetting { value: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("security group {group} kept changing while its rules were reconciled ({last}); retry the update")]
    Contended { group: String, last: String },
}
