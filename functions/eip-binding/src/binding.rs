//! Binding an Elastic IP to an interface, race-safe: candidates are tried with AllowReassociation=false
//! so two binders never both "win" one address; the winner tags the address with its owner and the
//! association it made, so that a later release touches only that association.

use aws_sdk_ec2::types::{Address, Filter, Tag};
use stackhand::aws::{describe_error, error_code};

use crate::props::{Source, Target};

/// Tag on an address: who bound it (a physical id, or `instance/<id>` for EventBridge bindings).
pub const OWNER_TAG: &str = "stackhand:eip-binding";
/// Tag on an address: the association that owner made.
pub const ASSOCIATION_TAG: &str = "stackhand:eip-association";

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Aws(String),
    #[error(
        "the pool {pool} has no free address: it holds {total} address(es), all associated{tried}; add Elastic IPs \
         tagged {pool} (about twice the number of instances that bind from it)"
    )]
    Exhausted { pool: String, total: usize, tried: String },
    #[error("{allocation} is associated with {holder}; set AllowReassociation to \"true\" to move it")]
    Taken { allocation: String, holder: String },
}

/// Where an address goes: an interface, one of its private addresses, and its instance if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    pub interface: String,
    pub private_ip: Option<String>,
    pub instance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub public_ip: String,
    pub allocation_id: String,
    pub association_id: String,
    /// False when the target already held an address of the source.
    pub newly: bool,
}

pub struct Binder {
    ec2: aws_sdk_ec2::Client,
}

fn tag<'a>(address: &'a Address, key: &str) -> Option<&'a str> {
    address.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

impl Binder {
    pub fn new(ec2: aws_sdk_ec2::Client) -> Self {
        Self { ec2 }
    }

