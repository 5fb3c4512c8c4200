//! eip-binding against pool binding as commonly published (bench/peers/eip_pool.py): the cold start
//! of a Create binding one address of a 2-address pool to an instance.

use std::process::Command;

use serde_json::json;
use testkit::local::{self, moto_url};

use super::{cold_rows, one_cold_run, python_peer, CFN_PEER, RUNS};
use crate::report::Row;

const EIP_PEER: &str = "eip_pool.lambda_handler";

const FIRST_INVOCATION_NOTE: &str = "the peer (bench/peers/eip_pool.py) describes the pool and associates its first \
     free address: 2 round trips. stackhand reads the instance's primary interface and the pool at once, \
     associates, then tags the address with its owner: 3 round trips, so against moto it is about one round trip \
     slower. The tag is what lets a Delete release only its own binding and a retried Create recognise its own; a \
     lost race moves on to the next free address where the peer fails";

/// A fresh instance and a pool of two free Elastic IPs tagged for it; returns the Create properties
/// and the pool's tag value.
async fn eip_world(octet: u8) -> (serde_json::Value, String) {
    let ec2 = local::ec2().await;
    let subnet = local::network(&ec2, octet).await.subnet_ids[0].clone();
    let instance = local::instance(&ec2, &subnet, &[]).await;
    let pool = testkit::unique("bench-pool");
    for _ in 0..2 {
        local::elastic_ip(&ec2, &[("eip-pool", &pool)]).await;
    }
    (json!({"InstanceId": instance, "PoolTag": format!("eip-pool={pool}")}), pool)
}

/// How many of the pool's addresses are associated.
async fn bound_in(pool: &str) -> usize {
    let filter = aws_sdk_ec2::types::Filter::builder().name("tag:eip-pool").values(pool).build();
    let out = local::ec2().await.describe_addresses().filters(filter).send().await.expect("DescribeAddresses");
    out.addresses().iter().filter(|a| a.association_id().is_some()).count()
}

pub async fn cold_start(bin_dir: &str) -> Vec<Row> {
    let binary = format!("{bin_dir}/eip-binding");
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let octet = 140 + (run as u8) * 2;
        for (side, runs) in [&mut ours, &mut peer].into_iter().enumerate() {
            let command = if side == 0 { Command::new(&binary) } else { python_peer(EIP_PEER) };
            let (props, pool) = eip_world(octet + side as u8).await;
            runs.push(one_cold_run(command, "Custom::EipBinding", props, &moto_url()).await);
            assert_eq!(bound_in(&pool).await, 1, "one address of {pool} bound");
        }
    }
    cold_rows(
        "eip",
        "bind one address of a 2-address pool to an instance",
        &ours,
        CFN_PEER,
        &peer,
        FIRST_INVOCATION_NOTE,
    )
}
