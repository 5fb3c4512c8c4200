//! nlb-ip-allowlist end to end: the release-shaped binary polls a Lambda Runtime API emulator, answers
//! CloudFormation through a recording endpoint (and once through a real presigned S3 URL), and changes
//! security groups in moto's server. Needs the local stack: run with `make test`.

use std::time::Duration;

use serde_json::{json, Value};
use testkit::local::{self, aws_env, moto_url};
use testkit::{cfn_event, status, FaultMatrix, Harness, ThrottlingProxy};

const BIN: &str = env!("CARGO_BIN_EXE_nlb-ip-allowlist");
const TYPE: &str = "Custom::NlbIpAllowlist";
const OWNER_TAG: &str = "stackhand:nlb-ip-allowlist";
const TIMEOUT: Duration = Duration::from_secs(30);

async fn harness() -> Harness {
    Harness::start(BIN, TYPE, &aws_env(&moto_url())).await
}

async fn harness_with_endpoint(endpoint: &str) -> Harness {
    Harness::start(BIN, TYPE, &aws_env(endpoint)).await
}

/// A VPC with an app security group (and one unrelated rule in it), an NLB's three ENIs (one with an
/// IPv6 address), and decoy ENIs that must never be allowed.
struct World {
    group: String,
    arn: String,
    v4: Vec<String>,
    v6: String,
    decoys: Vec<String>,
}

fn hex_id() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{:016x}", (nanos as u64) ^ (u64::from(std::process::id()) << 40))
}

async fn world(name: &str, octet: u8) -> World {
    let ec2 = local::ec2().await;
    let net = local::network(&ec2, octet).await;
    let group = local::security_group(&ec2, &net.vpc_id, &format!("app-{name}")).await;
    // An unrelated rule that must survive everything.
    ec2.authorize_security_group_ingress()
        .group_id(&group)
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .cidr_ip("192.0.2.10/32")
        .send()
        .await
        .unwrap();
    let lb = format!("nlb-{name}");
    let id = hex_id();
    let arn = format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/{lb}/{id}");
    let description = format!("ELB net/{lb}/{id}");
    let v6 = format!("2600:1f18:{octet:x}::5");
    let mut v4 = Vec::new();
    for (i, subnet) in net.subnet_ids.iter().enumerate() {
        let ipv6 = (i == 0).then_some(v6.as_str());
        v4.push(local::interface(&ec2, subnet, &description, ipv6).await);
    }
    let other = hex_id();
    let decoy_descriptions = [
        format!("ELB net/{lb}-2/{other}"), // a longer NLB name containing ours
        format!("ELB app/{lb}/{id}"),      // an ALB with the same name
        format!("ELB net/{lb}/{other}"),   // same name, another load balancer
        format!("{description} (copy)"),   // our description as a prefix
    ];
    let mut decoys = Vec::new();
    for d in &decoy_descriptions {
        decoys.push(local::interface(&ec2, &net.subnet_ids[1], d, None).await);
    }
    World { group, arn, v4, v6, decoys }
}

fn props(w: &World, ports: Value) -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:under-test",
        "LoadBalancerArn": w.arn, "SecurityGroupId": w.group, "Ports": ports
    })
}

type Rule = (String, i32, i32, String, Option<String>);

async fn rules(group: &str) -> Vec<Rule> {
    local::ingress_rules(&local::ec2().await, group, OWNER_TAG).await
}

fn unrelated(rules: &[Rule]) -> bool {
    rules.iter().any(|r| r.3 == "192.0.2.10/32" && r.1 == 22 && r.4.is_none())
}

/// Our rules as sorted `(from, to, cidr)`.
fn ours(rules: &[Rule], owner: &str) -> Vec<(i32, i32, String)> {
    let mut v: Vec<_> =
        rules.iter().filter(|r| r.4.as_deref() == Some(owner)).map(|r| (r.1, r.2, r.3.clone())).collect();
    v.sort();
    v
}

