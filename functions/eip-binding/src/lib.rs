//! `eip-binding`: `Custom::EipBinding` and the EC2 state-change events — Elastic IPs bound from a
//! reserved pool, race-safe. The binary (`main.rs`) only wires it to the Lambda runtime.

pub mod binding;
mod props;
pub mod resource;
pub mod state_change;
