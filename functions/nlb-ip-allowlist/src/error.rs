//! What a Create, Update or Delete of an allowlist can fail with: each names the property and the fix.

use stackhand::aws::AwsError;

use crate::settings::{GROUP_TAG_ENV, GROUP_TAG_KEY, QUOTA_ENV};

#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    #[error(
        "no network interfaces found for {arn} (LoadBalancerArn) after waiting {waited_s} s: searched every \
         Availability Zone for the description {description:?}; check that the Network Load Balancer exists in \
         this account and Region and has finished provisioning, then retry{ignored}"
    )]
    NoInterfaces { arn: String, description: String, waited_s: u64, ignored: String },
    #[error(
        "security group {group} (SecurityGroupId) has not opted in to stackhand allowlists: it {found}, and this \
         function adds or changes rules only in groups tagged {GROUP_TAG_KEY}={value}; nothing was changed. The \
         group's owner allows it by tagging the group {GROUP_TAG_KEY}={value}; the value is the function owner's \
         setting (template parameter AllowlistGroupTagValue, environment variable {GROUP_TAG_ENV}). A Delete \
         still removes this resource's own rules from an untagged group"
    )]
    NotOptedIn { group: String, found: String, value: String },
    #[error(
        "security group {group} (SecurityGroupId) was not found in this account and Region ({detail}); name a \
         group of the VPC the load balancer is in"
    )]
    GroupNotFound { group: String, detail: String },
    #[error(
        "{arn} (LoadBalancerArn) is in account {account}, Region {region}; this function allowlists only load \
         balancers of its own account and Region ({own}). Use the ServiceToken of a stackhand stack deployed in \
         the load balancer's account and Region"
    )]
    ForeignLoadBalancer { arn: String, account: String, region: String, own: String },
    #[error(
        "the interfaces of {arn} (LoadBalancerArn) are in {nlb_vpc}, but security group {group} \
         (SecurityGroupId) is in {group_vpc}: a load balancer's addresses belong in a group of its own VPC; \
         name one, or the load balancer of that VPC"
    )]
    OtherVpc { arn: String, nlb_vpc: String, group: String, group_vpc: String },
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
