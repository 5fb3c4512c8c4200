//! `nlb-ip-allowlist`: `Custom::NlbIpAllowlist` — an NLB's private addresses allowed into a security
//! group. The binary (`main.rs`) only wires it to the Lambda runtime.

pub mod allowlist;
mod error;
mod group;
pub mod interfaces;
mod plan;
mod props;
pub mod resource;
mod rules;
mod settings;
