//! The load balancer's network interfaces: found by the exact description AWS gives them, and waited
//! for while the load balancer is still provisioning.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use stackhand::aws::{AwsResultExt as _, RETRY_WINDOW};
use tokio::time::Instant;

use crate::allowlist::Allowlist;
use crate::error::AllowlistError;
use crate::props::Properties;

/// Waiting for a load balancer's interfaces: the first pause, doubling up to the longest.
const FIRST_POLL: Duration = Duration::from_secs(2);
const LONGEST_POLL: Duration = Duration::from_secs(15);
/// Left after the wait for the rules' reads and writes, the failed Create's undo and the answer.
pub(crate) const AFTER_WAIT: Duration = RETRY_WINDOW.saturating_add(Duration::from_secs(4));
/// How long to wait outside any invocation deadline (never in Lambda: the runtime always sets one).
const UNSCOPED_WAIT: Duration = Duration::from_secs(60);

impl Allowlist {
    /// Private IPv4 and IPv6 addresses of every interface whose description is exactly the NLB's.
    pub(crate) async fn interface_addresses(&self, props: &Properties) -> Result<Vec<IpAddr>, AllowlistError> {
        let description = props.load_balancer_arn.interface_description();
        let mut pages = self
            .ec2
            .describe_network_interfaces()
            .filters(Filter::builder().name("description").values(&description).build())
            .into_paginator()
            .send();
        let mut addresses = BTreeSet::new();
        let mut interfaces = 0;
        while let Some(page) = pages.next().await {
            let page = page.op("DescribeNetworkInterfaces")?;
            // The filter is exact on AWS; checking again keeps a lenient emulator honest too.
            for eni in page.network_interfaces().iter().filter(|n| n.description() == Some(description.as_str())) {
                interfaces += 1;
                let v4 = eni.private_ip_addresses().iter().filter_map(|a| a.private_ip_address());
                let v4 = v4.chain(eni.private_ip_address());
                let v6 = eni.ipv6_addresses().iter().filter_map(|a| a.ipv6_address());
                addresses.extend(v4.chain(v6).filter_map(|a| a.parse::<IpAddr>().ok()));
            }
        }
        tracing::info!(interfaces, addresses = addresses.len(), %description, "found load balancer interfaces");
        Ok(addresses.into_iter().collect())
    }

    /// The NLB's addresses, waiting for them while it is still provisioning (created by another stack,
    /// or in this one without a dependency on it): polled with a backoff until shortly before the
    /// invocation's deadline, leaving [`AFTER_WAIT`] for the rules and the answer.
    pub(crate) async fn wait_for_addresses(&self, props: &Properties) -> Result<Vec<IpAddr>, AllowlistError> {
        let started = Instant::now();
        let give_up = match stackhand::aws::deadline() {
            Some(deadline) => deadline.checked_sub(AFTER_WAIT).unwrap_or(started).max(started),
            None => started + UNSCOPED_WAIT,
        };
        let mut pause = FIRST_POLL;
        loop {
            let addresses = self.interface_addresses(props).await?;
            if !addresses.is_empty() {
                return Ok(addresses);
            }
            let now = Instant::now();
            if now >= give_up {
                return Err(AllowlistError::NoInterfaces {
                    arn: props.load_balancer_arn.arn.clone(),
                    description: props.load_balancer_arn.interface_description(),
                    waited_s: now.duration_since(started).as_secs(),
                });
            }
            let wait = pause.min(give_up - now);
            tracing::info!(wait_ms = wait.as_millis() as u64, "the load balancer has no interfaces yet; waiting");
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(LONGEST_POLL);
        }
    }
}