    /// The instance's primary interface (device index 0) and primary private address, and its tags.
    pub async fn instance(&self, id: &str) -> Result<(Spot, Vec<Tag>), BindError> {
        let out = self.ec2.describe_instances().instance_ids(id).send().await.map_err(|e| match error_code(&e) {
            Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed") => {
                BindError::Input(format!("InstanceId {id} does not exist in this account and Region"))
            }
            _ => BindError::Aws(describe_error("DescribeInstances", &e)),
        })?;
        let instance =
            out.reservations().iter().flat_map(|r| r.instances()).find(|i| i.instance_id() == Some(id)).ok_or_else(
                || BindError::Input(format!("InstanceId {id} does not exist in this account and Region")),
            )?;
        let primary = instance
            .network_interfaces()
            .iter()
            .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
            .ok_or_else(|| {
                BindError::Input(format!("instance {id} has no primary network interface (device index 0)"))
            })?;
        let spot = Spot {
            interface: primary.network_interface_id().unwrap_or_default().to_owned(),
            private_ip: primary.private_ip_address().map(str::to_owned),
            instance: Some(id.to_owned()),
        };
        Ok((spot, instance.tags().to_vec()))
    }

    pub async fn resolve(&self, target: &Target) -> Result<Spot, BindError> {
        match target {
            Target::Instance(id) => Ok(self.instance(id).await?.0),
            Target::Interface { id, private_ip } => {
                Ok(Spot { interface: id.clone(), private_ip: private_ip.map(|ip| ip.to_string()), instance: None })
            }
        }
    }

    /// The addresses of the source: the one allocation, or every address tagged with the pool tag.
    async fn addresses(&self, source: &Source) -> Result<Vec<Address>, BindError> {
        let request = match source {
            Source::Allocation(id) => self.ec2.describe_addresses().allocation_ids(id),
            Source::Pool { key, value } => self
                .ec2
                .describe_addresses()
                .filters(Filter::builder().name(format!("tag:{key}")).values(value).build()),
        };
        let out = request.send().await.map_err(|e| match (error_code(&e), source) {
            (Some("InvalidAllocationID.NotFound"), Source::Allocation(id)) => {
                BindError::Input(format!("AllocationId {id} does not exist in this account and Region"))
            }
            _ => BindError::Aws(describe_error("DescribeAddresses", &e)),
        })?;
        Ok(out.addresses().to_vec())
    }

    /// Binds an address of `source` to `spot` for `owner`, or finds the one it already holds.
    pub async fn bind(
        &self,
        spot: &Spot,
        source: &Source,
        allow_reassociation: bool,
        owner: &str,
    ) -> Result<Bound, BindError> {
        let addresses = self.addresses(source).await?;
        self.bind_from(spot, source, addresses, allow_reassociation, owner).await
    }

    /// [`Binder::bind`] to `target`, resolving it while the source's addresses are read: the two
    /// reads are independent, so a Create waits for one round trip instead of two.
    pub async fn bind_target(
        &self,
        target: &Target,
        source: &Source,
        allow_reassociation: bool,
        owner: &str,
    ) -> Result<Bound, BindError> {
        let (spot, addresses) = tokio::try_join!(self.resolve(target), self.addresses(source))?;
        self.bind_from(&spot, source, addresses, allow_reassociation, owner).await
    }

    async fn bind_from(
        &self,
        spot: &Spot,
        source: &Source,
        addresses: Vec<Address>,
        allow_reassociation: bool,
        owner: &str,
    ) -> Result<Bound, BindError> {
        let holds = |a: &&Address| {
            a.network_interface_id() == Some(spot.interface.as_str())
                && spot.private_ip.as_deref().is_none_or(|ip| a.private_ip_address() == Some(ip))
        };
        if let Some(held) = addresses.iter().find(holds) {
            let bound = bound(held, false);
            // An untagged address on exactly this target is taken as this owner's earlier work (a
            // binding whose tagging was cut short); another owner's stays theirs.
            if tag(held, OWNER_TAG).is_none() {
                self.tag(&bound, owner).await?;
            }
            tracing::info!(target = %spot.interface, public_ip = %bound.public_ip, "already bound");
            return Ok(bound);
        }
        let mut candidates: Vec<&Address> = match source {
            Source::Allocation(id) => {
                let address =
                    addresses.first().ok_or_else(|| BindError::Input(format!("AllocationId {id} does not exist")))?;
                if let (Some(holder), false) = (address.association_id(), allow_reassociation) {
                    let holder = address.instance_id().or(address.network_interface_id()).unwrap_or(holder);
                    return Err(BindError::Taken { allocation: id.clone(), holder: holder.to_owned() });
                }
                vec![address]
            }
            Source::Pool { .. } => addresses.iter().filter(|a| a.association_id().is_none()).collect(),
        };
        fastrand::shuffle(&mut candidates);
        let mut lost = 0;
        for candidate in &candidates {
            let allocation = candidate.allocation_id().unwrap_or_default();
            let sent = self
                .ec2
                .associate_address()
                .allocation_id(allocation)
                .network_interface_id(&spot.interface)
                .set_private_ip_address(spot.private_ip.clone())
                .allow_reassociation(allow_reassociation)
                .send()
                .await;
            match sent {
                Ok(out) => {
                    let bound = Bound {
                        public_ip: candidate.public_ip().unwrap_or_default().to_owned(),
                        allocation_id: allocation.to_owned(),
                        association_id: out.association_id().unwrap_or_default().to_owned(),
                        newly: true,
                    };
                    self.tag(&bound, owner).await?;
                    tracing::info!(target = %spot.interface, public_ip = %bound.public_ip, lost, "bound");
                    return Ok(bound);
                }
                // Someone else won this one between our read and our call: try the next.
                Err(e) if error_code(&e) == Some("Resource.AlreadyAssociated") => {
                    lost += 1;
                    tracing::info!(allocation, "taken meanwhile; trying the next address");
                }
                Err(e) => return Err(BindError::Aws(describe_error("AssociateAddress", &e))),
            }
        }
        Err(BindError::Exhausted {
            pool: source.describe(),
            total: addresses.len(),
            tried: if lost > 0 {
                format!(" ({lost} taken by others while this run tried them)")
            } else {
                String::new()
            },
        })
    }

    async fn tag(&self, bound: &Bound, owner: &str) -> Result<(), BindError> {
        self.ec2
            .create_tags()
            .resources(&bound.allocation_id)
            .tags(Tag::builder().key(OWNER_TAG).value(owner).build())
            .tags(Tag::builder().key(ASSOCIATION_TAG).value(&bound.association_id).build())
            .send()
            .await
            .map_err(|e| BindError::Aws(describe_error("CreateTags", &e)))?;
        Ok(())
    }

    /// Disassociates the addresses `owner` bound, where the association is still the one it made;
    /// an address since re-associated elsewhere, or already free, is left alone. Our tags go either way.
    pub async fn release(&self, source: &Source, owner: &str) -> Result<usize, BindError> {
        let mut released = 0;
        for address in self.addresses(source).await?.iter().filter(|a| tag(a, OWNER_TAG) == Some(owner)) {
            let ours = tag(address, ASSOCIATION_TAG);
            match address.association_id() {
                Some(current) if Some(current) == ours => {
                    let sent = self.ec2.disassociate_address().association_id(current).send().await;
                    match sent {
                        Ok(_) => released += 1,
                        Err(e) if error_code(&e) == Some("InvalidAssociationID.NotFound") => {}
                        Err(e) => return Err(BindError::Aws(describe_error("DisassociateAddress", &e))),
                    }
                }
                other => tracing::info!(
                    allocation = address.allocation_id().unwrap_or_default(),
                    current = other.unwrap_or("none"),
                    "the address is no longer on the association this resource made; left alone"
                ),
            }
            self.ec2
                .delete_tags()
                .resources(address.allocation_id().unwrap_or_default())
                .tags(Tag::builder().key(OWNER_TAG).build())
                .tags(Tag::builder().key(ASSOCIATION_TAG).build())
                .send()
                .await
                .map_err(|e| BindError::Aws(describe_error("DeleteTags", &e)))?;
        }
        Ok(released)
    }
}

