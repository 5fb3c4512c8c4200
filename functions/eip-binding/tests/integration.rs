//! eip-binding end to end against moto: the binary through the Lambda Runtime API, as a custom
//! resource and as the target of EC2 state-change events. Needs the local stack: run with `make test`.

use std::time::Duration;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use testkit::local::{self, aws_env, moto_url};

use testkit::{status, unique, Answer, Call, FaultMatrix, Harness, ThrottlingProxy};

const BIN: &str = env!("CARGO_BIN_EXE_eip-binding");
const TYPE: &str = "Custom::EipBinding";
const TIMEOUT: Duration = Duration::from_secs(30);

async fn harness() -> Harness {
    Harness::start(BIN, TYPE, &aws_env(&moto_url())).await
}

/// A subnet to launch into.
async fn subnet(octet: u8) -> String {
    local::network(&local::ec2().await, octet).await.subnet_ids[0].clone()
}

/// The primary (device index 0) interface of an instance.
async fn primary_eni(instance: &str) -> String {
    let out = local::ec2().await.describe_instances().instance_ids(instance).send().await.unwrap();
    let i = &out.reservations()[0].instances()[0];
    let eni = i.network_interfaces().iter().find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0)).unwrap();
    eni.network_interface_id().unwrap().to_owned()
}

fn state_change(instance: &str, state: &str) -> Value {
    json!({
        "version": "0", "id": "ee376907-2647-4179-9203-343cfb3017a4",
        "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
        "account": "123456789012", "time": "2026-11-22T08:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:ec2:us-east-1:123456789012:instance/{instance}")],
        "detail": {"instance-id": instance, "state": state}
    })
}

#[tokio::test]
async fn a_specific_allocation_binds_to_the_instance_and_delete_releases_it() {
    let ec2 = local::ec2().await;
    let instance = local::instance(&ec2, &subnet(41).await, &[]).await;
    let allocation = local::elastic_ip(&ec2, &[]).await;
    let h = harness().await;
    let props = json!({"InstanceId": instance, "AllocationId": allocation});
    let (_, created) = h.request("a1", h.event("a1", "Create", "Egress", props.clone()), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    assert_eq!(created["Data"]["AllocationId"], json!(allocation));
    let (assoc, eni, _) = local::association(&ec2, &allocation).await;
    assert_eq!(eni, Some(primary_eni(&instance).await));
    assert_eq!(created["Data"]["AssociationId"], json!(assoc.unwrap()));
    assert!(!created["Data"]["PublicIp"].as_str().unwrap().is_empty());

    let mut delete = h.event("a2", "Delete", "Egress", props);
    delete["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    let (_, deleted) = h.request("a2", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    assert_eq!(local::association(&ec2, &allocation).await.0, None, "released");
    h.assert_no_secrets(&[]).await;
}

#[tokio::test]
async fn a_pool_of_three_serves_three_instances_at_once_without_stealing() {
    let ec2 = local::ec2().await;
    let pool = unique("pool");
    let net = subnet(42).await;
    let mut allocations = Vec::new();
    for _ in 0..3 {
        allocations.push(local::elastic_ip(&ec2, &[("eip-pool", &pool)]).await);
    }
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(local::instance(&ec2, &net, &[]).await);
    }
    let harnesses = [harness().await, harness().await, harness().await];
    let event = |i: usize| {
        let props = json!({"InstanceId": instances[i], "PoolTag": format!("eip-pool={pool}")});
        harnesses[i].event(&format!("p{i}"), "Create", &format!("Egress{i}"), props)
    };
    let (r0, r1, r2) = tokio::join!(
        harnesses[0].request("p0", event(0), TIMEOUT),
        harnesses[1].request("p1", event(1), TIMEOUT),
        harnesses[2].request("p2", event(2), TIMEOUT),
    );
    let bodies = [r0.1, r1.1, r2.1];
    let mut bound: Vec<String> = bodies
        .iter()
        .map(|b| {
            assert_eq!(status(b), "SUCCESS", "{b}");
            b["Data"]["AllocationId"].as_str().unwrap().to_owned()
        })
        .collect();
    bound.sort();
    let mut expected = allocations.clone();
    expected.sort();
    assert_eq!(bound, expected, "three distinct addresses, the whole pool");
    for (body, instance) in bodies.iter().zip(&instances) {
        let (_, eni, _) = local::association(&ec2, body["Data"]["AllocationId"].as_str().unwrap()).await;
        assert_eq!(eni, Some(primary_eni(instance).await), "each address is still where its binder put it");
    }

    // A fourth instance finds the pool exhausted, and says so.
    let fourth = local::instance(&ec2, &net, &[]).await;
    let h = &harnesses[0];
    let (_, body) = h
        .request(
            "p3",
            h.event("p3", "Create", "Egress3", json!({"InstanceId": fourth, "PoolTag": format!("eip-pool={pool}")})),
            TIMEOUT,
        )
        .await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("eip-pool={pool}")) && reason.contains("holds 3 address(es), all associated"),
        "{reason}"
    );
}

