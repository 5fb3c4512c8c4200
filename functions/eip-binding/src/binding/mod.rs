//! Binding an Elastic IP to an interface, race-safe: candidates are tried with AllowReassociation=false
//! so two binders never both "win" one address; the winner tags the address with its owner and the
//! association it made, so that a later release touches only that association.
//!
//! Nothing is left behind a failure: a candidate is claimed (a tag) before it is associated, so that
//! an association whose tagging then fails can be undone at once under IAM that lets this function
//! disassociate only addresses it marked; a Delete finds a claimed, untagged association on its own
//! target too.

use std::time::Duration;

use aws_sdk_ec2::types::{Address, Filter, Tag};
use stackhand::aws::AwsResultExt as _;
use tokio::time::Instant;

use crate::props::{Source, Target};

/// Tag on an address: who bound it (a physical id, or `instance/<id>` for EventBridge bindings).
pub const OWNER_TAG: &str = "stackhand:eip-binding";
/// Tag on an address: the association that owner made.
pub const ASSOCIATION_TAG: &str = "stackhand:eip-association";
/// Tag on an address: the CloudFormation resource (a digest of stack id and logical id) whose binding
/// holds it, the same across that resource's replacements (a new instance, a new physical id).
pub const RESOURCE_TAG: &str = "stackhand:eip-binding-resource";
/// Tag on an address: the owner about to associate it (written before AssociateAddress).
pub const CLAIM_TAG: &str = "stackhand:eip-binding-claim";
/// Tag the stackhand stack's owner puts on the addresses stacks may bind (the value is
/// `EIP_BINDABLE_TAG_VALUE`). IAM says the same: AssociateAddress and the claim tag only on such
/// addresses, so a stack author naming any AllocationId or pool reaches only what the owner reserved.
pub const BINDABLE_TAG: &str = "stackhand:eip-bindable";
/// The bindable tag's value when `EIP_BINDABLE_TAG_VALUE` is unset or empty (the template's default).
pub const DEFAULT_BINDABLE_VALUE: &str = "true";

/// How long a just-launched instance may stay unknown to DescribeInstances (EC2's eventual
/// consistency) before it is taken as not existing.
pub const INSTANCE_VISIBILITY_WAIT: Duration = Duration::from_secs(10);

mod error;
pub use error::BindError;

/// Where an address goes: an interface, one of its private addresses, and its instance if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    pub interface: String,
    pub private_ip: Option<String>,
    pub instance: Option<String>,
}

impl Spot {
    fn holds(&self, address: &Address) -> bool {
        address.network_interface_id() == Some(self.interface.as_str())
            && self.private_ip.as_deref().is_none_or(|ip| address.private_ip_address() == Some(ip))
    }
}

/// Who binds: the owner tag's value, and for a CloudFormation resource its stable identity.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub id: &'a str,
    pub resource: Option<&'a str>,
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
    /// The value of [`BINDABLE_TAG`] an address must carry to be bound.
    bindable: String,
}

fn tag<'a>(address: &'a Address, key: &str) -> Option<&'a str> {
    address.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

fn key(key: &str) -> Tag {
    Tag::builder().key(key).build()
}