fn expected(w: &World, ranges: &[(i32, i32)]) -> Vec<(i32, i32, String)> {
    let mut cidrs: Vec<String> = w.v4.iter().map(|a| format!("{a}/32")).collect();
    cidrs.push(format!("{}/128", w.v6));
    let mut v: Vec<_> = ranges.iter().flat_map(|&(f, t)| cidrs.iter().map(move |c| (f, t, c.clone()))).collect();
    v.sort();
    v
}

#[tokio::test]
async fn create_update_delete_reconciles_exactly_its_own_rules() {
    let w = world("life", 11).await;
    let h = harness().await;

    let (answer, created) =
        h.request("c1", h.event("c1", "Create", "AppAllow", props(&w, json!(["9090", "8000-8100"]))), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    assert!(!answer.is_error());
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&format!("nlb-ip-allowlist:{}:", w.group)), "{id}");
    let after_create = rules(&w.group).await;
    assert_eq!(ours(&after_create, &id), expected(&w, &[(8000, 8100), (9090, 9090)]));
    assert!(unrelated(&after_create));
    for decoy in &w.decoys {
        assert!(!after_create.iter().any(|r| r.3 == format!("{decoy}/32")), "decoy {decoy} was allowed");
    }
    let mut sorted_v4: Vec<std::net::Ipv4Addr> = w.v4.iter().map(|a| a.parse().unwrap()).collect();
    sorted_v4.sort();
    let listed: Vec<String> = sorted_v4.iter().map(ToString::to_string).chain([w.v6.clone()]).collect();
    assert_eq!(created["Data"]["PrivateIpAddresses"], listed.join(","));
    assert_eq!(created["Data"]["RuleCount"], "8");

    // Update: drop 9090, add 443, keep 8000-8100.
    let mut update = h.event("u1", "Update", "AppAllow", props(&w, json!(["8000-8100", "443"])));
    update["PhysicalResourceId"] = json!(id);
    update["OldResourceProperties"] = props(&w, json!(["9090", "8000-8100"]));
    let (_, updated) = h.request("u1", update, TIMEOUT).await;
    assert_eq!(status(&updated), "SUCCESS", "{updated}");
    assert_eq!(updated["PhysicalResourceId"], json!(id), "same physical id: no replacement");
    let after_update = rules(&w.group).await;
    assert_eq!(ours(&after_update, &id), expected(&w, &[(443, 443), (8000, 8100)]));
    assert!(unrelated(&after_update));

    // Delete: only ours go.
    let mut delete = h.event("d1", "Delete", "AppAllow", props(&w, json!(["8000-8100", "443"])));
    delete["PhysicalResourceId"] = json!(id);
    let (_, deleted) = h.request("d1", delete.clone(), TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    let after_delete = rules(&w.group).await;
    assert!(ours(&after_delete, &id).is_empty(), "{after_delete:?}");
    assert_eq!(after_delete.len(), 1, "only the unrelated rule is left: {after_delete:?}");
    assert!(unrelated(&after_delete));

    // Delete again (a retried delivery): its rules are already gone, still SUCCESS.
    delete["ResponseURL"] = json!(h.recorder.url("d2"));
    let (_, again) = h.request("d2", delete, TIMEOUT).await;
    assert_eq!(status(&again), "SUCCESS", "{again}");

    // One structured line per request, with the fields an operator looks for.
    let answered = h.process.wait_for_log("custom resource request answered", 4).await;
    assert_eq!(answered.len(), 4, "{answered:?}");
    assert_eq!(answered[0]["request_type"], "Create");
    assert_eq!(answered[0]["logical_resource_id"], "AppAllow");
    assert_eq!(answered[0]["status"], "SUCCESS");
    assert!(answered[0]["stack_id"].as_str().unwrap().contains(":stack/stackhand-test/"));
    h.assert_no_secrets(&[]).await;
}

