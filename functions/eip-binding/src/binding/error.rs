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
        "the pool {pool} has no free address: it holds {total} address(es), all associated{unbindable}{tried}; add Elastic IPs \
         tagged {pool} and stackhand:eip-bindable (about twice the number of instances that bind from it)"
    )]
    Exhausted { pool: String, total: usize, tried: String, unbindable: String },
    #[error(
        "{allocation} is associated with {holder}, which is not this resource's binding: an address moves only \
         from this resource's own earlier binding, whatever AllowReassociation says. Disassociate it from \
         {holder} first if it should move"
    )]
    Taken { allocation: String, holder: String },
    /// The address lacks the owner's bindable tag.
    #[error(
        "AllocationId {allocation} is not an address stacks may bind: it lacks the tag {key}={value}, which the \
         owner of the stackhand stack puts on the Elastic IPs it reserves for binding (the value is the \
         template's EipBindableTagValue, env EIP_BINDABLE_TAG_VALUE)"
    )]
    NotBindable { allocation: String, key: &'static str, value: String },
    #[error(
        "{target} already has the Elastic IP {public_ip} ({allocation}) on {private_ip}, which is not from {from}: \
         binding would silently replace it. Disassociate it first, or name another PrivateIpAddress"
    )]
    Occupied { target: String, public_ip: String, allocation: String, private_ip: String, from: String },
}