fn pair(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

impl Binder {
    /// A binder of addresses tagged `stackhand:eip-bindable=true`.
    pub fn new(ec2: aws_sdk_ec2::Client) -> Self {
        Self { ec2, bindable: DEFAULT_BINDABLE_VALUE.to_owned() }
    }

    /// Binds only addresses whose [`BINDABLE_TAG`] is `value` (blank: the default, `true`).
    pub fn with_bindable_value(mut self, value: &str) -> Self {
        let value = value.trim();
        self.bindable = if value.is_empty() { DEFAULT_BINDABLE_VALUE } else { value }.to_owned();
        self
    }

    fn is_bindable(&self, address: &Address) -> bool {
        tag(address, BINDABLE_TAG) == Some(self.bindable.as_str())
    }

    fn not_bindable(&self, address: &Address) -> BindError {
        BindError::NotBindable {
            allocation: address.allocation_id().unwrap_or_default().to_owned(),
            key: BINDABLE_TAG,
            value: self.bindable.clone(),
        }
    }

    /// The instance's primary interface (device index 0) and primary private address, and its tags.
    /// An instance launched moments ago may not be visible yet: it is read again for
    /// [`INSTANCE_VISIBILITY_WAIT`] (within the invocation's deadline) before it is called unknown.
    pub async fn instance(&self, id: &str) -> Result<(Spot, Vec<Tag>), BindError> {
        self.instance_waiting(id, INSTANCE_VISIBILITY_WAIT).await
    }

    async fn instance_waiting(&self, id: &str, wait: Duration) -> Result<(Spot, Vec<Tag>), BindError> {
        let give_up = Instant::now() + wait;
        let give_up = stackhand::aws::deadline()
            .map(|d| d.checked_sub(stackhand::aws::RETRY_WINDOW).unwrap_or(d).min(give_up))
            .unwrap_or(give_up);
        let mut pause = Duration::from_millis(500);
        let out = loop {
            match self.ec2.describe_instances().instance_ids(id).send().await.op("DescribeInstances") {
                Ok(out) => break out,
                Err(e) if e.code() == Some("InvalidInstanceID.NotFound") && Instant::now() + pause < give_up => {
                    tracing::info!(instance = id, "not visible yet (eventual consistency); reading it again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(4));
                }
                Err(e) => {
                    return Err(match e.code() {
                        Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed") => {
                            BindError::Input(format!("InstanceId {id} does not exist in this account and Region"))
                        }
                        _ => BindError::Aws(e),
                    })
                }
            }
        };
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

    /// The target's spot without waiting for an instance to become visible, or None if it is gone.
    async fn spot_if_any(&self, target: &Target) -> Option<Spot> {
        match target {
            Target::Instance(id) => self.instance_waiting(id, Duration::ZERO).await.ok().map(|(spot, _)| spot),
            Target::Interface { .. } => self.resolve(target).await.ok(),
        }
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
        let out = request.send().await.op("DescribeAddresses").map_err(|e| match (e.code(), source) {
            (Some("InvalidAllocationID.NotFound"), Source::Allocation(id)) => {
                BindError::Input(format!("AllocationId {id} does not exist in this account and Region"))
            }
            _ => BindError::Aws(e),
        })?;
        Ok(out.addresses().to_vec())
    }

    /// Every address on the target (any source): an instance's (all its interfaces) or an interface's.
    async fn addresses_on(&self, target: &Target) -> Result<Vec<Address>, BindError> {
        let (name, value) = match target {
            Target::Instance(id) => ("instance-id", id.as_str()),
            Target::Interface { id, .. } => ("network-interface-id", id.as_str()),
        };
        self.described(Filter::builder().name(name).values(value).build()).await
    }

    async fn described(&self, filter: Filter) -> Result<Vec<Address>, BindError> {
        let out = self.ec2.describe_addresses().filters(filter).send().await.op("DescribeAddresses")?;
        Ok(out.addresses().to_vec())
    }

    /// Binds an address of `source` to `spot` for `owner`, or finds the one it already holds.
    pub async fn bind(
        &self,
        spot: &Spot,
        source: &Source,
        allow_reassociation: bool,
        owner: Owner<'_>,
    ) -> Result<Bound, BindError> {
        let on_spot = self.described(Filter::builder().name("network-interface-id").values(&spot.interface).build());
        let (addresses, on_spot) = tokio::try_join!(self.addresses(source), on_spot)?;
        self.bind_from(spot, source, addresses, on_spot, allow_reassociation, owner).await
    }

    /// [`Binder::bind`] to `target`, resolving it while the source's and the target's addresses are
    /// read: the three reads are independent, so a Create waits for one round trip instead of three.
    pub async fn bind_target(
        &self,
        target: &Target,
        source: &Source,
        allow_reassociation: bool,
        owner: Owner<'_>,
    ) -> Result<Bound, BindError> {
        let (spot, addresses, on_target) =
            tokio::try_join!(self.resolve(target), self.addresses(source), self.addresses_on(target))?;
        self.bind_from(&spot, source, addresses, on_target, allow_reassociation, owner).await
    }

    async fn bind_from(
        &self,
        spot: &Spot,
        source: &Source,
        addresses: Vec<Address>,
        on_target: Vec<Address>,
        allow_reassociation: bool,
        owner: Owner<'_>,
    ) -> Result<Bound, BindError> {
        if let Some(held) = addresses.iter().find(|a| spot.holds(a)) {
            let bound = bound(held, false);
            // An untagged address on exactly this target is taken as this owner's earlier work (a
            // binding whose tagging was cut short), if it is one stacks may bind: taking it would
            // let this resource's Delete disassociate it. Another owner's stays theirs.
            if tag(held, OWNER_TAG).is_none() {
                if !self.is_bindable(held) {
                    return Err(self.not_bindable(held));
                }
                self.tag(&bound, owner).await?;
            }
            tracing::info!(target = %spot.interface, public_ip = %bound.public_ip, "already bound");
            return Ok(bound);
        }
        // Another address on the spot: associating would silently unhook it (at-least-once delivery,
        // a second binder, a manual association).
        if let Some(other) = on_target.iter().find(|a| spot.holds(a)) {
            return Err(BindError::Occupied {
                target: spot.instance.clone().unwrap_or_else(|| spot.interface.clone()),
                public_ip: other.public_ip().unwrap_or_default().to_owned(),
                allocation: other.allocation_id().unwrap_or_default().to_owned(),
                private_ip: other.private_ip_address().unwrap_or("its primary private address").to_owned(),
                from: match source {
                    Source::Pool { .. } => format!("the pool {}", source.describe()),
                    Source::Allocation(id) => id.clone(),
                },
            });
        }
        // AllowReassociation no longer widens anything: an address moves only from this resource's
        // own earlier binding (below), never from an association someone else made.
        if allow_reassociation {
            tracing::info!("AllowReassociation: an address moves only from this resource's own earlier binding");
        }
        let mut reassociate = false;
        let mut unbindable = 0;
        let mut candidates: Vec<&Address> = match source {
            Source::Allocation(id) => {
                let address =
                    addresses.first().ok_or_else(|| BindError::Input(format!("AllocationId {id} does not exist")))?;
                if !self.is_bindable(address) {
                    return Err(self.not_bindable(address));
                }
                if let Some(holder) = address.association_id() {
                    // This resource's own earlier binding (its instance being replaced): move it.
                    let own = owner.resource.is_some() && tag(address, RESOURCE_TAG) == owner.resource
                        || tag(address, OWNER_TAG) == Some(owner.id);
                    if !own {
                        let holder = address.instance_id().or(address.network_interface_id()).unwrap_or(holder);
                        return Err(BindError::Taken { allocation: id.clone(), holder: holder.to_owned() });
                    }
                    tracing::info!(
                        allocation = id.as_str(),
                        from = holder,
                        "moving the address from this resource's earlier binding"
                    );
                    reassociate = true;
                }
                vec![address]
            }
            Source::Pool { .. } => {
                let free: Vec<&Address> = addresses.iter().filter(|a| a.association_id().is_none()).collect();
                let (bindable, not): (Vec<&Address>, Vec<&Address>) =
                    free.into_iter().partition(|a| self.is_bindable(a));
                unbindable = not.len();
                bindable
            }
        };
        fastrand::shuffle(&mut candidates);
        let mut lost = 0;
        for candidate in &candidates {
            let allocation = candidate.allocation_id().unwrap_or_default();
            self.claim(allocation, owner).await?;
            let sent = self
                .ec2
                .associate_address()
                .allocation_id(allocation)
                .network_interface_id(&spot.interface)
                .set_private_ip_address(spot.private_ip.clone())
                .allow_reassociation(reassociate)
                .send()
                .await
                .op("AssociateAddress");
            match sent {
                Ok(out) => {
                    let bound = Bound {
                        public_ip: candidate.public_ip().unwrap_or_default().to_owned(),
                        allocation_id: allocation.to_owned(),
                        association_id: out.association_id().unwrap_or_default().to_owned(),
                        newly: true,
                    };
                    if let Err(failed) = self.tag(&bound, owner).await {
                        return Err(self.undo(&bound, owner, failed).await);
                    }
                    tracing::info!(target = %spot.interface, public_ip = %bound.public_ip, lost, "bound");
                    return Ok(bound);
                }
                // Someone else won this one between our read and our call: try the next.
                Err(e) if e.code() == Some("Resource.AlreadyAssociated") => {
                    lost += 1;
                    tracing::info!(allocation, "taken meanwhile; trying the next address");
                    self.unclaim(allocation, owner).await;
                }
                Err(e) => {
                    self.unclaim(allocation, owner).await;
                    return Err(e.into());
                }
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
            unbindable: if unbindable > 0 {
                format!(
                    " other than {unbindable} free one(s) without the tag {BINDABLE_TAG}={}, which the owner puts on \
                     the addresses stacks may bind",
                    self.bindable
                )
            } else {
                String::new()
            },
        })
    }

    /// Marks the address as about to be associated by `owner`, so that the association can be undone
    /// (IAM lets this function disassociate only addresses that carry its tags).
    async fn claim(&self, allocation: &str, owner: Owner<'_>) -> Result<(), BindError> {
        self.ec2.create_tags().resources(allocation).tags(pair(CLAIM_TAG, owner.id)).send().await.op("CreateTags")?;
        Ok(())
    }

    /// Removes this owner's claim (only if it is still this owner's: DeleteTags with a value deletes
    /// the tag only when the value matches). Best effort: a stale claim on a free address is harmless.
    async fn unclaim(&self, allocation: &str, owner: Owner<'_>) {
        let sent = self.ec2.delete_tags().resources(allocation).tags(pair(CLAIM_TAG, owner.id)).send().await;
        if let Err(e) = sent.op("DeleteTags") {
            tracing::warn!(allocation, error = %e, "the claim tag stays");
        }
    }

    /// Undoes an association whose tagging failed, and says what happened in the error.
    async fn undo(&self, bound: &Bound, owner: Owner<'_>, failed: BindError) -> BindError {
        let sent = self.ec2.disassociate_address().association_id(&bound.association_id).send().await;
        match sent.op("DisassociateAddress") {
            Ok(_) => {
                self.unclaim(&bound.allocation_id, owner).await;
                BindError::Tagging(format!("{failed}; the association {} was undone", bound.association_id))
            }
            Err(e) if e.code() == Some("InvalidAssociationID.NotFound") => {
                self.unclaim(&bound.allocation_id, owner).await;
                BindError::Tagging(format!("{failed}; the association {} is gone already", bound.association_id))
            }
            Err(e) => BindError::Tagging(format!(
                "{failed}; undoing the association {} failed too ({e}): the Delete finds it by its claim tag",
                bound.association_id,
            )),
        }
    }

    async fn tag(&self, bound: &Bound, owner: Owner<'_>) -> Result<(), BindError> {
        let mut request = self
            .ec2
            .create_tags()
            .resources(&bound.allocation_id)
            .tags(pair(OWNER_TAG, owner.id))
            .tags(pair(ASSOCIATION_TAG, &bound.association_id));
        if let Some(resource) = owner.resource {
            request = request.tags(pair(RESOURCE_TAG, resource));
        }
        request.send().await.op("CreateTags")?;
        Ok(())
    }

    /// Disassociates the addresses `owner` bound, where the association is still the one it made;
    /// an address since re-associated elsewhere, or already free, is left alone. Our tags go either way.
    /// An address this owner claimed but never tagged (a Create cut short between AssociateAddress and
    /// CreateTags) is released when it sits on `spot`, the target this owner bound to.
    /// A source that no longer exists (the allocation was released) has nothing left to release.
    pub async fn release(&self, source: &Source, owner: &str, target: Option<&Target>) -> Result<usize, BindError> {
        let addresses = match self.addresses(source).await {
            Ok(addresses) => addresses,
            Err(BindError::Input(why)) if matches!(source, Source::Allocation(_)) => {
                tracing::info!(%why, "the allocation is gone; nothing to release");
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        self.release_addresses(&addresses, owner, target).await
    }

    /// [`Binder::release`] by the owner tag alone, for a Delete whose properties no longer parse.
    pub async fn release_owned(&self, owner: &str) -> Result<usize, BindError> {
        let filter = Filter::builder().name(format!("tag:{OWNER_TAG}")).values(owner).build();
        let addresses = self.described(filter).await?;
        self.release_addresses(&addresses, owner, None).await
    }

    async fn release_addresses(
        &self,
        addresses: &[Address],
        owner: &str,
        target: Option<&Target>,
    ) -> Result<usize, BindError> {
        let mut released = 0;
        let mut spot: Option<Option<Spot>> = None;
        for address in addresses {
            let allocation = address.allocation_id().unwrap_or_default();
            let ours = match (tag(address, OWNER_TAG), tag(address, CLAIM_TAG)) {
                (Some(o), _) if o == owner => tag(address, ASSOCIATION_TAG),
                // Claimed, never tagged: ours if it sits on our target (read once, when first needed;
                // a target that is gone holds nothing).
                (None, Some(c)) if c == owner => {
                    if spot.is_none() {
                        spot = Some(match target {
                            Some(target) => self.spot_if_any(target).await,
                            None => None,
                        });
                    }
                    address
                        .association_id()
                        .filter(|_| spot.as_ref().and_then(Option::as_ref).is_some_and(|s| s.holds(address)))
                }
                _ => continue,
            };
            match address.association_id() {
                Some(current) if Some(current) == ours => {
                    let sent = self.ec2.disassociate_address().association_id(current).send().await;
                    match sent.op("DisassociateAddress") {
                        Ok(_) => released += 1,
                        Err(e) if e.code() == Some("InvalidAssociationID.NotFound") => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                other => tracing::info!(
                    allocation,
                    current = other.unwrap_or("none"),
                    "the address is no longer on the association this resource made; left alone"
                ),
            }
            let request = if tag(address, OWNER_TAG) == Some(owner) {
                self.ec2
                    .delete_tags()
                    .resources(allocation)
                    .tags(key(OWNER_TAG))
                    .tags(key(ASSOCIATION_TAG))
                    .tags(key(RESOURCE_TAG))
                    .tags(pair(CLAIM_TAG, owner))
            } else {
                self.ec2.delete_tags().resources(allocation).tags(pair(CLAIM_TAG, owner))
            };
            request.send().await.op("DeleteTags")?;
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

/// What moto cannot be made to do on cue: lose a race, fail or throttle a tagging call, hide a new
/// instance, answer for a released allocation.
#[cfg(test)]
mod tests;
