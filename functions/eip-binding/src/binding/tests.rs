use super::*;
use aws_sdk_ec2::operation::associate_address::{AssociateAddressError, AssociateAddressOutput};
use aws_sdk_ec2::operation::create_tags::{CreateTagsError, CreateTagsOutput};
use aws_sdk_ec2::operation::delete_tags::DeleteTagsOutput;
use aws_sdk_ec2::operation::describe_addresses::{DescribeAddressesError, DescribeAddressesOutput};
use aws_sdk_ec2::operation::describe_instances::{DescribeInstancesError, DescribeInstancesOutput};
use aws_sdk_ec2::operation::disassociate_address::DisassociateAddressOutput;
use aws_sdk_ec2::types::{Instance, InstanceNetworkInterface, InstanceNetworkInterfaceAttachment, Reservation};
use aws_sdk_ec2::Client;
use aws_smithy_mocks::{mock, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;

const ENI: &str = "eni-0123456789abcdef0";
const OWNER: Owner<'static> = Owner { id: "owner-1", resource: Some("resource-1") };
/// EC2's throttling answer, as the service sends it.
const THROTTLED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>\
    <Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors>\
    <RequestID>r</RequestID></Response>";

fn client(rules: &[&Rule]) -> Client {
    testkit::mock_ec2_with(RuleMode::MatchAny, rules)
}

fn code(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message("from the test").build()
}

fn filter_named(r: &aws_sdk_ec2::operation::describe_addresses::DescribeAddressesInput, name: &str) -> bool {
    r.filters().iter().any(|f| f.name() == Some(name))
}

/// An address the owner made bindable.
fn address(id: &str, ip: &str) -> Address {
    Address::builder().allocation_id(id).public_ip(ip).tags(pair(BINDABLE_TAG, DEFAULT_BINDABLE_VALUE)).build()
}

/// The pool's addresses for the source read; `on_spot` for the read of the target.
fn addresses(pool: Vec<Address>, on_spot: Vec<Address>) -> (Rule, Rule) {
    let source = mock!(Client::describe_addresses)
        .match_requests(|r| filter_named(r, "tag:eip-pool") || !r.allocation_ids().is_empty())
        .sequence()
        .output(move || DescribeAddressesOutput::builder().set_addresses(Some(pool.clone())).build())
        .repeatedly()
        .build();
    let target = mock!(Client::describe_addresses)
        .match_requests(|r| filter_named(r, "network-interface-id") || filter_named(r, "instance-id"))
        .sequence()
        .output(move || DescribeAddressesOutput::builder().set_addresses(Some(on_spot.clone())).build())
        .repeatedly()
        .build();
    (source, target)
}

fn free_pool() -> Vec<Address> {
    vec![address("eipalloc-00000001", "198.51.100.1"), address("eipalloc-00000002", "198.51.100.2")]
}

fn claims() -> Rule {
    mock!(Client::create_tags)
        .match_requests(|r| r.tags().iter().any(|t| t.key() == Some(CLAIM_TAG)))
        .sequence()
        .output(|| CreateTagsOutput::builder().build())
        .repeatedly()
        .build()
}

fn untags() -> Rule {
    mock!(Client::delete_tags).sequence().output(|| DeleteTagsOutput::builder().build()).repeatedly().build()
}

fn owner_tagging() -> Rule {
    mock!(Client::create_tags)
        .match_requests(|r| r.tags().iter().any(|t| t.key() == Some(OWNER_TAG)))
        .then_output(|| CreateTagsOutput::builder().build())
}

fn associated(id: &'static str) -> Rule {
    mock!(Client::associate_address).then_output(move || AssociateAddressOutput::builder().association_id(id).build())
}

fn disassociated() -> Rule {
    mock!(Client::disassociate_address)
        .sequence()
        .output(|| DisassociateAddressOutput::builder().build())
        .repeatedly()
        .build()
}

const POOL: fn() -> Source = || Source::Pool { key: "eip-pool".into(), value: "app".into() };

fn spot() -> Spot {
    Spot { interface: ENI.into(), private_ip: None, instance: None }
}

#[tokio::test]
async fn losing_a_race_moves_on_to_the_next_free_address() {
    let (pool, target) = addresses(free_pool(), vec![]);
    let (claimed, unclaimed) = (claims(), untags());
    let associate = mock!(Client::associate_address)
        .sequence()
        .error(|| AssociateAddressError::generic(code("Resource.AlreadyAssociated")))
        .output(|| AssociateAddressOutput::builder().association_id("eipassoc-0000000a").build())
        .build();
    let tagged = mock!(Client::create_tags)
        .match_requests(|r| r.tags().iter().any(|t| t.value() == Some("eipassoc-0000000a")))
        .then_output(|| CreateTagsOutput::builder().build());
    let binder = Binder::new(testkit::mock_ec2_with(
        RuleMode::MatchAny,
        &[&pool, &target, &claimed, &unclaimed, &associate, &tagged],
    ));
    let bound = binder.bind(&spot(), &POOL(), false, OWNER).await.unwrap();
    assert_eq!(bound.association_id, "eipassoc-0000000a");
    assert!(bound.newly);
    assert_eq!((associate.num_calls(), tagged.num_calls()), (2, 1));
    // Each candidate was claimed before its AssociateAddress; the lost one's claim was taken back.
    assert_eq!((claimed.num_calls(), unclaimed.num_calls()), (2, 1));
}

#[tokio::test]
async fn losing_every_race_says_the_pool_ran_out_and_why() {
    let (pool, target) = addresses(free_pool(), vec![]);
    let (claimed, unclaimed) = (claims(), untags());
    let lost = mock!(Client::associate_address)
        .sequence()
        .error(|| AssociateAddressError::generic(code("Resource.AlreadyAssociated")))
        .repeatedly()
        .build();
    let binder = Binder::new(client(&[&pool, &target, &claimed, &unclaimed, &lost]));
    let err = binder.bind(&spot(), &POOL(), false, OWNER).await.unwrap_err().to_string();
    assert!(err.contains("eip-pool=app has no free address: it holds 2 address(es)"), "{err}");
    assert!(err.contains("2 taken by others while this run tried them"), "{err}");
    assert_eq!(unclaimed.num_calls(), 2, "no claim is left on an address another binder holds");
}

#[tokio::test]
async fn an_association_whose_tagging_fails_is_undone_before_the_error() {
    let (pool, target) = addresses(free_pool(), vec![]);
    let (claimed, unclaimed, undone) = (claims(), untags(), disassociated());
    let won = associated("eipassoc-0000000b");
    let denied = mock!(Client::create_tags)
        .match_requests(|r| r.tags().iter().any(|t| t.key() == Some(OWNER_TAG)))
        .then_error(|| CreateTagsError::generic(code("UnauthorizedOperation")));
    let binder = Binder::new(client(&[&pool, &target, &claimed, &unclaimed, &won, &denied, &undone]));
    let err = binder.bind(&spot(), &POOL(), false, OWNER).await.unwrap_err().to_string();
    assert!(err.starts_with("CreateTags failed: UnauthorizedOperation"), "{err}");
    assert!(err.ends_with("the association eipassoc-0000000b was undone"), "{err}");
    assert_eq!(undone.num_calls(), 1);
    assert_eq!(unclaimed.num_calls(), 1);
}

/// The case a new user hit: CreateTags throttled more often than the SDK's three attempts. Within
/// an invocation's deadline it is retried until it succeeds; outside one, the SDK's count ends it
/// and the association is undone, not left bound behind the error.
#[tokio::test(start_paused = true)]
async fn throttled_tagging_is_retried_until_the_deadline_not_three_times() {
    let throttled_five_times = || {
        mock!(Client::create_tags)
            .match_requests(|r| r.tags().iter().any(|t| t.key() == Some(OWNER_TAG)))
            .sequence()
            .http_status(503, Some(THROTTLED.into()))
            .times(5)
            .output(|| CreateTagsOutput::builder().build())
            .build()
    };
    let (pool, target) = addresses(free_pool(), vec![]);
    let (claimed, unclaimed, undone, won, tagging) =
        (claims(), untags(), disassociated(), associated("eipassoc-0000000c"), throttled_five_times());
    let binder = Binder::new(client(&[&pool, &target, &claimed, &unclaimed, &won, &tagging, &undone]));
    let deadline = Instant::now() + Duration::from_secs(60);
    let bound = stackhand::aws::within(deadline, binder.bind(&spot(), &POOL(), false, OWNER)).await.unwrap();
    assert_eq!(bound.association_id, "eipassoc-0000000c");
    assert_eq!(tagging.num_calls(), 6, "five throttled attempts, then the one that succeeded");
    assert_eq!(undone.num_calls(), 0);

    let (claimed, unclaimed, undone, won, tagging) =
        (claims(), untags(), disassociated(), associated("eipassoc-0000000d"), throttled_five_times());
    let binder = Binder::new(client(&[&pool, &target, &claimed, &unclaimed, &won, &tagging, &undone]));
    let err = binder.bind(&spot(), &POOL(), false, OWNER).await.unwrap_err().to_string();
    assert_eq!(tagging.num_calls(), stackhand::aws::UNSCOPED_MAX_ATTEMPTS as usize);
    assert!(err.contains("RequestLimitExceeded") && err.contains("eipassoc-0000000d was undone"), "{err}");
    assert_eq!(undone.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_retry_starts_when_the_deadline_is_too_near_for_one() {
    let (pool, target) = addresses(free_pool(), vec![]);
    let (claimed, unclaimed, undone, won) = (claims(), untags(), disassociated(), associated("eipassoc-0000000e"));
    let tagging = mock!(Client::create_tags)
        .match_requests(|r| r.tags().iter().any(|t| t.key() == Some(OWNER_TAG)))
        .sequence()
        .http_status(503, Some(THROTTLED.into()))
        .repeatedly()
        .build();
    let binder = Binder::new(client(&[&pool, &target, &claimed, &unclaimed, &won, &tagging, &undone]));
    let deadline = Instant::now() + stackhand::aws::RETRY_WINDOW - Duration::from_millis(1);
    let err =
        stackhand::aws::within(deadline, binder.bind(&spot(), &POOL(), false, OWNER)).await.unwrap_err().to_string();
    assert_eq!(tagging.num_calls(), 1, "{err}");
    assert!(err.contains("was undone"), "{err}");
}

#[tokio::test]
async fn no_call_is_sent_once_the_deadline_has_passed() {
    let (pool, target) = addresses(free_pool(), vec![]);
    let binder = Binder::new(client(&[&pool, &target]));
    let passed = Instant::now() - Duration::from_millis(1);
    let err = stackhand::aws::within(passed, binder.bind(&spot(), &POOL(), false, OWNER)).await.unwrap_err();
    assert!(err.to_string().contains("not sent: the invocation's deadline had passed"), "{err}");
}

#[tokio::test]
async fn a_fixed_address_moves_from_this_resources_earlier_binding_only() {
    let held = Address::builder()
        .allocation_id("eipalloc-00000003")
        .public_ip("198.51.100.3")
        .association_id("eipassoc-old")
        .instance_id("i-0000000000000old0")
        .tags(pair(BINDABLE_TAG, DEFAULT_BINDABLE_VALUE))
        .tags(pair(OWNER_TAG, "an-earlier-physical-id"))
        .tags(pair(RESOURCE_TAG, "resource-1"))
        .build();
    let source = Source::Allocation("eipalloc-00000003".into());
    let (pool, target) = addresses(vec![held], vec![]);
    let (claimed, unclaimed) = (claims(), untags());
    let moved = mock!(Client::associate_address)
        .match_requests(|r| r.allow_reassociation() == Some(true))
        .then_output(|| AssociateAddressOutput::builder().association_id("eipassoc-new").build());
    let tagged = owner_tagging();
    let binder = Binder::new(client(&[&pool, &target, &claimed, &unclaimed, &moved, &tagged]));
    let bound = binder.bind(&spot(), &source, false, OWNER).await.unwrap();
    assert_eq!((bound.association_id.as_str(), moved.num_calls()), ("eipassoc-new", 1));

    let stranger = Owner { id: "owner-2", resource: Some("resource-2") };
    for allow_reassociation in [false, true] {
        let err = binder.bind(&spot(), &source, allow_reassociation, stranger).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "eipalloc-00000003 is associated with i-0000000000000old0, which is not this resource's binding: an \
             address moves only from this resource's own earlier binding, whatever AllowReassociation says. \
             Disassociate it from i-0000000000000old0 first if it should move"
        );
    }
    assert_eq!(moved.num_calls(), 1);
}

#[tokio::test]
async fn allow_reassociation_never_moves_an_address_someone_else_associated() {
    let manual = Address::builder()
        .allocation_id("eipalloc-00000004")
        .public_ip("198.51.100.4")
        .association_id("eipassoc-by-hand")
        .instance_id("i-0000000000000b0b0")
        .tags(pair(BINDABLE_TAG, DEFAULT_BINDABLE_VALUE))
        .build();
    let (pool, target) = addresses(vec![manual], vec![]);
    let (claimed, associate) = (claims(), associated("eipassoc-never"));
    let binder = Binder::new(client(&[&pool, &target, &claimed, &associate]));
    let source = Source::Allocation("eipalloc-00000004".into());
    let err = binder.bind(&spot(), &source, true, OWNER).await.unwrap_err();
    assert!(matches!(&err, BindError::Taken { holder, .. } if holder == "i-0000000000000b0b0"), "{err}");
    assert_eq!((claimed.num_calls(), associate.num_calls()), (0, 0), "neither claimed nor moved");
}

#[tokio::test]
async fn an_address_without_the_owners_bindable_tag_is_never_claimed_or_associated() {
    let bare = Address::builder().allocation_id("eipalloc-00000005").public_ip("198.51.100.5").build();
    let other_value = Address::builder()
        .allocation_id("eipalloc-00000006")
        .public_ip("198.51.100.6")
        .tags(pair(BINDABLE_TAG, "team-b"))
        .build();
    let (pool, target) = addresses(vec![bare.clone(), other_value], vec![]);
    let (claimed, associate) = (claims(), associated("eipassoc-never"));
    let binder = Binder::new(client(&[&pool, &target, &claimed, &associate]));

    let err = binder.bind(&spot(), &Source::Allocation("eipalloc-00000005".into()), false, OWNER).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "AllocationId eipalloc-00000005 is not an address stacks may bind: it lacks the tag \
         stackhand:eip-bindable=true, which the owner of the stackhand stack puts on the Elastic IPs it reserves for \
         binding (the value is the template's EipBindableTagValue, env EIP_BINDABLE_TAG_VALUE)"
    );
    let err = binder.bind(&spot(), &POOL(), false, OWNER).await.unwrap_err().to_string();
    assert!(
        err.contains("all associated other than 2 free one(s) without the tag stackhand:eip-bindable=true"),
        "{err}"
    );
    assert_eq!((claimed.num_calls(), associate.num_calls()), (0, 0));

    // The owner's own value, when set, is the one that counts.
    let (pool, target) = addresses(vec![bare], vec![]);
    let binder = Binder::new(client(&[&pool, &target])).with_bindable_value("team-b");
    let err = binder.bind(&spot(), &Source::Allocation("eipalloc-00000005".into()), false, OWNER).await.unwrap_err();
    assert!(err.to_string().contains("stackhand:eip-bindable=team-b"), "{err}");
}

#[tokio::test]
async fn an_address_of_another_source_on_the_target_is_not_silently_replaced() {
    let foreign = Address::builder()
        .allocation_id("eipalloc-0000000f")
        .public_ip("203.0.113.9")
        .association_id("eipassoc-manual")
        .network_interface_id(ENI)
        .private_ip_address("10.0.1.5")
        .build();
    let (pool, target) = addresses(free_pool(), vec![foreign]);
    let associate = associated("eipassoc-never");
    let binder = Binder::new(client(&[&pool, &target, &associate]));
    let err = binder.bind(&spot(), &POOL(), false, OWNER).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "eni-0123456789abcdef0 already has the Elastic IP 203.0.113.9 (eipalloc-0000000f) on 10.0.1.5, which is \
         not from the pool eip-pool=app: binding would silently replace it. Disassociate it first, or name another \
         PrivateIpAddress"
    );
    assert_eq!(associate.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_just_launched_instance_is_read_again_until_visible() {
    let instance = || {
        let eni = InstanceNetworkInterface::builder()
            .network_interface_id(ENI)
            .private_ip_address("10.0.1.7")
            .attachment(InstanceNetworkInterfaceAttachment::builder().device_index(0).build())
            .build();
        let i = Instance::builder().instance_id("i-0123456789abcdef0").network_interfaces(eni).build();
        DescribeInstancesOutput::builder().reservations(Reservation::builder().instances(i).build()).build()
    };
    let described = mock!(Client::describe_instances)
        .sequence()
        .error(|| DescribeInstancesError::generic(code("InvalidInstanceID.NotFound")))
        .times(2)
        .output(instance)
        .build();
    let binder = Binder::new(client(&[&described]));
    let (spot, _) = binder.instance("i-0123456789abcdef0").await.unwrap();
    assert_eq!((spot.interface.as_str(), spot.private_ip.as_deref()), (ENI, Some("10.0.1.7")));
    assert_eq!(described.num_calls(), 3);

    let never = mock!(Client::describe_instances)
        .sequence()
        .error(|| DescribeInstancesError::generic(code("InvalidInstanceID.NotFound")))
        .repeatedly()
        .build();
    let binder = Binder::new(client(&[&never]));
    let started = Instant::now();
    let err = binder.instance("i-0123456789abcdef0").await.unwrap_err().to_string();
    assert_eq!(err, "InstanceId i-0123456789abcdef0 does not exist in this account and Region");
    assert!(started.elapsed() <= INSTANCE_VISIBILITY_WAIT, "{:?}", started.elapsed());
    assert!(never.num_calls() > 2);
}

#[tokio::test]
async fn releasing_an_allocation_that_was_released_meanwhile_succeeds() {
    let gone = mock!(Client::describe_addresses)
        .then_error(|| DescribeAddressesError::generic(code("InvalidAllocationID.NotFound")));
    let binder = Binder::new(client(&[&gone]));
    let source = Source::Allocation("eipalloc-00000009".into());
    assert_eq!(binder.release(&source, "owner-1", None).await.unwrap(), 0);
}

#[tokio::test]
async fn a_delete_releases_an_association_it_claimed_but_never_tagged_on_its_own_target_only() {
    let claimed_on = |eni: &str, assoc: &str| {
        Address::builder()
            .allocation_id(format!("eipalloc-{assoc}"))
            .association_id(format!("eipassoc-{assoc}"))
            .network_interface_id(eni)
            .tags(pair(CLAIM_TAG, "owner-1"))
            .build()
    };
    let (pool, _) = addresses(vec![claimed_on(ENI, "mine"), claimed_on("eni-0ther", "theirs")], vec![]);
    let (undone, untagged) = (disassociated(), untags());
    let binder = Binder::new(client(&[&pool, &undone, &untagged]));
    let target = Target::Interface { id: ENI.into(), private_ip: None };
    assert_eq!(binder.release(&POOL(), "owner-1", Some(&target)).await.unwrap(), 1);
    assert_eq!((undone.num_calls(), untagged.num_calls()), (1, 2), "both claims removed, one association");
}