#[tokio::test]
async fn the_same_create_again_takes_no_second_address() {
    let ec2 = local::ec2().await;
    let pool = unique("again");
    let a1 = local::elastic_ip(&ec2, &[("eip-pool", &pool)]).await;
    let a2 = local::elastic_ip(&ec2, &[("eip-pool", &pool)]).await;
    let instance = local::instance(&ec2, &subnet(43).await, &[]).await;
    let h = harness().await;
    let event = h.event("g", "Create", "Again", json!({"InstanceId": instance, "PoolTag": format!("eip-pool={pool}")}));
    let (_, first) = h.request("g", event.clone(), TIMEOUT).await;
    let inv = h.api.invoke_json(&event, TIMEOUT).await;
    assert!(matches!(inv.answer, Answer::Response(_)));
    let both = h.recorder.delivered_for("g");
    assert_eq!(both.len(), 2);
    assert_eq!(status(&both[1].body), "SUCCESS");
    assert_eq!(first["Data"]["AllocationId"], both[1].body["Data"]["AllocationId"]);
    let mut associated = 0;
    for a in [&a1, &a2] {
        associated += usize::from(local::association(&ec2, a).await.0.is_some());
    }
    assert_eq!(associated, 1, "one address bound, the other still free");
}

#[tokio::test]
async fn an_instance_with_two_interfaces_gets_the_address_on_its_primary() {
    let ec2 = local::ec2().await;
    let net = subnet(44).await;
    let instance = local::instance(&ec2, &net, &[]).await;
    let second = ec2.create_network_interface().subnet_id(&net).send().await.unwrap();
    let second = second.network_interface().unwrap().network_interface_id().unwrap().to_owned();
    ec2.attach_network_interface()
        .instance_id(&instance)
        .network_interface_id(&second)
        .device_index(1)
        .send()
        .await
        .unwrap();
    let allocation = local::elastic_ip(&ec2, &[]).await;
    let h = harness().await;
    let (_, body) = h
        .request(
            "m",
            h.event("m", "Create", "Multi", json!({"InstanceId": instance, "AllocationId": allocation})),
            TIMEOUT,
        )
        .await;
    assert_eq!(status(&body), "SUCCESS", "{body}");
    let (_, eni, _) = local::association(&ec2, &allocation).await;
    let primary = primary_eni(&instance).await;
    assert_eq!(eni, Some(primary.clone()));
    assert_ne!(primary, second);
}

