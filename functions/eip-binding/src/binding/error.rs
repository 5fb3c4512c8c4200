//! What binding or releasing an address can fail with.

use stackhand::aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Tagging a new association failed: that error, and what became of the association.
    #[error("{0}")]
    Tagging(String),
    #[error(
        "the pool {pool} has no free address: it holds {total} address(es), all associated{tried}; add Elastic IPs \
         tagged {pool} (about twice the number of instances that bind from it)"
    )]
    Exhausted { pool: String, total: usize, tried: String },
    #[error("{allocation} is associated with {holder}; set AllowReassociation to \"true\" to move it")]
    Taken { allocation: String, holder: String },
    #[error(
        "{target} already has the Elastic IP {public_ip} ({allocation}) on {private_ip}, which is not from {from}: \
         binding would silently replace it. Disassociate it first, or name another PrivateIpAddress"
    )]
    Occupied { target: String, public_ip: String, allocation: String, private_ip: String, from: String },
}
