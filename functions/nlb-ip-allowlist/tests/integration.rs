//! nlb-ip-allowlist end to end: the release-shaped binary polls a Lambda Runtime API emulator, answers
//! CloudFormation through a recording endpoint (and once through a real presigned S3 URL), and changes
//! security groups in moto's server. Needs the local stack: run with `make test`.

use std::time::Duration;

use aws_sdk_ec2::types::{Filter, Tag};
use nlb_ip_allowlist::allowlist::OWNER_TAG;
use serde_json::{json, Value};
use testkit::local::{self, aws_env, moto_url};
use testkit::{cfn_event, status, FaultMatrix, Harness, ThrottlingProxy};

const BIN: &str = env!("CARGO_BIN_EXE_nlb-ip-allowlist");
const TYPE: &str = "Custom::NlbIpAllowlist";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Through testkit's proxy, which answers for the interfaces seeded with `local::nlb_interface` as AWS
/// does for a load balancer's (requester-managed, `network_load_balancer`): moto never makes them so.
async fn harness() -> Harness {
    Harness::start(BIN, TYPE, &aws_env(&aws_shaped().await)).await
}

async fn aws_shaped() -> String {
    ThrottlingProxy::counting(&moto_url()).await.url()
}

/// The opt-in tag the function requires of a group (by default), and the group tagged with it.
const OPT_IN: (&str, &str) = ("stackhand:allowlist", "true");

async fn opt_in(group: &str) {
    let tag = Tag::builder().key(OPT_IN.0).value(OPT_IN.1).build();
    local::ec2().await.create_tags().resources(group).tags(tag).send().await.expect("CreateTags");
}

async fn opt_out(group: &str) {
    let tag = Tag::builder().key(OPT_IN.0).build();
    local::ec2().await.delete_tags().resources(group).tags(tag).send().await.expect("DeleteTags");
}

async fn harness_with_endpoint(endpoint: &str) -> Harness {
    Harness::start(BIN, TYPE, &aws_env(endpoint)).await
}

/// A VPC with an app security group (and one unrelated rule in it), an NLB's three ENIs (one with an
/// IPv6 address), and decoy ENIs that must never be allowed.
struct World {
    group: String,
    subnets: Vec<String>,
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
    opt_in(&group).await;
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
        v4.push(local::nlb_interface(&ec2, subnet, &description, ipv6).await);
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
    World { group, subnets: net.subnet_ids.clone(), arn, v4, v6, decoys }
}

fn props(w: &World, ports: Value) -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:under-test",
        "LoadBalancerArn": w.arn, "SecurityGroupId": w.group, "Ports": ports
    })
}

/// `(protocol, from, to, cidr, owners)`: owners are the physical ids in the rule's stackhand owner
/// tags (`stackhand:nlb-ip-allowlist:<digest>` = physical id), plus `legacy:<id>` for the single key of
/// earlier versions.
type Rule = (String, i32, i32, String, Vec<String>);

async fn rules(group: &str) -> Vec<Rule> {
    let out = local::ec2()
        .await
        .describe_security_group_rules()
        .filters(Filter::builder().name("group-id").values(group).build())
        .send()
        .await
        .expect("DescribeSecurityGroupRules");
    let mut rules: Vec<Rule> = out
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() != Some(true))
        .map(|r| {
            let mut owners: Vec<String> = r
                .tags()
                .iter()
                .filter_map(|t| match (t.key()?, t.value()?) {
                    (OWNER_TAG, v) => Some(format!("legacy:{v}")),
                    (k, v) if k.starts_with(&format!("{OWNER_TAG}:")) => Some(v.to_owned()),
                    _ => None,
                })
                .collect();
            owners.sort();
            (
                r.ip_protocol().unwrap_or_default().to_owned(),
                r.from_port().unwrap_or(-1),
                r.to_port().unwrap_or(-1),
                r.cidr_ipv4().or(r.cidr_ipv6()).unwrap_or_default().to_owned(),
                owners,
            )
        })
        .collect();
    rules.sort();
    rules
}