#[tokio::test]
async fn delete_leaves_an_address_that_was_reassociated_elsewhere() {
    let ec2 = local::ec2().await;
    let net = subnet(45).await;
    let (ours, theirs) = (local::instance(&ec2, &net, &[]).await, local::instance(&ec2, &net, &[]).await);
    let allocation = local::elastic_ip(&ec2, &[]).await;
    let h = harness().await;
    let props = json!({"InstanceId": ours, "AllocationId": allocation});
    let (_, created) = h.request("r1", h.event("r1", "Create", "Moved", props.clone()), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    ec2.associate_address()
        .allocation_id(&allocation)
        .instance_id(&theirs)
        .allow_reassociation(true)
        .send()
        .await
        .unwrap();
    let moved = local::association(&ec2, &allocation).await;

    let mut delete = h.event("r2", "Delete", "Moved", props);
    delete["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    let (_, deleted) = h.request("r2", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    assert_eq!(local::association(&ec2, &allocation).await, moved, "the other instance keeps it");
}

#[tokio::test]
async fn a_taken_allocation_or_an_unknown_one_fails_clearly() {
    let ec2 = local::ec2().await;
    let net = subnet(46).await;
    let (first, second) = (local::instance(&ec2, &net, &[]).await, local::instance(&ec2, &net, &[]).await);
    let allocation = local::elastic_ip(&ec2, &[]).await;
    ec2.associate_address().allocation_id(&allocation).instance_id(&first).send().await.unwrap();
    let h = harness().await;
    let (_, body) = h
        .request(
            "t1",
            h.event("t1", "Create", "Taken", json!({"InstanceId": second, "AllocationId": allocation})),
            TIMEOUT,
        )
        .await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains(&allocation) && reason.contains("AllowReassociation"), "{reason}");
    let (_, body) = h
        .request(
            "t2",
            h.event(
                "t2",
                "Create",
                "Unknown",
                json!({"InstanceId": second, "AllocationId": "eipalloc-0123456789abcdef0"}),
            ),
            TIMEOUT,
        )
        .await;
    assert_eq!(
        body["Reason"],
        "AllocationId eipalloc-0123456789abcdef0 does not exist in this account and Region (nothing of it was left in place)"
    );
}

#[tokio::test]
async fn state_change_events_bind_tagged_instances_once_and_ignore_the_rest() {
    let ec2 = local::ec2().await;
    let pool = unique("events");
    let net = subnet(47).await;
    let allocation = local::elastic_ip(&ec2, &[("eip-pool", &pool)]).await;
    let tagged = local::instance(&ec2, &net, &[("eip-pool", &pool)]).await;
    let untagged = local::instance(&ec2, &net, &[]).await;
    let h = harness().await;
    let answer = |inv: testkit::Invocation| match inv.answer {
        Answer::Response(v) => v,
        Answer::Error(e) => panic!("invocation error: {e}"),
    };
    let first = answer(h.api.invoke_json(&state_change(&tagged, "running"), TIMEOUT).await);
    assert_eq!(first["action"], "bound", "{first}");
    assert_eq!(first["allocation_id"], json!(allocation));
    let again = answer(h.api.invoke_json(&state_change(&tagged, "running"), TIMEOUT).await);
    assert_eq!(again["action"], "already-bound", "{again}");
    assert_eq!(again["allocation_id"], json!(allocation));
    for _ in 0..2 {
        let ignored = answer(h.api.invoke_json(&state_change(&untagged, "running"), TIMEOUT).await);
        assert_eq!(ignored["action"], "ignored", "{ignored}");
    }
    let stopped = answer(h.api.invoke_json(&state_change(&tagged, "stopped"), TIMEOUT).await);
    assert_eq!(stopped["action"], "ignored");
    assert_eq!(local::association(&ec2, &allocation).await.1, Some(primary_eni(&tagged).await));
    let odd = h.api.invoke_json(&json!({"detail-type": "Something Else"}), TIMEOUT).await;
    assert!(odd.answer.is_error(), "{:?}", odd.answer);
}

fn matrix() -> FaultMatrix<'static> {
    let props = json!({"InstanceId": "i-0123456789abcdef0", "AllocationId": "eipalloc-0123456789abcdef0"});
    FaultMatrix {
        binary: BIN,
        resource_type: TYPE,
        calls_aws: props.clone(),
        fails: props,
        wrong_type: json!({"InstanceId": "i-0123456789abcdef0", "AllocationId": "eipalloc-0123456789abcdef0", "AllowReassociation": ["yes"]}),
        wrong_type_named: "AllowReassociation",
    }
}