fn bound(address: &Address, newly: bool) -> Bound {
    Bound {
        public_ip: address.public_ip().unwrap_or_default().to_owned(),
        allocation_id: address.allocation_id().unwrap_or_default().to_owned(),
        association_id: address.association_id().unwrap_or_default().to_owned(),
        newly,
    }
}

/// The race moto cannot be made to lose on cue: another binder associates the address between our
/// read and our call.
#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::operation::associate_address::{AssociateAddressError, AssociateAddressOutput};
    use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
    use aws_sdk_ec2::operation::describe_addresses::DescribeAddressesOutput;
    use aws_sdk_ec2::Client;
    use aws_smithy_mocks::{mock, Rule};
    use aws_smithy_types::error::ErrorMetadata;

    fn client(rules: &[&Rule]) -> Client {
        testkit::mock_ec2(rules)
    }

    fn free_pool() -> Rule {
        mock!(Client::describe_addresses).then_output(|| {
            let address = |id: &str, ip: &str| Address::builder().allocation_id(id).public_ip(ip).build();
            DescribeAddressesOutput::builder()
                .addresses(address("eipalloc-00000001", "198.51.100.1"))
                .addresses(address("eipalloc-00000002", "198.51.100.2"))
                .build()
        })
    }

    fn already_associated() -> Rule {
        mock!(Client::associate_address).then_error(|| {
            AssociateAddressError::generic(ErrorMetadata::builder().code("Resource.AlreadyAssociated").build())
        })
    }

    const POOL: fn() -> Source = || Source::Pool { key: "eip-pool".into(), value: "app".into() };

    fn spot() -> Spot {
        Spot { interface: "eni-0123456789abcdef0".into(), private_ip: None, instance: None }
    }

    #[tokio::test]
    async fn losing_a_race_moves_on_to_the_next_free_address() {
        let pool = free_pool();
        let lost = already_associated();
        let won = mock!(Client::associate_address)
            .then_output(|| AssociateAddressOutput::builder().association_id("eipassoc-0000000a").build());
        let tagged = mock!(Client::create_tags)
            .match_requests(|r| r.tags().iter().any(|t| t.value() == Some("eipassoc-0000000a")))
            .then_output(|| CreateTagsOutput::builder().build());
        let binder = Binder::new(client(&[&pool, &lost, &won, &tagged]));
        let bound = binder.bind(&spot(), &POOL(), false, "owner-1").await.unwrap();
        assert_eq!(bound.association_id, "eipassoc-0000000a");
        assert!(bound.newly);
        assert_eq!((lost.num_calls(), won.num_calls(), tagged.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn losing_every_race_says_the_pool_ran_out_and_why() {
        let pool = free_pool();
        let (first, second) = (already_associated(), already_associated());
        let binder = Binder::new(client(&[&pool, &first, &second]));
        let err = binder.bind(&spot(), &POOL(), false, "owner-1").await.unwrap_err().to_string();
        assert!(err.contains("eip-pool=app has no free address: it holds 2 address(es)"), "{err}");
        assert!(err.contains("2 taken by others while this run tried them"), "{err}");
    }
}