#[tokio::test]
async fn the_same_create_delivered_twice_succeeds_twice_without_duplicates() {
    let w = world("twice", 12).await;
    let h = harness().await;
    let event = h.event("t1", "Create", "Twice", props(&w, json!(["80"])));
    let (_, first) = h.request("t1", event.clone(), TIMEOUT).await;
    let inv = h.api.invoke_json(&event, TIMEOUT).await;
    assert!(!inv.answer.is_error());
    let both = h.recorder.delivered_for("t1");
    assert_eq!(both.len(), 2);
    let second = &both[1].body;
    assert_eq!(status(&first), "SUCCESS");
    assert_eq!(status(second), "SUCCESS", "{second}");
    assert_eq!(first["PhysicalResourceId"], second["PhysicalResourceId"]);
    let id = first["PhysicalResourceId"].as_str().unwrap();
    let now = rules(&w.group).await;
    assert_eq!(ours(&now, id), expected(&w, &[(80, 80)]));
    assert_eq!(now.len(), 4 + 1, "four addresses on one port plus the unrelated rule: {now:?}");
}

#[tokio::test]
async fn a_rule_someone_else_made_is_neither_duplicated_nor_taken_on_delete() {
    let w = world("foreign", 13).await;
    let ec2 = local::ec2().await;
    let foreign = format!("{}/32", w.v4[0]);
    ec2.authorize_security_group_ingress()
        .group_id(&w.group)
        .ip_protocol("tcp")
        .from_port(80)
        .to_port(80)
        .cidr_ip(&foreign)
        .send()
        .await
        .unwrap();
    let h = harness().await;
    let (_, created) = h.request("f1", h.event("f1", "Create", "Foreign", props(&w, json!(["80"]))), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    let mut delete = h.event("f2", "Delete", "Foreign", props(&w, json!(["80"])));
    delete["PhysicalResourceId"] = json!(id);
    let (_, deleted) = h.request("f2", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS");
    let left = rules(&w.group).await;
    assert!(left.iter().any(|r| r.3 == foreign && r.1 == 80 && r.4.is_none()), "the pre-existing rule stays: {left:?}");
}

#[tokio::test]
async fn changing_the_security_group_replaces_and_the_old_delete_cleans_up() {
    let w = world("replace", 14).await;
    let ec2 = local::ec2().await;
    let vpc = ec2.describe_security_groups().group_ids(&w.group).send().await.unwrap().security_groups()[0]
        .vpc_id()
        .unwrap()
        .to_owned();
    let second = local::security_group(&ec2, &vpc, "app-replace-2").await;
    let h = harness().await;
    let (_, created) = h.request("r1", h.event("r1", "Create", "Moving", props(&w, json!(["80"]))), TIMEOUT).await;
    let old_id = created["PhysicalResourceId"].as_str().unwrap().to_owned();

    let mut new_props = props(&w, json!(["80"]));
    new_props["SecurityGroupId"] = json!(second);
    let mut update = h.event("r2", "Update", "Moving", new_props);
    update["PhysicalResourceId"] = json!(old_id);
    update["OldResourceProperties"] = props(&w, json!(["80"]));
    let (_, updated) = h.request("r2", update, TIMEOUT).await;
    assert_eq!(status(&updated), "SUCCESS", "{updated}");
    let new_id = updated["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_ne!(new_id, old_id, "a new security group is a replacement");
    assert_eq!(ours(&rules(&second).await, &new_id), expected(&w, &[(80, 80)]));
    assert_eq!(
        ours(&rules(&w.group).await, &old_id).len(),
        4,
        "old rules stay until CloudFormation deletes the old resource"
    );

    // CloudFormation's cleanup Delete carries the old id and the old properties.
    let mut cleanup = h.event("r3", "Delete", "Moving", props(&w, json!(["80"])));
    cleanup["PhysicalResourceId"] = json!(old_id);
    let (_, deleted) = h.request("r3", cleanup, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS");
    assert!(ours(&rules(&w.group).await, &old_id).is_empty());
    assert_eq!(ours(&rules(&second).await, &new_id).len(), 4, "the new resource's rules are untouched");
}

#[tokio::test]
async fn a_load_balancer_without_interfaces_fails_naming_what_was_searched() {
    let w = world("noeni", 15).await;
    let h = harness().await;
    let mut p = props(&w, json!(["80"]));
    let missing = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/nlb-gone/0123456789abcdef";
    p["LoadBalancerArn"] = json!(missing);
    let (_, body) = h.request("n1", h.event("n1", "Create", "NoEni", p.clone()), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains(missing), "{reason}");
    assert!(reason.contains("\"ELB net/nlb-gone/0123456789abcdef\""), "{reason}");
    let marker = body["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(marker.starts_with("stackhand-failed-create:"), "{marker}");
    // The rollback's Delete of the marker succeeds and touches nothing.
    let mut delete = h.event("n2", "Delete", "NoEni", p);
    delete["PhysicalResourceId"] = json!(marker);
    let (_, deleted) = h.request("n2", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS");
    assert_eq!(rules(&w.group).await.len(), 1);
}

/// Validation happens before any AWS call: the AWS endpoint here hangs, so any call would end in
/// "timed out" rather than the validation message.
#[tokio::test]
async fn bad_and_malformed_properties_fail_before_any_aws_call() {
    let hang = local::hanging_endpoint().await;
    let h = harness_with_endpoint(&hang).await;
    let alb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef";
    let nlb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/app/0123456789abcdef";
    let cases = [
        ("b1", json!({"LoadBalancerArn": alb, "SecurityGroupId": "sg-01234567", "Ports": ["80"]}), "LoadBalancerArn"),
        ("b2", json!({"LoadBalancerArn": nlb, "SecurityGroupId": "sg-nope", "Ports": ["80"]}), "SecurityGroupId"),
        ("b3", json!({"LoadBalancerArn": nlb, "SecurityGroupId": "sg-01234567", "Ports": ["80", "99999"]}), "Ports"),
        ("b4", json!({"LoadBalancerArn": nlb, "SecurityGroupId": "sg-01234567"}), "Ports"),
        ("b5", json!({"LoadBalancerArn": nlb, "SecurityGroupId": "sg-01234567", "Ports": {"From": "80"}}), "Ports"),
        ("b6", json!({"LoadBalancerArn": ["x"], "SecurityGroupId": "sg-01234567", "Ports": ["80"]}), "LoadBalancerArn"),
        ("b7", json!("LoadBalancerArn=x"), "expected an object of properties"),
        (
            "b8",
            json!({"LoadBalancerArn": nlb, "SecurityGroupId": "sg-01234567", "Ports": "80", "Protocol": "icmp"}),
            "Protocol",
        ),
    ];
    for (name, p, named) in cases {
        let (answer, body) = h.request(name, h.event(name, "Create", "Bad", p), Duration::from_secs(6)).await;
        assert!(!answer.is_error(), "{name}: answered, so the invocation succeeds");
        assert_eq!(status(&body), "FAILED", "{name}: {body}");
        let reason = body["Reason"].as_str().unwrap();
        assert!(reason.contains(named), "{name}: {reason}");
        assert!(!reason.contains("timed out"), "{name} made an AWS call: {reason}");
    }
    h.assert_no_secrets(&[]).await;
}

#[tokio::test]
async fn an_unknown_request_type_is_answered_failed_once() {
    let h = harness().await;
    let (_, body) = h.request("x1", h.event("x1", "Upgrade", "Odd", json!({})), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED");
    assert!(body["Reason"].as_str().unwrap().contains("\"Upgrade\" is not one of Create, Update, Delete"));
}

#[tokio::test]
async fn a_hanging_aws_endpoint_is_answered_failed_before_a_4_second_deadline() {
    let hang = local::hanging_endpoint().await;
    let h = harness_with_endpoint(&hang).await;
    let nlb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/app/0123456789abcdef";
    let p = json!({"LoadBalancerArn": nlb, "SecurityGroupId": "sg-01234567", "Ports": ["80"]});
    let (answer, body) = h.request("h1", h.event("h1", "Create", "Hang", p.clone()), Duration::from_secs(4)).await;
    assert!(!answer.is_error());
    assert_eq!(status(&body), "FAILED");
    assert!(body["Reason"].as_str().unwrap().starts_with("timed out"), "{body}");
    // The process is still healthy: the next request gets its own single answer.
    let (_, next) = h.request("h2", h.event("h2", "Upgrade", "Hang", p), Duration::from_secs(4)).await;
    assert_eq!(status(&next), "FAILED");
    h.assert_no_secrets(&[]).await;
}

#[tokio::test]
async fn a_response_endpoint_failing_twice_gets_the_answer_on_the_third_put() {
    let h = harness().await;
    h.recorder.fail_next(2);
    let (answer, body) = h.request("e1", h.event("e1", "Upgrade", "Flaky", json!({})), TIMEOUT).await;
    assert!(!answer.is_error());
    assert_eq!(status(&body), "FAILED");
    let all = h.recorder.puts_for("e1");
    assert_eq!(all.iter().map(|p| p.answered).collect::<Vec<_>>(), vec![500, 500, 200]);
    assert_eq!(answer.value()["ResponseAttempts"], 3);
}

#[tokio::test]
async fn an_event_without_a_response_url_is_an_invocation_error() {
    let h = harness().await;
    let mut event = h.event("z1", "Create", "NoUrl", json!({}));
    event.as_object_mut().unwrap().remove("ResponseURL");
    let inv = h.api.invoke_json(&event, TIMEOUT).await;
    assert!(inv.answer.is_error(), "{:?}", inv.answer);
    assert!(inv.answer.value()["errorMessage"].as_str().unwrap().contains("no ResponseURL"), "{:?}", inv.answer);
    let inv = h.api.invoke(&b"{not json"[..], TIMEOUT).await;
    assert!(inv.answer.is_error(), "malformed JSON is an invocation error: {:?}", inv.answer);
    assert!(h.recorder.puts_for("z1").is_empty());
}

#[tokio::test]
async fn the_answer_reaches_a_real_presigned_s3_url() {
    let w = world("s3", 16).await;
    let object = local::PresignedObject::create("cfn-responses", "stackhand/presigned-create").await;
    let h = harness().await;
    let event = cfn_event("Create", &object.url, "ViaS3", TYPE, props(&w, json!(["80"])));
    let inv = h.api.invoke_json(&event, TIMEOUT).await;
    assert!(!inv.answer.is_error(), "{:?}\n{}", inv.answer, h.process.output());
    let stored: Value = serde_json::from_str(&object.read().await.expect("the response object exists")).unwrap();
    assert_eq!(stored["Status"], "SUCCESS", "{stored}");
    assert_eq!(stored["LogicalResourceId"], "ViaS3");
    assert_eq!(stored["Data"]["RuleCount"], "4");
    let signature = object.url.split("X-Amz-Signature=").nth(1).unwrap().split('&').next().unwrap();
    assert!(!h.process.settled_output().await.contains(signature), "the presigned URL's signature reached the log");
}

#[tokio::test]
async fn the_fault_matrix() {
    let nlb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/nlb-fault/0123456789abcdef";
    let props = json!({"LoadBalancerArn": nlb, "SecurityGroupId": "sg-0123456789abcdef0", "Ports": ["80"]});
    FaultMatrix {
        binary: BIN,
        resource_type: TYPE,
        calls_aws: props.clone(),
        fails: props.clone(),
        wrong_type: json!({"LoadBalancerArn": nlb, "SecurityGroupId": "sg-0123456789abcdef0", "Ports": {"From": 80}}),
        wrong_type_named: "Ports",
    }
    .run()
    .await;
}

#[tokio::test]
async fn throttled_ec2_still_converges_to_the_right_rules() {
    let w = world("throttle", 17).await;
    let proxy = ThrottlingProxy::start(&moto_url(), 2).await;
    let h = harness_with_endpoint(&proxy.url()).await;
    let (_, created) =
        h.request("th1", h.event("th1", "Create", "Throttled", props(&w, json!(["80", "443"]))), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_eq!(ours(&rules(&w.group).await, &id), expected(&w, &[(80, 80), (443, 443)]));
    let mut delete = h.event("th2", "Delete", "Throttled", props(&w, json!(["80", "443"])));
    delete["PhysicalResourceId"] = json!(id);
    let (_, deleted) = h.request("th2", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    assert!(ours(&rules(&w.group).await, &id).is_empty());
    assert!(proxy.throttled() >= 2, "throttled {} of {} calls", proxy.throttled(), proxy.seen());
}
