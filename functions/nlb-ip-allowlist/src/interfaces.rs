//! The load balancer's network interfaces: found by the exact description AWS gives them, counted only
//! when AWS made them for a Network Load Balancer in the group's VPC (a description anyone can copy),
//! and waited for while the load balancer is still provisioning.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, NetworkInterface, NetworkInterfaceType};
use stackhand::aws::{AwsResultExt as _, RETRY_WINDOW};
use stackhand::cfn::RequestInfo;
use tokio::time::Instant;

use crate::allowlist::Allowlist;
use crate::error::AllowlistError;
use crate::props::{NlbArn, Properties};

/// Waiting for a load balancer's interfaces: the first pause, doubling up to the longest.
const FIRST_POLL: Duration = Duration::from_secs(2);
const LONGEST_POLL: Duration = Duration::from_secs(15);
/// Left after the wait for the rules' reads and writes, the failed Create's undo and the answer.
pub(crate) const AFTER_WAIT: Duration = RETRY_WINDOW.saturating_add(Duration::from_secs(4));
/// How long to wait outside any invocation deadline (never in Lambda: the runtime always sets one).
const UNSCOPED_WAIT: Duration = Duration::from_secs(60);

/// Interfaces that carry the load balancer's description but do not count, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ignored {
    /// Created through the EC2 API (by anyone who may create interfaces), not by AWS for a service.
    NotRequesterManaged,
    /// Made by AWS, but not for a Network Load Balancer.
    NotLoadBalancer(String),
    /// A load balancer's interface in another VPC than the group's.
    OtherVpc(String),
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotRequesterManaged => f.write_str("not requester-managed"),
            Self::NotLoadBalancer(kind) => write!(f, "interface type {kind}"),
            Self::OtherVpc(vpc) => write!(f, "in {vpc}"),
        }
    }
}

/// What the description found: the addresses of the interfaces that count, and those ignored.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub addresses: Vec<IpAddr>,
    pub ignored: Vec<(String, Ignored)>,
}

impl Found {
    /// The VPC of the load balancer's interfaces when all of them are outside the group's.
    fn only_elsewhere(&self) -> Option<&str> {
        if !self.addresses.is_empty() {
            return None;
        }
        let mut vpcs = self.ignored.iter().filter_map(|(_, why)| match why {
            Ignored::OtherVpc(vpc) => Some(vpc.as_str()),
            _ => None,
        });
        vpcs.next()
    }

    /// For the error when nothing counted: what was ignored.
    fn ignored_sentence(&self) -> String {
        let forged = self.ignored.iter().filter(|(_, why)| !matches!(why, Ignored::OtherVpc(_))).count();
        if forged == 0 {
            return String::new();
        }
        format!(
            ". {forged} interface(s) with that description were ignored: not created by Elastic Load Balancing \
             for a Network Load Balancer (RequesterManaged false, or InterfaceType not network_load_balancer), \
             as anyone who may create network interfaces can copy a description"
        )
    }
}

/// Whether an interface with the load balancer's description is one AWS made for a Network Load
/// Balancer in `vpc`: requester-managed (no API caller can set that), of type `network_load_balancer`
/// (CreateNetworkInterface cannot create that type), in the group's VPC.
pub(crate) fn classify(eni: &NetworkInterface, vpc: &str) -> Result<(), Ignored> {
    if eni.requester_managed() != Some(true) {
        return Err(Ignored::NotRequesterManaged);
    }
    match eni.interface_type() {
        Some(NetworkInterfaceType::NetworkLoadBalancer) => {}
        other => return Err(Ignored::NotLoadBalancer(other.map_or("none", |t| t.as_str()).to_owned())),
    }
    match eni.vpc_id() {
        Some(v) if v == vpc => Ok(()),
        other => Err(Ignored::OtherVpc(other.unwrap_or("no VPC").to_owned())),
    }
}

/// The load balancer must be in the function's own account and Region: its interfaces could not be
/// described otherwise, and a look-alike elsewhere must never be taken for it. The account and Region
/// come from the invoked function's ARN, which Lambda (not the caller) supplies; a local emulator may
/// give no ARN, and then only the Region (`AWS_REGION`) is compared.
pub(crate) fn check_home(request: &RequestInfo, arn: &NlbArn) -> Result<(), AllowlistError> {
    let (account, region) = match request.function_account_and_region() {
        Some((account, region)) => (Some(account.to_owned()), region.to_owned()),
        None => {
            let region = std::env::var("AWS_REGION").unwrap_or_default();
            tracing::warn!(
                function_arn = %request.function_arn,
                %region,
                "the invoked function ARN is not a Lambda ARN (a local emulator?): only the load balancer's Region \
                 is compared"
            );
            (None, region)
        }
    };
    let same_account = account.as_deref().is_none_or(|a| a == arn.account);
    if same_account && region == arn.region {
        return Ok(());
    }
    let own = match &account {
        Some(a) => format!("account {a}, Region {region}"),
        None => format!("Region {region}"),
    };
    Err(AllowlistError::ForeignLoadBalancer {
        arn: arn.arn.clone(),
        account: arn.account.clone(),
        region: arn.region.clone(),
        own,
    })
}