testkit::fault_matrix!(matrix);

#[tokio::test]
async fn throttled_ec2_still_binds_and_releases() {
    let ec2 = local::ec2().await;
    let pool = unique("throttle");
    let allocations =
        [local::elastic_ip(&ec2, &[("eip-pool", &pool)]).await, local::elastic_ip(&ec2, &[("eip-pool", &pool)]).await];
    let instance = local::instance(&ec2, &subnet(48).await, &[]).await;
    let proxy = ThrottlingProxy::start(&moto_url(), 2).await;
    let h = Harness::start(BIN, TYPE, &aws_env(&proxy.url())).await;
    let props = json!({"InstanceId": instance, "PoolTag": format!("eip-pool={pool}")});
    let (_, created) = h.request("th1", h.event("th1", "Create", "Throttled", props.clone()), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    let bound = created["Data"]["AllocationId"].as_str().unwrap().to_owned();
    assert!(allocations.contains(&bound));
    assert_eq!(local::association(&ec2, &bound).await.1, Some(primary_eni(&instance).await));
    let mut delete = h.event("th2", "Delete", "Throttled", props);
    delete["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    let (_, deleted) = h.request("th2", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    assert_eq!(local::association(&ec2, &bound).await.0, None);
    assert!(proxy.throttled() >= 2, "throttled {} of {} calls", proxy.throttled(), proxy.seen());
}

/// The owner tagging after AssociateAddress (the claim before it carries no association tag).
fn tags_a_binding(call: &Call<'_>) -> bool {
    call.operation == "CreateTags" && call.body.contains("eip-association")
}

/// Three Lambda instances binding from one pool at once through an endpoint that throttles every third
/// call: some caller meets several throttles in a row, more than the SDK's three attempts. Every Create
/// succeeds with its own address, each tagged with its owner.
#[tokio::test]
async fn three_concurrent_creates_through_an_endpoint_throttling_every_third_call_all_bind() {
    let ec2 = local::ec2().await;
    let pool = unique("busy");
    let net = subnet(49).await;
    for _ in 0..3 {
        local::elastic_ip(&ec2, &[("eip-pool", &pool)]).await;
    }
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(local::instance(&ec2, &net, &[]).await);
    }
    let proxy = ThrottlingProxy::start(&moto_url(), 3).await;
    let creates = instances.iter().enumerate().map(|(n, instance)| {
        let (proxy, pool, instance) = (proxy.clone(), pool.clone(), instance.clone());
        async move {
            let h = Harness::start(BIN, TYPE, &aws_env(&proxy.url())).await;
            let props = json!({"InstanceId": instance, "PoolTag": format!("eip-pool={pool}")});
            let name = format!("busy{n}");
            h.request(&name, h.event(&name, "Create", &format!("Egress{n}"), props), TIMEOUT).await.1
        }
    });
    let answers = futures_util::future::join_all(creates).await;
    let mut bound = Vec::new();
    for (answer, instance) in answers.iter().zip(&instances) {
        assert_eq!(status(answer), "SUCCESS", "{answer}");
        let allocation = answer["Data"]["AllocationId"].as_str().unwrap().to_owned();
        assert_eq!(local::association(&ec2, &allocation).await.1, Some(primary_eni(instance).await));
        let tags = local::address_tags(&ec2, &allocation).await;
        assert_eq!(
            tags.get("stackhand:eip-binding"),
            answer["PhysicalResourceId"].as_str().map(str::to_owned).as_ref()
        );
        bound.push(allocation);
    }
    bound.sort();
    bound.dedup();
    assert_eq!(bound.len(), 3, "three different addresses");
    assert!(proxy.throttled() >= 3, "throttled {} of {} calls", proxy.throttled(), proxy.seen());
}

/// CreateTags throttled five times running (the SDK alone gives up after three): the binding is
/// retried within the invocation's deadline and holds.
#[tokio::test]
async fn tagging_throttled_five_times_running_still_binds() {
    let ec2 = local::ec2().await;
    let allocation = local::elastic_ip(&ec2, &[]).await;
    let instance = local::instance(&ec2, &subnet(50).await, &[]).await;
    let throttled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&throttled);
    let proxy = ThrottlingProxy::throttling(&moto_url(), move |call| {
        tags_a_binding(call) && counter.fetch_add(1, Ordering::SeqCst) < 5
    })
    .await;
    let h = Harness::start(BIN, TYPE, &aws_env(&proxy.url())).await;
    let props = json!({"InstanceId": instance, "AllocationId": allocation});
    let (_, created) = h.request("burst", h.event("burst", "Create", "Burst", props), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    assert_eq!(proxy.throttled(), 5);
    assert_eq!(
        local::address_tags(&ec2, &allocation).await.get("stackhand:eip-binding").map(String::as_str),
        created["PhysicalResourceId"].as_str()
    );
}

/// CreateTags throttled for good: the Create fails, and the address it had associated is released
/// before the answer; the answer carries the resource's own id, whose Delete succeeds.
#[tokio::test]
async fn tagging_throttled_for_good_fails_with_nothing_left_bound() {
    let ec2 = local::ec2().await;
    let allocation = local::elastic_ip(&ec2, &[]).await;
    let instance = local::instance(&ec2, &subnet(51).await, &[]).await;
    let proxy = ThrottlingProxy::throttling(&moto_url(), tags_a_binding).await;
    let h = Harness::start(BIN, TYPE, &aws_env(&proxy.url())).await;
    let props = json!({"InstanceId": instance, "AllocationId": allocation});
    let (_, created) =
        h.request("stuck", h.event("stuck", "Create", "Stuck", props.clone()), Duration::from_secs(20)).await;
    assert_eq!(status(&created), "FAILED", "{created}");
    let reason = created["Reason"].as_str().unwrap();
    assert!(reason.contains("CreateTags failed: RequestLimitExceeded"), "{reason}");
    assert_eq!(local::association(&ec2, &allocation).await.0, None, "nothing left bound: {reason}");
    assert!(proxy.calls("AssociateAddress") >= 1 && proxy.calls("DisassociateAddress") >= 1);
    let id = created["PhysicalResourceId"].as_str().unwrap();
    assert!(id.starts_with(&format!("eip-binding:{instance}:")), "{id}");
    let mut delete = h.event("stuck2", "Delete", "Stuck", props);
    delete["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    let (_, deleted) = h.request("stuck2", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
}

/// An instance replacement (a new AMI): CloudFormation creates the binding for the new instance (a new
/// physical id) while the old one still holds the fixed address, then deletes the old binding. The
/// address moves to the new instance and stays there.
#[tokio::test]
async fn a_replaced_instance_takes_its_fixed_address_from_the_same_resources_old_binding() {
    let ec2 = local::ec2().await;
    let net = subnet(52).await;
    let (old, new) = (local::instance(&ec2, &net, &[]).await, local::instance(&ec2, &net, &[]).await);
    let allocation = local::elastic_ip(&ec2, &[]).await;
    let h = harness().await;
    let before = json!({"InstanceId": old, "AllocationId": allocation});
    let (_, first) = h.request("m1", h.event("m1", "Create", "Moving", before.clone()), TIMEOUT).await;
    assert_eq!(status(&first), "SUCCESS", "{first}");
    let after = json!({"InstanceId": new, "AllocationId": allocation});
    let (_, second) = h.request("m2", h.event("m2", "Create", "Moving", after), TIMEOUT).await;
    assert_eq!(status(&second), "SUCCESS", "{second}");
    assert_ne!(first["PhysicalResourceId"], second["PhysicalResourceId"]);
    let new_eni = primary_eni(&new).await;
    assert_eq!(local::association(&ec2, &allocation).await.1, Some(new_eni.clone()));
    let mut delete = h.event("m3", "Delete", "Moving", before);
    delete["PhysicalResourceId"] = first["PhysicalResourceId"].clone();
    let (_, deleted) = h.request("m3", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    assert_eq!(local::association(&ec2, &allocation).await.1, Some(new_eni), "the new instance keeps it");

    // Another resource (another logical id) still may not take it.
    let (_, other) = h
        .request(
            "m4",
            h.event("m4", "Create", "Other", json!({"InstanceId": old, "AllocationId": allocation})),
            TIMEOUT,
        )
        .await;
    assert_eq!(status(&other), "FAILED", "{other}");
    assert!(other["Reason"].as_str().unwrap().contains("AllowReassociation"), "{other}");
}

/// A Delete whose properties a later version no longer accepts still releases the address, found by
/// its owner tag; a Delete after the allocation itself was released succeeds.
#[tokio::test]
async fn deletes_that_cannot_read_their_properties_or_find_their_allocation_still_succeed() {
    let ec2 = local::ec2().await;
    let instance = local::instance(&ec2, &subnet(53).await, &[]).await;
    let allocation = local::elastic_ip(&ec2, &[]).await;
    let h = harness().await;
    let props = json!({"InstanceId": instance, "AllocationId": allocation});
    let (_, created) = h.request("u1", h.event("u1", "Create", "Lenient", props.clone()), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    let mut delete = h.event("u2", "Delete", "Lenient", json!({"InstanceId": instance, "Allocation": {"Id": 7}}));
    delete["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    let (_, deleted) = h.request("u2", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    assert_eq!(local::association(&ec2, &allocation).await.0, None, "released by its owner tag");

    let (_, again) = h.request("u3", h.event("u3", "Create", "Lenient", props.clone()), TIMEOUT).await;
    assert_eq!(status(&again), "SUCCESS", "{again}");
    ec2.disassociate_address().association_id(again["Data"]["AssociationId"].as_str().unwrap()).send().await.unwrap();
    ec2.release_address().allocation_id(&allocation).send().await.unwrap();
    let mut delete = h.event("u4", "Delete", "Lenient", props);
    delete["PhysicalResourceId"] = again["PhysicalResourceId"].clone();
    let (_, deleted) = h.request("u4", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "a released allocation is already gone: {deleted}");
}

/// Security (issue 19): an author naming someone else's address, with AllowReassociation, cannot move it.
#[tokio::test]
async fn an_address_bound_by_hand_to_another_instance_stays_there() {
    let ec2 = local::ec2().await;
    let net = subnet(57).await;
    let (author, victim) = (local::instance(&ec2, &net, &[]).await, local::instance(&ec2, &net, &[]).await);
    let allocation = local::elastic_ip(&ec2, &[]).await;
    ec2.associate_address().allocation_id(&allocation).instance_id(&victim).send().await.unwrap();
    let before = local::association(&ec2, &allocation).await;
    let h = harness().await;
    let props = json!({"InstanceId": author, "AllocationId": allocation, "AllowReassociation": "true"});
    let (_, body) = h.request("h1", h.event("h1", "Create", "Steal", props), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains(&victim) && reason.contains("not this resource's binding"), "{reason}");
    assert_eq!(local::association(&ec2, &allocation).await, before, "the address stays where it was bound by hand");
    let described = ec2.describe_addresses().allocation_ids(&allocation).send().await.unwrap();
    let keys: Vec<_> = described.addresses()[0].tags().iter().filter_map(|t| t.key()).collect();
    assert_eq!(keys, ["stackhand:eip-bindable"], "not even claimed");
}

/// Security (issue 19): a fixed AllocationId or a pool reaches only addresses the owner made bindable.
#[tokio::test]
async fn an_address_the_owner_did_not_make_bindable_is_never_bound() {
    let ec2 = local::ec2().await;
    let instance = local::instance(&ec2, &subnet(58).await, &[]).await;
    let pool = format!("eip-pool={}", unique("reserved"));
    let (_, pool_value) = pool.split_once('=').unwrap();
    let mut reserved = Vec::new();
    for _ in 0..2 {
        let id = local::elastic_ip(&ec2, &[("eip-pool", pool_value)]).await;
        ec2.delete_tags()
            .resources(&id)
            .tags(aws_sdk_ec2::types::Tag::builder().key("stackhand:eip-bindable").build())
            .send()
            .await
            .unwrap();
        reserved.push(id);
    }
    let h = harness().await;
    let (_, fixed) = h
        .request(
            "b1",
            h.event("b1", "Create", "Fixed", json!({"InstanceId": instance, "AllocationId": reserved[0]})),
            TIMEOUT,
        )
        .await;
    assert_eq!(status(&fixed), "FAILED", "{fixed}");
    let reason = fixed["Reason"].as_str().unwrap();
    assert!(
        reason.contains("lacks the tag stackhand:eip-bindable=true") && reason.contains("EipBindableTagValue"),
        "{reason}"
    );
    let (_, pooled) = h
        .request("b2", h.event("b2", "Create", "Pooled", json!({"InstanceId": instance, "PoolTag": pool})), TIMEOUT)
        .await;
    assert_eq!(status(&pooled), "FAILED", "{pooled}");
    assert!(
        pooled["Reason"].as_str().unwrap().contains("2 free one(s) without the tag stackhand:eip-bindable=true"),
        "{pooled}"
    );
    for id in &reserved {
        assert_eq!(local::association(&ec2, id).await.0, None, "{id} stays free");
    }
}

/// Upgrade path (issue 19): a binding made before the bindable tag existed keeps working (an Update
/// of the same binding moves nothing and succeeds) and its Delete releases it; a new binding of that
/// address fails naming the tag the owner adds.
#[tokio::test]
async fn a_binding_from_before_the_bindable_tag_keeps_working_and_is_released() {
    let ec2 = local::ec2().await;
    let net = subnet(59).await;
    let (instance, other) = (local::instance(&ec2, &net, &[]).await, local::instance(&ec2, &net, &[]).await);
    let allocation = local::elastic_ip(&ec2, &[]).await;
    let h = harness().await;
    let props = json!({"InstanceId": instance, "AllocationId": allocation});
    let (_, created) = h.request("u1", h.event("u1", "Create", "Old", props.clone()), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    // What an address bound by the earlier version looks like: no bindable tag.
    ec2.delete_tags()
        .resources(&allocation)
        .tags(aws_sdk_ec2::types::Tag::builder().key("stackhand:eip-bindable").build())
        .send()
        .await
        .unwrap();
    let bound = local::association(&ec2, &allocation).await;

    let mut update = h.event("u2", "Update", "Old", props.clone());
    update["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    update["OldResourceProperties"] = props.clone();
    let (_, updated) = h.request("u2", update, TIMEOUT).await;
    assert_eq!(status(&updated), "SUCCESS", "{updated}");
    assert_eq!(local::association(&ec2, &allocation).await, bound);

    let (_, new) = h
        .request(
            "u3",
            h.event("u3", "Create", "New", json!({"InstanceId": other, "AllocationId": allocation})),
            TIMEOUT,
        )
        .await;
    assert_eq!(status(&new), "FAILED", "{new}");
    assert!(new["Reason"].as_str().unwrap().contains("stackhand:eip-bindable=true"), "{new}");

    let mut delete = h.event("u4", "Delete", "Old", props);
    delete["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    let (_, deleted) = h.request("u4", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    assert_eq!(local::association(&ec2, &allocation).await.0, None, "released");
}
