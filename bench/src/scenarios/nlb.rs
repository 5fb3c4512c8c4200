//! nlb-ip-allowlist against the NLB-whitelisting function as commonly published
//! (bench/peers/nlb_whitelist.py): the cold start, and the AWS calls one Create makes.

use std::process::Command;

use serde_json::json;
use testkit::local::{self, moto_url};

use super::{cold_rows, one_cold_run, python_peer, CFN_PEER, RUNS};
use crate::report::Row;

const NLB_TYPE: &str = "Custom::NlbIpAllowlist";
const NLB_PEER: &str = "nlb_whitelist.lambda_handler";

const FIRST_INVOCATION_NOTE: &str = "both against the same moto; the peer (bench/peers/nlb_whitelist.py) makes one \
     call per address and port, stackhand one per port range";

/// A fresh security group and an NLB with `enis` interfaces; returns the Create properties.
async fn nlb_world(enis: usize, octet: u8) -> serde_json::Value {
    let ec2 = local::ec2().await;
    let net = local::network(&ec2, octet).await;
    let name = testkit::unique("bench-nlb").replace('_', "-");
    let group = local::security_group(&ec2, &net.vpc_id, &name).await;
    // The group opts in, as nlb-ip-allowlist requires (the peer does not look).
    let opt_in = aws_sdk_ec2::types::Tag::builder().key("stackhand:allowlist").value("true").build();
    ec2.create_tags().resources(&group).tags(opt_in).send().await.expect("CreateTags");
    let id = format!("{:016x}", fastrand::u64(..));
    for i in 0..enis {
        let subnet = &net.subnet_ids[i % net.subnet_ids.len()];
        local::nlb_interface(&ec2, subnet, &format!("ELB net/{name}/{id}"), None).await;
    }
    json!({
        "LoadBalancerArn": format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/{name}/{id}"),
        "SecurityGroupId": group, "Ports": ["9090", "8000-8100"],
    })
}

pub async fn cold_start(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/nlb-ip-allowlist");
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    // Both through testkit's proxy, which answers the seeded interfaces requester-managed, as AWS does
    // for a load balancer's (moto never does, and nlb-ip-allowlist counts no others).
    let aws = testkit::ThrottlingProxy::counting(&moto_url()).await.url();
    for run in 0..RUNS {
        let octet = 100 + (run as u8) * 2;
        ours.push(one_cold_run(Command::new(&binary), NLB_TYPE, nlb_world(3, octet).await, &aws).await);
        peer.push(one_cold_run(python_peer(NLB_PEER), NLB_TYPE, nlb_world(3, octet + 1).await, &aws).await);
    }
    cold_rows("nlb", "3 ENIs, 2 port ranges", &ours, CFN_PEER, &peer, FIRST_INVOCATION_NOTE)
}

pub async fn api_calls(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/nlb-ip-allowlist");
    let mut rows = Vec::new();
    for (i, enis) in [2usize, 6, 12].into_iter().enumerate() {
        let mut counts = [0.0; 2];
        for (side, count) in counts.iter_mut().enumerate() {
            let proxy = testkit::ThrottlingProxy::start(&moto_url(), usize::MAX).await;
            let command = if side == 0 { Command::new(&binary) } else { python_peer(NLB_PEER) };
            let props = nlb_world(enis, 120 + (i * 2 + side) as u8).await;
            let before = proxy.seen();
            one_cold_run(command, NLB_TYPE, props, &proxy.url()).await;
            *count = (proxy.seen() - before) as f64;
        }
        rows.push(Row {
            scenario: format!("nlb-api-calls-{enis}: AWS calls for one Create, {enis} ENIs x 2 port ranges"),
            unit: "calls",
            ours: counts[0],
            peer_name: "the same Python peer",
            peer: counts[1],
            note: String::new(),
        });
    }
    rows
}