/// The warning naming the interfaces that carry the load balancer's description but do not count.
pub const IGNORED_LOG: &str = "ignored interfaces AWS did not make for this load balancer in the group's VPC";

/// At most this many ignored interface ids in a log line.
const LOGGED_IDS: usize = 10;

impl Allowlist {
    /// Private IPv4 and IPv6 addresses of every interface whose description is exactly the NLB's and
    /// that AWS made for a Network Load Balancer in `vpc` ([`classify`]); the others are ignored.
    pub(crate) async fn interface_addresses(&self, props: &Properties, vpc: &str) -> Result<Found, AllowlistError> {
        let description = props.load_balancer_arn.interface_description();
        let mut pages = self
            .ec2
            .describe_network_interfaces()
            .filters(Filter::builder().name("description").values(&description).build())
            .into_paginator()
            .send();
        let mut addresses = BTreeSet::new();
        let mut found = Found::default();
        let mut interfaces = 0;
        while let Some(page) = pages.next().await {
            let page = page.op("DescribeNetworkInterfaces")?;
            // The filter is exact on AWS; checking again keeps a lenient emulator honest too.
            for eni in page.network_interfaces().iter().filter(|n| n.description() == Some(description.as_str())) {
                if let Err(why) = classify(eni, vpc) {
                    found.ignored.push((eni.network_interface_id().unwrap_or_default().to_owned(), why));
                    continue;
                }
                interfaces += 1;
                let v4 = eni.private_ip_addresses().iter().filter_map(|a| a.private_ip_address());
                let v4 = v4.chain(eni.private_ip_address());
                let v6 = eni.ipv6_addresses().iter().filter_map(|a| a.ipv6_address());
                addresses.extend(v4.chain(v6).filter_map(|a| a.parse::<IpAddr>().ok()));
            }
        }
        if !found.ignored.is_empty() {
            let ids: Vec<String> =
                found.ignored.iter().take(LOGGED_IDS).map(|(id, why)| format!("{id} ({why})")).collect();
            tracing::warn!(
                ignored = found.ignored.len(),
                ids = %ids.join(", "),
                %description,
                "{}",
                IGNORED_LOG
            );
        }
        tracing::info!(interfaces, addresses = addresses.len(), %description, "found load balancer interfaces");
        found.addresses = addresses.into_iter().collect();
        Ok(found)
    }

    /// The NLB's addresses, waiting for them while it is still provisioning (created by another stack,
    /// or in this one without a dependency on it): polled with a backoff until shortly before the
    /// invocation's deadline, leaving [`AFTER_WAIT`] for the rules and the answer. Interfaces of the
    /// load balancer in another VPC than the group's end the wait at once: they will not move.
    pub(crate) async fn wait_for_addresses(&self, props: &Properties, vpc: &str) -> Result<Found, AllowlistError> {
        let started = Instant::now();
        let give_up = match stackhand::aws::deadline() {
            Some(deadline) => deadline.checked_sub(AFTER_WAIT).unwrap_or(started).max(started),
            None => started + UNSCOPED_WAIT,
        };
        let mut pause = FIRST_POLL;
        loop {
            let found = self.interface_addresses(props, vpc).await?;
            if !found.addresses.is_empty() {
                return Ok(found);
            }
            if let Some(elsewhere) = found.only_elsewhere() {
                return Err(AllowlistError::OtherVpc {
                    arn: props.load_balancer_arn.arn.clone(),
                    nlb_vpc: elsewhere.to_owned(),
                    group: props.security_group_id.0.clone(),
                    group_vpc: vpc.to_owned(),
                });
            }
            let now = Instant::now();
            if now >= give_up {
                return Err(AllowlistError::NoInterfaces {
                    arn: props.load_balancer_arn.arn.clone(),
                    description: props.load_balancer_arn.interface_description(),
                    waited_s: now.duration_since(started).as_secs(),
                    ignored: found.ignored_sentence(),
                });
            }
            let wait = pause.min(give_up - now);
            tracing::info!(wait_ms = wait.as_millis() as u64, "the load balancer has no interfaces yet; waiting");
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(LONGEST_POLL);
        }
    }
}