fn unrelated(rules: &[Rule]) -> bool {
    rules.iter().any(|r| r.3 == "192.0.2.10/32" && r.1 == 22 && r.4.is_empty())
}

/// The rules `owner` owns as sorted `(from, to, cidr)`.
fn ours(rules: &[Rule], owner: &str) -> Vec<(i32, i32, String)> {
    let mut v: Vec<_> =
        rules.iter().filter(|r| r.4.iter().any(|o| o == owner)).map(|r| (r.1, r.2, r.3.clone())).collect();
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
    assert_eq!(created["Data"]["IgnoredInterfaceCount"], "0");

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
    assert!(
        left.iter().any(|r| r.3 == foreign && r.1 == 80 && r.4.is_empty()),
        "the pre-existing rule stays: {left:?}"
    );
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
    opt_in(&second).await;
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

/// An NLB that never gets interfaces: after waiting as long as the deadline allows (20 s here: the
/// Create may wait about 2 s), FAILED naming the ARN and the description searched for. The answer
/// carries the deterministic physical id, whose Delete touches nothing.
#[tokio::test]
async fn a_load_balancer_without_interfaces_fails_naming_what_was_searched() {
    let w = world("noeni", 15).await;
    let h = harness().await;
    let mut p = props(&w, json!(["80"]));
    let missing = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/nlb-gone/0123456789abcdef";
    p["LoadBalancerArn"] = json!(missing);
    let (_, body) = h.request("n1", h.event("n1", "Create", "NoEni", p.clone()), Duration::from_secs(20)).await;
    assert_eq!(status(&body), "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains(missing), "{reason}");
    assert!(reason.contains("\"ELB net/nlb-gone/0123456789abcdef\""), "{reason}");
    assert!(reason.contains("after waiting"), "{reason}");
    let id = body["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&format!("nlb-ip-allowlist:{}:nlb-gone:", w.group)), "{id}");
    // The rollback's Delete succeeds and touches nothing.
    let mut delete = h.event("n2", "Delete", "NoEni", p);
    delete["PhysicalResourceId"] = json!(id);
    let (_, deleted) = h.request("n2", delete, TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS");
    assert_eq!(rules(&w.group).await.len(), 1);
}

/// Issue 12 item 9: an NLB still provisioning (in another stack) has no interfaces yet; the Create
/// waits for them instead of failing at once.
#[tokio::test]
async fn interfaces_that_appear_while_the_create_waits_are_allowed() {
    let w = world("late", 18).await;
    let ec2 = local::ec2().await;
    let subnet = ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(vpc_of(&w.group).await).build())
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .subnet_id()
        .unwrap()
        .to_owned();
    let name = format!("nlb-late-{}", &hex_id()[..6]);
    let id = hex_id();
    let arn = format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/{name}/{id}");
    let mut p = props(&w, json!(["80"]));
    p["LoadBalancerArn"] = json!(arn);
    let h = harness().await;
    let appears = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        local::nlb_interface(&local::ec2().await, &subnet, &format!("ELB net/{name}/{id}"), None).await
    });
    let started = std::time::Instant::now();
    // 45 s: the Create may wait about 18 s, ample for the interface to appear under load.
    let (_, created) = h.request("l1", h.event("l1", "Create", "Late", p), Duration::from_secs(45)).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    let address = appears.await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(created["Data"]["PrivateIpAddresses"], address);
    let owner = created["PhysicalResourceId"].as_str().unwrap();
    assert_eq!(ours(&rules(&w.group).await, owner), vec![(80, 80, format!("{address}/32"))]);
}

async fn vpc_of(group: &str) -> String {
    let ec2 = local::ec2().await;
    ec2.describe_security_groups().group_ids(group).send().await.unwrap().security_groups()[0]
        .vpc_id()
        .unwrap()
        .to_owned()
}

fn delete_event(h: &Harness, name: &str, logical: &str, props: Value, id: &str) -> Value {
    let mut delete = h.event(name, "Delete", logical, props);
    delete["PhysicalResourceId"] = json!(id);
    delete
}

/// Issue 12 item 1: a renamed logical id is a new physical id. Its Create must share the old
/// resource's identical rules (not skip them), so that CloudFormation's Delete of the old resource
/// leaves the NLB its access; the last owner's Delete removes them.
#[tokio::test]
async fn a_renamed_resource_shares_the_rules_and_the_old_delete_keeps_them() {
    let w = world("rename", 19).await;
    let h = harness().await;
    let (_, before) = h.request("m1", h.event("m1", "Create", "Before", props(&w, json!(["80"]))), TIMEOUT).await;
    assert_eq!(status(&before), "SUCCESS", "{before}");
    let old_id = before["PhysicalResourceId"].as_str().unwrap().to_owned();
    let (_, after) = h.request("m2", h.event("m2", "Create", "After", props(&w, json!(["80"]))), TIMEOUT).await;
    assert_eq!(status(&after), "SUCCESS", "{after}");
    let new_id = after["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_ne!(old_id, new_id);
    let shared = rules(&w.group).await;
    assert_eq!(shared.len(), 4 + 1, "no duplicates: {shared:?}");
    assert_eq!(ours(&shared, &old_id), expected(&w, &[(80, 80)]));
    assert_eq!(ours(&shared, &new_id), expected(&w, &[(80, 80)]), "the new owner shares every rule");

    // CloudFormation deletes the old resource: the rules stay, owned by the new one alone.
    let (_, deleted) =
        h.request("m3", delete_event(&h, "m3", "Before", props(&w, json!(["80"])), &old_id), TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    let kept = rules(&w.group).await;
    assert!(ours(&kept, &old_id).is_empty(), "{kept:?}");
    assert_eq!(ours(&kept, &new_id), expected(&w, &[(80, 80)]), "the NLB keeps its access: {kept:?}");

    // The last owner's Delete revokes them.
    let (_, deleted) =
        h.request("m4", delete_event(&h, "m4", "After", props(&w, json!(["80"])), &new_id), TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    let left = rules(&w.group).await;
    assert_eq!(left.len(), 1, "only the unrelated rule: {left:?}");
    assert!(unrelated(&left));
}

/// Rules tagged by earlier versions (`stackhand:nlb-ip-allowlist=<physical id>`): an Update moves them
/// to the owner's own key without duplicating them, and Delete still removes them.
#[tokio::test]
async fn rules_tagged_by_earlier_versions_are_still_owned() {
    let w = world("legacy", 20).await;
    let ec2 = local::ec2().await;
    let h = harness().await;
    let (_, created) = h.request("g1", h.event("g1", "Create", "Legacy", props(&w, json!(["80"]))), TIMEOUT).await;
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    // Make the rules look as an earlier version left them: the single key, valued with the physical id.
    let retag = |ec2: aws_sdk_ec2::Client, group: String, id: String| async move {
        let out = ec2
            .describe_security_group_rules()
            .filters(Filter::builder().name("group-id").values(&group).build())
            .send()
            .await
            .unwrap();
        for r in out.security_group_rules() {
            let Some(key) = r.tags().iter().filter_map(|t| t.key()).find(|k| k.starts_with(&format!("{OWNER_TAG}:")))
            else {
                continue;
            };
            let rule = r.security_group_rule_id().unwrap();
            ec2.delete_tags().resources(rule).tags(Tag::builder().key(key).build()).send().await.unwrap();
            ec2.create_tags()
                .resources(rule)
                .tags(Tag::builder().key(OWNER_TAG).value(&id).build())
                .send()
                .await
                .unwrap();
        }
    };
    retag(ec2.clone(), w.group.clone(), id.clone()).await;
    let legacy = format!("legacy:{id}");
    assert_eq!(ours(&rules(&w.group).await, &legacy), expected(&w, &[(80, 80)]));

    let mut update = h.event("g2", "Update", "Legacy", props(&w, json!(["80"])));
    update["PhysicalResourceId"] = json!(id);
    update["OldResourceProperties"] = props(&w, json!(["80"]));
    let (_, updated) = h.request("g2", update, TIMEOUT).await;
    assert_eq!(status(&updated), "SUCCESS", "{updated}");
    let migrated = rules(&w.group).await;
    assert_eq!(migrated.len(), 4 + 1, "not duplicated: {migrated:?}");
    assert_eq!(ours(&migrated, &id), expected(&w, &[(80, 80)]));
    assert!(ours(&migrated, &legacy).is_empty(), "the old key is gone: {migrated:?}");

    retag(ec2, w.group.clone(), id.clone()).await;
    let (_, deleted) = h.request("g3", delete_event(&h, "g3", "Legacy", props(&w, json!(["80"])), &id), TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    assert_eq!(rules(&w.group).await.len(), 1);
}

/// Issue 12 item 10: a Delete whose properties a later version no longer accepts still removes the
/// rules, by the security group in the physical id and the owner tag.
#[tokio::test]
async fn a_delete_whose_properties_no_longer_parse_still_removes_the_rules() {
    let w = world("unparsed", 21).await;
    let h = harness().await;
    let (_, created) = h.request("p1", h.event("p1", "Create", "Unparsed", props(&w, json!(["80"]))), TIMEOUT).await;
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_eq!(ours(&rules(&w.group).await, &id).len(), 4);
    let mut unreadable = props(&w, json!({"From": 80}));
    unreadable["LoadBalancer"] = json!("renamed in a later version");
    let (_, deleted) = h.request("p2", delete_event(&h, "p2", "Unparsed", unreadable, &id), TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    let left = rules(&w.group).await;
    assert_eq!(left.len(), 1, "only the unrelated rule: {left:?}");
    assert!(unrelated(&left));
}

/// Issue 12 item 2: more rules than the group's quota fail before any change, naming the group, the
/// counts and the fix (moto enforces AWS's default of 60).
#[tokio::test]
async fn too_many_rules_for_the_quota_fail_before_any_change() {
    let w = world("quota", 22).await;
    let h = harness().await;
    let ranges: Vec<String> = (0..20).map(|i| format!("{}", 9000 + i)).collect();
    let (_, body) = h.request("q1", h.event("q1", "Create", "Quota", props(&w, json!(ranges))), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    for part in [w.group.as_str(), "61 inbound IPv4 rules", "quota of 60", "1 there now + 60 new", "L-0EA8095F"] {
        assert!(reason.contains(part), "{part:?} in {reason}");
    }
    assert_eq!(rules(&w.group).await.len(), 1, "nothing was changed");
}

/// Issue 12 item 2: a Create that fails after its first change (the quota set too high for the
/// account, so AWS itself refuses a later port range) leaves nothing behind: the runtime's undo runs
/// this resource's Delete at once.
#[tokio::test]
async fn a_create_failing_after_its_first_change_leaves_nothing_behind() {
    let w = world("undo", 23).await;
    let mut env = aws_env(&aws_shaped().await);
    env.push(("RULES_PER_SECURITY_GROUP".into(), "1000".into()));
    let h = Harness::start(BIN, TYPE, &env).await;
    let ranges: Vec<String> = (0..20).map(|i| format!("{}", 9000 + i)).collect();
    let (_, body) = h.request("u1", h.event("u1", "Create", "Undo", props(&w, json!(ranges))), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains("RulesPerSecurityGroupLimitExceeded") && reason.contains("nothing of it was left"),
        "{reason}"
    );
    assert!(body["PhysicalResourceId"].as_str().unwrap().starts_with("nlb-ip-allowlist:"), "{body}");
    let left = rules(&w.group).await;
    assert_eq!(left.len(), 1, "only the unrelated rule: {left:?}");
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

fn matrix() -> FaultMatrix<'static> {
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
}

testkit::fault_matrix!(matrix);

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

// Issue 19, item 3: a stack author may allowlist only what the function's owner allowed.

fn description_of(w: &World) -> String {
    let mut parts = w.arn.rsplit('/');
    let (id, name) = (parts.next().unwrap(), parts.next().unwrap());
    format!("ELB net/{name}/{id}")
}

/// The attack: an author creates an interface of their own with the exact description of the load
/// balancer's (CreateNetworkInterface lets anyone choose it). It is not requester-managed, so its
/// address is never allowed; the answer counts it and the log names it.
#[tokio::test]
async fn a_forged_interface_is_not_allowlisted() {
    let w = world("forged", 24).await;
    let ec2 = local::ec2().await;
    let forged = local::interface(&ec2, &w.subnets[2], &description_of(&w), None).await;
    let h = harness().await;
    let (_, created) = h.request("v1", h.event("v1", "Create", "Forged", props(&w, json!(["80"]))), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    let now = rules(&w.group).await;
    assert!(!now.iter().any(|r| r.3 == format!("{forged}/32")), "the forged interface {forged} was allowed: {now:?}");
    assert_eq!(ours(&now, &id), expected(&w, &[(80, 80)]), "the real interfaces still are");
    assert_eq!(created["Data"]["IgnoredInterfaceCount"], "1");
    assert!(!created["Data"]["PrivateIpAddresses"].as_str().unwrap().contains(&forged));
    let ignored = h.process.wait_for_log(nlb_ip_allowlist::interfaces::IGNORED_LOG, 1).await;
    assert_eq!(ignored[0]["ignored"], 1, "{ignored:?}");
    assert!(ignored[0]["ids"].as_str().unwrap().contains("not requester-managed"), "{ignored:?}");
}

/// The attack: an author names a group whose owner never opted in. FAILED before any change, naming
/// the property, the tag to add and the owner's setting.
#[tokio::test]
async fn an_untagged_group_is_refused() {
    let w = world("untagged", 25).await;
    opt_out(&w.group).await;
    let h = harness().await;
    let (_, body) = h.request("o1", h.event("o1", "Create", "Untagged", props(&w, json!(["80"]))), TIMEOUT).await;
    assert_eq!(status(&body), "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    for part in [w.group.as_str(), "(SecurityGroupId)", "has no tag stackhand:allowlist", "stackhand:allowlist=true"] {
        assert!(reason.contains(part), "{part:?} in {reason}");
    }
    assert!(reason.contains("AllowlistGroupTagValue") && reason.contains("ALLOWLIST_GROUP_TAG_VALUE"), "{reason}");
    assert_eq!(rules(&w.group).await.len(), 1, "nothing was changed: only the unrelated rule");
}

/// A group whose tag was removed after its allowlist was made: the Delete still removes the
/// allowlist's own rules (and only those).
#[tokio::test]
async fn a_delete_on_an_untagged_group_removes_its_own_rules() {
    let w = world("optout", 26).await;
    let h = harness().await;
    let (_, created) = h.request("x1", h.event("x1", "Create", "OptOut", props(&w, json!(["80"]))), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    opt_out(&w.group).await;
    let (_, deleted) = h.request("x2", delete_event(&h, "x2", "OptOut", props(&w, json!(["80"])), &id), TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    let left = rules(&w.group).await;
    assert_eq!(left.len(), 1, "only the unrelated rule: {left:?}");
    assert!(unrelated(&left));
}

/// The upgrade path: a stack made by a version without the opt-in, on a group nobody tagged (its rules
/// under the single owner key of earlier versions, without the marker). After the upgrade its Update
/// fails, naming the tag to add, and changes nothing; its Delete still removes its rules; once the
/// group is tagged, the Update succeeds.
#[tokio::test]
async fn an_existing_allowlist_on_an_untagged_group_fails_its_update_naming_the_tag_and_still_deletes() {
    let w = world("upgrade", 27).await;
    let ec2 = local::ec2().await;
    let h = harness().await;
    let (_, created) = h.request("w1", h.event("w1", "Create", "Upgrade", props(&w, json!(["80"]))), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    // As an earlier version left it: the group untagged, each rule under the single key, no marker.
    opt_out(&w.group).await;
    let out = ec2
        .describe_security_group_rules()
        .filters(Filter::builder().name("group-id").values(&w.group).build())
        .send()
        .await
        .unwrap();
    for r in out.security_group_rules().iter().filter(|r| !r.tags().is_empty()) {
        let rule = r.security_group_rule_id().unwrap();
        let keys: Vec<Tag> = r.tags().iter().map(|t| Tag::builder().key(t.key().unwrap()).build()).collect();
        ec2.delete_tags().resources(rule).set_tags(Some(keys)).send().await.unwrap();
        ec2.create_tags().resources(rule).tags(Tag::builder().key(OWNER_TAG).value(&id).build()).send().await.unwrap();
    }
    let legacy = format!("legacy:{id}");
    let before = rules(&w.group).await;
    assert_eq!(ours(&before, &legacy), expected(&w, &[(80, 80)]));

    let mut update = h.event("w2", "Update", "Upgrade", props(&w, json!(["80", "443"])));
    update["PhysicalResourceId"] = json!(id);
    update["OldResourceProperties"] = props(&w, json!(["80"]));
    let (_, updated) = h.request("w2", update.clone(), TIMEOUT).await;
    assert_eq!(status(&updated), "FAILED", "{updated}");
    let reason = updated["Reason"].as_str().unwrap();
    assert!(reason.contains(&w.group) && reason.contains("stackhand:allowlist=true"), "{reason}");
    assert_eq!(rules(&w.group).await, before, "the refused Update changed nothing");

    // The group's owner tags it: the same Update succeeds, and takes the rules over from the old key.
    opt_in(&w.group).await;
    update["ResponseURL"] = json!(h.recorder.url("w3"));
    let (_, retried) = h.request("w3", update, TIMEOUT).await;
    assert_eq!(status(&retried), "SUCCESS", "{retried}");
    assert_eq!(ours(&rules(&w.group).await, &id), expected(&w, &[(80, 80), (443, 443)]));

    // Untagged again (say, by mistake): the Delete still removes every rule of this resource.
    opt_out(&w.group).await;
    let (_, deleted) =
        h.request("w4", delete_event(&h, "w4", "Upgrade", props(&w, json!(["80", "443"])), &id), TIMEOUT).await;
    assert_eq!(status(&deleted), "SUCCESS", "{deleted}");
    let left = rules(&w.group).await;
    assert_eq!(left.len(), 1, "only the unrelated rule: {left:?}");
}

/// Issue 20 item 13: a changed RuleDescription reaches every rule the Update keeps, not only the rules
/// it adds; a rule someone else made keeps its own words.
#[tokio::test]
async fn an_update_with_a_new_rule_description_relabels_the_rules_it_keeps() {
    let w = world("relabel", 27).await;
    let h = harness().await;
    let mut first = props(&w, json!(["8080"]));
    first["RuleDescription"] = json!("app tier v1");
    let (_, created) = h.request("l1", h.event("l1", "Create", "Relabel", first.clone()), TIMEOUT).await;
    assert_eq!(status(&created), "SUCCESS", "{created}");
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();

    let mut second = props(&w, json!(["8080", "443"]));
    second["RuleDescription"] = json!("app tier v2");
    let mut update = h.event("l2", "Update", "Relabel", second);
    update["PhysicalResourceId"] = json!(id);
    update["OldResourceProperties"] = first;
    let (_, updated) = h.request("l2", update, TIMEOUT).await;
    assert_eq!(status(&updated), "SUCCESS", "{updated}");

    let out = local::ec2()
        .await
        .describe_security_group_rules()
        .filters(Filter::builder().name("group-id").values(&w.group).build())
        .send()
        .await
        .expect("DescribeSecurityGroupRules");
    let ingress: Vec<_> = out.security_group_rules().iter().filter(|r| r.is_egress() != Some(true)).collect();
    let (mine, theirs): (Vec<_>, Vec<_>) = ingress
        .into_iter()
        .partition(|r| r.tags().iter().any(|t| t.key().is_some_and(|k| k.starts_with(&format!("{OWNER_TAG}:")))));
    assert_eq!(mine.len(), expected(&w, &[(443, 443), (8080, 8080)]).len(), "{mine:?}");
    for rule in &mine {
        assert_eq!(rule.description(), Some("app tier v2"), "kept and added rules alike: {rule:?}");
    }
    assert!(!theirs.is_empty() && theirs.iter().all(|r| r.description().unwrap_or_default().is_empty()), "{theirs:?}");
}
