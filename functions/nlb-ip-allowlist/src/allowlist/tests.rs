use super::*;
use std::time::Duration;

use aws_sdk_ec2::types::{SecurityGroupRule, Tag};
use stackhand::cfn::{CustomResource as _, RequestInfo};
use tokio::time::Instant;

use crate::interfaces::AFTER_WAIT;
use crate::props::NlbArn;
use crate::props::{Protocol, SecurityGroupId};
use crate::resource::group_of;
use aws_sdk_ec2::operation::authorize_security_group_ingress::{
    AuthorizeSecurityGroupIngressError, AuthorizeSecurityGroupIngressOutput,
};
use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
use aws_sdk_ec2::operation::delete_tags::DeleteTagsOutput;
use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
use aws_sdk_ec2::operation::describe_security_group_rules::DescribeSecurityGroupRulesOutput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use aws_sdk_ec2::operation::revoke_security_group_ingress::{
    RevokeSecurityGroupIngressError, RevokeSecurityGroupIngressOutput,
};
use aws_sdk_ec2::types::{NetworkInterface, NetworkInterfacePrivateIpAddress, NetworkInterfaceType, SecurityGroup};
use aws_sdk_ec2::Client;
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::error::ErrorMetadata;
use serde_json::json;

const GROUP: &str = "sg-0123456789abcdef0";
const VPC: &str = "vpc-0123456789abcdef0";
const OWNER: &str = "nlb-ip-allowlist:sg-0123456789abcdef0:app:0011223344556677";
const OLD_OWNER: &str = "nlb-ip-allowlist:sg-0123456789abcdef0:app:8899aabbccddeeff";

fn client(rules: &[&Rule]) -> Client {
    testkit::mock_ec2(rules)
}

fn props_with(ports: &[&str]) -> Properties {
    Properties {
        load_balancer_arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/app/0123456789abcdef"
            .parse::<NlbArn>()
            .unwrap(),
        security_group_id: GROUP.parse::<SecurityGroupId>().unwrap(),
        ports: ports.iter().map(|p| p.parse().unwrap()).collect(),
        protocol: Protocol::Tcp,
        rule_description: None,
    }
}

fn props() -> Properties {
    props_with(&["80"])
}

/// The load balancer's interfaces as AWS makes them: requester-managed, of the load balancer type, in
/// the group's VPC.
fn interfaces(addresses: &'static [&'static str]) -> Rule {
    mock!(Client::describe_network_interfaces).then_output(move || {
        let enis = addresses.iter().map(|ip| nlb_eni(ip).build());
        DescribeNetworkInterfacesOutput::builder().set_network_interfaces(Some(enis.collect())).build()
    })
}

fn nlb_eni(ip: &str) -> aws_sdk_ec2::types::builders::NetworkInterfaceBuilder {
    NetworkInterface::builder()
        .network_interface_id(format!("eni-{}", ip.replace('.', "")))
        .description("ELB net/app/0123456789abcdef")
        .requester_managed(true)
        .requester_id("amazon-elb")
        .interface_type(NetworkInterfaceType::NetworkLoadBalancer)
        .vpc_id(VPC)
        .private_ip_addresses(NetworkInterfacePrivateIpAddress::builder().private_ip_address(ip).build())
}

/// DescribeSecurityGroups for GROUP, in VPC, with these tags.
fn group_tagged(tags: &'static [(&'static str, &'static str)]) -> Rule {
    mock!(Client::describe_security_groups).match_requests(|r| r.group_ids() == [GROUP]).then_output(move || {
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build());
        let group = SecurityGroup::builder().group_id(GROUP).vpc_id(VPC).set_tags(Some(tags.collect())).build();
        DescribeSecurityGroupsOutput::builder().security_groups(group).build()
    })
}

/// A client whose first answer is GROUP, opted in (`stackhand:allowlist=true`), then `rules`.
fn opted_in(rules: &[&Rule]) -> Client {
    let group = group_tagged(&[("stackhand:allowlist", "true")]);
    let all: Vec<&Rule> = std::iter::once(&group).chain(rules.iter().copied()).collect();
    client(&all)
}

fn one_interface() -> Rule {
    interfaces(&["10.0.0.5"])
}

/// A rule in GROUP: id, CIDR, port, tags.
#[derive(Clone)]
struct R(String, String, i32, Vec<(String, String)>);

fn r(id: &str, cidr: &str, tags: &[(String, String)]) -> R {
    R(id.into(), cidr.into(), 80, tags.to_vec())
}

fn mine() -> (String, String) {
    (owner_key(OWNER), OWNER.into())
}

fn old_owner() -> (String, String) {
    (owner_key(OLD_OWNER), OLD_OWNER.into())
}

fn listed(rules: Vec<R>) -> Rule {
    mock!(Client::describe_security_group_rules)
        .match_requests(|r| r.filters().iter().any(|f| f.name() == Some("group-id") && f.values() == [GROUP]))
        .then_output(move || {
            let rules = rules.iter().map(|R(id, cidr, port, tags)| {
                SecurityGroupRule::builder()
                    .security_group_rule_id(id)
                    .group_id(GROUP)
                    .is_egress(false)
                    .ip_protocol("tcp")
                    .from_port(*port)
                    .to_port(*port)
                    .cidr_ipv4(cidr)
                    .description("NLB app (stackhand nlb-ip-allowlist)")
                    .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
                    .build()
            });
            DescribeSecurityGroupRulesOutput::builder().set_security_group_rules(Some(rules.collect())).build()
        })
}

fn rules_output(owned: &[(&'static str, &'static str)]) -> Rule {
    listed(owned.iter().map(|(id, cidr)| r(id, cidr, &[mine()])).collect())
}

fn revoked(ids: &'static [&'static str]) -> Rule {
    mock!(Client::revoke_security_group_ingress)
        .match_requests(move |r| r.group_id() == Some(GROUP) && r.security_group_rule_ids() == ids)
        .then_output(|| RevokeSecurityGroupIngressOutput::builder().r#return(true).build())
}

fn authorized() -> Rule {
    mock!(Client::authorize_security_group_ingress)
        .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().r#return(true).build())
}

fn info() -> RequestInfo {
    RequestInfo {
        stack_id: "s".into(),
        request_id: "r".into(),
        logical_resource_id: "l".into(),
        resource_type: "Custom::NlbIpAllowlist".into(),
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:nlb-ip-allowlist".into(),
        deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(30),
    }
}

fn code(code: &'static str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(format!("{code} (mocked)")).build()
}

#[test]
fn owner_keys_are_short_stable_and_per_physical_id() {
    let key = owner_key(OWNER);
    assert!(key.starts_with("stackhand:nlb-ip-allowlist:") && key.len() <= 128, "{key}");
    assert_eq!(key, owner_key(OWNER));
    assert_ne!(key, owner_key(OLD_OWNER));
}

#[tokio::test]
async fn a_duplicate_from_a_racing_delivery_is_read_again_and_succeeds() {
    let interfaces = one_interface();
    let empty = rules_output(&[]);
    let duplicate = mock!(Client::authorize_security_group_ingress)
        .then_error(|| AuthorizeSecurityGroupIngressError::generic(code("InvalidPermission.Duplicate")));
    let now_there = rules_output(&[("sgr-1", "10.0.0.5/32")]);
    let ec2 = opted_in(&[&interfaces, &empty, &duplicate, &now_there]);
    let outcome = Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
    assert_eq!(outcome.data["RuleCount"], "1");
    assert_eq!(duplicate.num_calls(), 1);
    assert_eq!(now_there.num_calls(), 1, "the group was read again after the conflict");
}

#[tokio::test]
async fn a_group_that_keeps_changing_ends_in_a_clear_error() {
    let interfaces = one_interface();
    let mut rules: Vec<Rule> = Vec::new();
    for _ in 0..ATTEMPTS {
        rules.push(rules_output(&[]));
        rules.push(
            mock!(Client::authorize_security_group_ingress)
                .then_error(|| AuthorizeSecurityGroupIngressError::generic(code("InvalidPermission.Duplicate"))),
        );
    }
    let all: Vec<&Rule> = std::iter::once(&interfaces).chain(rules.iter()).collect();
    let err = Allowlist::new(opted_in(&all)).reconcile(OWNER, &props()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(GROUP) && text.contains("kept changing"), "{text}");
}

#[tokio::test]
async fn a_denied_call_names_the_operation_and_the_code() {
    let interfaces = one_interface();
    let empty = rules_output(&[]);
    let denied = mock!(Client::authorize_security_group_ingress)
        .then_error(|| AuthorizeSecurityGroupIngressError::generic(code("UnauthorizedOperation")));
    let err = Allowlist::new(opted_in(&[&interfaces, &empty, &denied])).reconcile(OWNER, &props()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "AuthorizeSecurityGroupIngress failed: UnauthorizedOperation: UnauthorizedOperation (mocked)"
    );
}

#[tokio::test]
async fn delete_succeeds_when_the_group_vanished_between_read_and_revoke() {
    let ours = rules_output(&[("sgr-1", "10.0.0.5/32")]);
    let gone = mock!(Client::revoke_security_group_ingress)
        .then_error(|| RevokeSecurityGroupIngressError::generic(code("InvalidGroup.NotFound")));
    let handler = Allowlist::new(client(&[&ours, &gone]));
    handler.delete(&info(), OWNER, &props()).await.unwrap();
    assert_eq!(gone.num_calls(), 1);
}

#[tokio::test]
async fn delete_rereads_when_a_racing_delivery_revoked_first() {
    let ours = rules_output(&[("sgr-1", "10.0.0.5/32"), ("sgr-2", "10.0.0.6/32")]);
    let raced = mock!(Client::revoke_security_group_ingress)
        .then_error(|| RevokeSecurityGroupIngressError::generic(code("InvalidSecurityGroupRuleId.NotFound")));
    let one_left = rules_output(&[("sgr-2", "10.0.0.6/32")]);
    let revoked = revoked(&["sgr-2"]);
    let handler = Allowlist::new(client(&[&ours, &raced, &one_left, &revoked]));
    handler.delete(&info(), OWNER, &props()).await.unwrap();
    assert_eq!(revoked.num_calls(), 1, "only the rule still there was revoked the second time");
}

#[tokio::test]
async fn authorize_sends_every_address_of_a_range_in_one_call_tagged_with_the_owner() {
    let interfaces = interfaces(&["10.0.0.5", "10.0.1.5", "10.0.2.5"]);
    let empty = rules_output(&[]);
    let authorize = mock!(Client::authorize_security_group_ingress)
        .match_requests(|r| {
            let p = &r.ip_permissions()[0];
            let tag = &r.tag_specifications()[0].tags()[0];
            let tagged = tag.key() == Some(owner_key(OWNER).as_str()) && tag.value() == Some(OWNER);
            r.ip_permissions().len() == 1 && p.ip_ranges().len() == 3 && p.from_port() == Some(80) && tagged
        })
        .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().r#return(true).build());
    let ec2 = opted_in(&[&interfaces, &empty, &authorize]);
    let outcome = Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
    assert_eq!(authorize.num_calls(), 1);
    assert_eq!(outcome.data["PrivateIpAddresses"], "10.0.0.5,10.0.1.5,10.0.2.5");
}

/// Item 1: the identical rule of another allowlist (the same resource under its old physical id) is
/// shared by adding this owner's tag, not skipped.
#[tokio::test]
async fn a_rule_another_allowlist_owns_is_shared_by_tagging_it() {
    let interfaces = one_interface();
    let theirs = listed(vec![r("sgr-old", "10.0.0.5/32", &[old_owner()])]);
    let claim = mock!(Client::create_tags)
        .match_requests(|r| {
            let tag = &r.tags()[0];
            r.resources() == ["sgr-old".to_string()]
                && r.tags().len() == 1
                && tag.key() == Some(owner_key(OWNER).as_str())
                && tag.value() == Some(OWNER)
        })
        .then_output(|| CreateTagsOutput::builder().build());
    let ec2 = opted_in(&[&interfaces, &theirs, &claim]);
    let outcome = Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
    assert_eq!(claim.num_calls(), 1);
    assert_eq!(outcome.data["RuleCount"], "1");
}

/// Item 1: a Delete removes only its own tag from a rule another allowlist still owns.
#[tokio::test]
async fn delete_keeps_a_rule_another_allowlist_still_owns() {
    let shared = listed(vec![r("sgr-1", "10.0.0.5/32", &[old_owner(), mine()]), r("sgr-2", "10.0.0.6/32", &[mine()])]);
    let sole = revoked(&["sgr-2"]);
    let release = mock!(Client::delete_tags)
        .match_requests(|r| {
            let keys: Vec<_> = r.tags().iter().map(|t| (t.key(), t.value())).collect();
            r.resources() == ["sgr-1".to_string()]
                && keys == [(Some(owner_key(OWNER).as_str()), None), (Some(OWNER_TAG), Some(OWNER))]
        })
        .then_output(|| DeleteTagsOutput::builder().build());
    let after = listed(vec![r("sgr-1", "10.0.0.5/32", &[old_owner()])]);
    let handler = Allowlist::new(client(&[&shared, &sole, &release, &after]));
    handler.delete(&info(), OWNER, &props()).await.unwrap();
    assert_eq!((sole.num_calls(), release.num_calls(), after.num_calls()), (1, 1, 1));
}

/// Two owners deleting at once both see the other's tag and both only untag: the re-read after
/// untagging finds no stackhand owner left and revokes.
#[tokio::test]
async fn a_rule_both_owners_released_at_once_is_revoked() {
    let shared = listed(vec![r("sgr-1", "10.0.0.5/32", &[old_owner(), mine()])]);
    let release = mock!(Client::delete_tags).then_output(|| DeleteTagsOutput::builder().build());
    let orphaned = listed(vec![r("sgr-1", "10.0.0.5/32", &[])]);
    let revoke = revoked(&["sgr-1"]);
    let handler = Allowlist::new(client(&[&shared, &release, &orphaned, &revoke]));
    handler.delete(&info(), OWNER, &props()).await.unwrap();
    assert_eq!(revoke.num_calls(), 1);
}

/// Rules tagged by earlier versions (`stackhand:nlb-ip-allowlist=<physical id>`) stay this
/// resource's: Delete revokes them, an Update moves them to the new key.
#[tokio::test]
async fn rules_under_the_old_single_tag_are_still_ours() {
    let legacy = (OWNER_TAG.to_string(), OWNER.to_string());
    let old = listed(vec![r("sgr-1", "10.0.0.5/32", std::slice::from_ref(&legacy))]);
    let revoke = revoked(&["sgr-1"]);
    Allowlist::new(client(&[&old, &revoke])).delete(&info(), OWNER, &props()).await.unwrap();
    assert_eq!(revoke.num_calls(), 1);

    let interfaces = one_interface();
    let old = listed(vec![r("sgr-1", "10.0.0.5/32", &[legacy])]);
    let claim = mock!(Client::create_tags)
        .match_requests(|r| r.tags()[0].key() == Some(owner_key(OWNER).as_str()))
        .then_output(|| CreateTagsOutput::builder().build());
    let untag = mock!(Client::delete_tags)
        .match_requests(|r| {
            r.tags().len() == 1 && r.tags()[0].key() == Some(OWNER_TAG) && r.tags()[0].value() == Some(OWNER)
        })
        .then_output(|| DeleteTagsOutput::builder().build());
    let ec2 = opted_in(&[&interfaces, &old, &claim, &untag]);
    Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
    assert_eq!((claim.num_calls(), untag.num_calls()), (1, 1));
}

/// A rule nobody from stackhand owns (made by hand) is neither duplicated nor claimed.
#[tokio::test]
async fn a_foreign_rule_is_left_alone() {
    let interfaces = one_interface();
    let foreign = listed(vec![r("sgr-manual", "10.0.0.5/32", &[("team".into(), "net".into())])]);
    let ec2 = opted_in(&[&interfaces, &foreign]);
    let outcome = Allowlist::new(ec2).reconcile(OWNER, &props()).await.unwrap();
    assert_eq!(outcome.data["RuleCount"], "1");
}

/// Item 2: too many rules for the group's quota fail before any change, naming the group, the
/// counts and the fix.
#[tokio::test]
async fn a_group_without_room_fails_before_any_change() {
    let interfaces = interfaces(&["10.0.0.5", "10.0.1.5"]);
    let nearly_full = listed((0..55).map(|i| r(&format!("sgr-{i}"), &format!("192.0.2.{i}/32"), &[])).collect());
    let authorize = authorized();
    let ec2 = opted_in(&[&interfaces, &nearly_full, &authorize]);
    let err = Allowlist::new(ec2).reconcile(OWNER, &props_with(&["80", "443", "8080"])).await.unwrap_err();
    assert_eq!(authorize.num_calls(), 0, "nothing was changed");
    let text = err.to_string();
    for part in [
        GROUP,
        "61 inbound IPv4 rules",
        "quota of 60",
        "55 there now + 6 new",
        "2 IPv4 addresses × 3 port ranges",
        "L-0EA8095F",
        QUOTA_ENV,
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    // A raised quota, told through the environment: the same change fits.
    let interfaces = crate::allowlist::tests::interfaces(&["10.0.0.5", "10.0.1.5"]);
    let nearly_full = listed((0..55).map(|i| r(&format!("sgr-{i}"), &format!("192.0.2.{i}/32"), &[])).collect());
    let (a, b, c) = (authorized(), authorized(), authorized());
    let ec2 = opted_in(&[&interfaces, &nearly_full, &a, &b, &c]);
    let handler = Allowlist::new(ec2).with_quota_setting(Some("100"));
    handler.reconcile(OWNER, &props_with(&["80", "443", "8080"])).await.unwrap();
    assert_eq!(a.num_calls() + b.num_calls() + c.num_calls(), 3);
}

#[tokio::test]
async fn an_unreadable_quota_setting_fails_create_but_never_delete() {
    let handler = Allowlist::new(client(&[])).with_quota_setting(Some("sixty"));
    let interfaces = one_interface();
    let empty = listed(vec![]);
    let handler = Allowlist { ec2: opted_in(&[&interfaces, &empty]), ..handler };
    let err = handler.reconcile(OWNER, &props()).await.unwrap_err();
    assert!(err.to_string().contains(&format!("{QUOTA_ENV} is \"sixty\"")), "{err}");
    let empty = listed(vec![]);
    let handler = Allowlist { ec2: client(&[&empty]), ..handler };
    handler.delete(&info(), OWNER, &props()).await.unwrap();
    assert_eq!(Allowlist::new(client(&[])).with_quota_setting(Some(" ")).rules_per_group, Ok(60));
    assert!(Allowlist::new(client(&[])).with_quota_setting(Some("0")).rules_per_group.is_err());
}

/// Item 2: a Create that fails after its first change (the second port range hits the quota, e.g.
/// another writer filled the group meanwhile) is undone by its own Delete, which the runtime runs at
/// once: nothing is left behind.
#[tokio::test]
async fn a_create_failing_midway_is_undone_by_its_delete() {
    let interfaces = one_interface();
    let empty = listed(vec![]);
    let first = mock!(Client::authorize_security_group_ingress)
        .match_requests(|r| r.ip_permissions()[0].from_port() == Some(80))
        .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().r#return(true).build());
    let full = mock!(Client::authorize_security_group_ingress)
        .then_error(|| AuthorizeSecurityGroupIngressError::generic(code("RulesPerSecurityGroupLimitExceeded")));
    let left = listed(vec![r("sgr-80", "10.0.0.5/32", &[mine()])]);
    let undo = revoked(&["sgr-80"]);
    let handler = Allowlist::new(opted_in(&[&interfaces, &empty, &first, &full, &left, &undo]));
    let props = props_with(&["80", "443"]);
    let err = handler.create(&info(), OWNER, &props).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(GROUP) && text.contains("RulesPerSecurityGroupLimitExceeded"), "{text}");
    assert!(text.contains("L-0EA8095F"), "{text}");
    handler.delete(&info(), OWNER, &props).await.unwrap();
    assert_eq!((first.num_calls(), full.num_calls(), undo.num_calls()), (1, 1, 1));
}

/// Item 9: an NLB still provisioning has no interfaces yet: wait for them with a backoff.
#[tokio::test(start_paused = true)]
async fn interfaces_that_appear_later_are_waited_for() {
    let none = interfaces(&[]);
    let still_none = interfaces(&[]);
    let there = one_interface();
    let empty = listed(vec![]);
    let authorize = authorized();
    let handler = Allowlist::new(opted_in(&[&none, &still_none, &there, &empty, &authorize]));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let outcome = stackhand::aws::within(deadline, handler.reconcile(OWNER, &props())).await.unwrap();
    assert_eq!(outcome.data["PrivateIpAddresses"], "10.0.0.5");
    assert_eq!(started.elapsed().as_secs(), 2 + 4, "waited 2 s, then 4 s");
}

/// Item 9: the wait ends early enough to answer (and to undo) before the invocation's deadline.
#[tokio::test(start_paused = true)]
async fn the_wait_for_interfaces_stops_before_the_deadline() {
    let polls: Vec<Rule> = (0..20).map(|_| interfaces(&[])).collect();
    let handler = Allowlist::new(opted_in(&polls.iter().collect::<Vec<_>>()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(45);
    let err = stackhand::aws::within(deadline, handler.reconcile(OWNER, &props())).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(waited, Duration::from_secs(45) - AFTER_WAIT, "polled until the margin, no longer");
    let text = err.to_string();
    assert!(text.contains("no network interfaces found") && text.contains("after waiting 35 s"), "{text}");
    // 2, 4, 8, 15, then the 6 s left to the margin.
    assert_eq!(polls.iter().map(Rule::num_calls).sum::<usize>(), 6);

    // Too near the deadline to wait at all: one look, then the error.
    let none = interfaces(&[]);
    let handler = Allowlist::new(opted_in(&[&none]));
    let near = Instant::now() + AFTER_WAIT / 2;
    let err = stackhand::aws::within(near, handler.reconcile(OWNER, &props())).await.unwrap_err();
    assert!(matches!(err, AllowlistError::NoInterfaces { waited_s: 0, .. }), "{err}");
}

/// Item 10: a Delete whose properties no longer parse finds the group in the physical id and
/// removes this owner's rules as a Delete does.
#[tokio::test]
async fn delete_with_unreadable_properties_cleans_up_by_the_physical_id() {
    let ours = listed(vec![r("sgr-1", "10.0.0.5/32", &[mine()]), r("sgr-2", "10.0.0.6/32", &[old_owner(), mine()])]);
    let revoke = revoked(&["sgr-1"]);
    let release = mock!(Client::delete_tags)
        .match_requests(|r| r.resources() == ["sgr-2".to_string()])
        .then_output(|| DeleteTagsOutput::builder().build());
    let after = listed(vec![r("sgr-2", "10.0.0.6/32", &[old_owner()])]);
    let handler = Allowlist::new(client(&[&ours, &revoke, &release, &after]));
    let unreadable = json!({"LoadBalancerArn": "arn:aws:elasticloadbalancing:gone", "Ports": {"From": 80}});
    handler.delete_unparsed(&info(), OWNER, &unreadable).await.unwrap();
    assert_eq!((ours.num_calls(), revoke.num_calls(), release.num_calls()), (1, 1, 1));
}

#[tokio::test]
async fn delete_with_unreadable_properties_and_a_foreign_id_changes_nothing() {
    let handler = Allowlist::new(client(&[]));
    handler.delete_unparsed(&info(), "some-other-id", &json!({"Ports": []})).await.unwrap();
    // A physical id of another shape, but the group still reads from the properties.
    let ours = listed(vec![]);
    let handler = Allowlist::new(client(&[&ours]));
    handler.delete_unparsed(&info(), "some-other-id", &json!({"SecurityGroupId": GROUP, "Ports": []})).await.unwrap();
    assert_eq!(ours.num_calls(), 1);
}

#[test]
fn the_group_is_read_from_the_physical_id() {
    assert_eq!(group_of(OWNER).unwrap().0, GROUP);
    assert_eq!(group_of("nlb-ip-allowlist:sg-01234567:app-nlb:0011223344556677").unwrap().0, "sg-01234567");
    assert!(group_of("nlb-ip-allowlist:sg-nope:app:00").is_none());
    assert!(group_of("nlb-ip-allowlist:sg-01234567:app").is_none());
    assert!(group_of("stackhand-failed-create:X:r").is_none());
}

// Issue 19, item 3: the guardrails.

/// An interface anyone may create, with the load balancer's description copied: as the EC2 API makes
/// it (not requester-managed, type `interface`).
fn forged_eni(ip: &str) -> NetworkInterface {
    nlb_eni(ip)
        .network_interface_id("eni-forged")
        .requester_managed(false)
        .requester_id("AIDAEXAMPLEUSER")
        .interface_type(NetworkInterfaceType::Interface)
        .build()
}

fn listed_interfaces(enis: Vec<NetworkInterface>) -> Rule {
    mock!(Client::describe_network_interfaces).then_output(move || {
        DescribeNetworkInterfacesOutput::builder().set_network_interfaces(Some(enis.clone())).build()
    })
}

/// The attack: an author creates an interface with the description of someone's load balancer; its
/// address must never be allowed. The real interface's is, and the answer counts the forgery.
#[tokio::test]
async fn a_forged_interface_is_not_allowlisted() {
    let enis = listed_interfaces(vec![nlb_eni("10.0.0.5").build(), forged_eni("10.0.9.9")]);
    let empty = listed(vec![]);
    let authorize = mock!(Client::authorize_security_group_ingress)
        .match_requests(|r| {
            let cidrs: Vec<_> = r.ip_permissions()[0].ip_ranges().iter().filter_map(|r| r.cidr_ip()).collect();
            cidrs == ["10.0.0.5/32"]
        })
        .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().r#return(true).build());
    let outcome = Allowlist::new(opted_in(&[&enis, &empty, &authorize])).reconcile(OWNER, &props()).await.unwrap();
    assert_eq!(authorize.num_calls(), 1, "only the real interface's address was authorized");
    assert_eq!(outcome.data["PrivateIpAddresses"], "10.0.0.5");
    assert_eq!(outcome.data["IgnoredInterfaceCount"], "1");
}

/// Forged interfaces alone are no load balancer: the Create waits, then fails saying they were ignored.
#[tokio::test(start_paused = true)]
async fn only_forged_interfaces_fail_saying_they_were_ignored() {
    let polls: Vec<Rule> = (0..10).map(|_| listed_interfaces(vec![forged_eni("10.0.9.9")])).collect();
    let handler = Allowlist::new(opted_in(&polls.iter().collect::<Vec<_>>()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let err = stackhand::aws::within(deadline, handler.reconcile(OWNER, &props())).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no network interfaces found"), "{text}");
    assert!(text.contains("1 interface(s) with that description were ignored"), "{text}");
    assert!(text.contains("RequesterManaged false"), "{text}");
}

#[test]
fn only_interfaces_aws_made_for_a_network_load_balancer_in_the_groups_vpc_count() {
    assert_eq!(crate::interfaces::classify(&nlb_eni("10.0.0.5").build(), VPC), Ok(()));
    use crate::interfaces::Ignored;
    let forged = forged_eni("10.0.0.5");
    assert_eq!(crate::interfaces::classify(&forged, VPC), Err(Ignored::NotRequesterManaged));
    let other_service = nlb_eni("10.0.0.5").interface_type(NetworkInterfaceType::VpcEndpoint).build();
    assert_eq!(crate::interfaces::classify(&other_service, VPC), Err(Ignored::NotLoadBalancer("vpc_endpoint".into())));
    let untyped = NetworkInterface::builder().requester_managed(true).vpc_id(VPC).build();
    assert_eq!(crate::interfaces::classify(&untyped, VPC), Err(Ignored::NotLoadBalancer("none".into())));
    let elsewhere = nlb_eni("10.0.0.5").vpc_id("vpc-0fffffffffffffff0").build();
    assert_eq!(crate::interfaces::classify(&elsewhere, VPC), Err(Ignored::OtherVpc("vpc-0fffffffffffffff0".into())));
}

/// The load balancer's own interfaces in another VPC than the group's: fail at once, naming both.
#[tokio::test]
async fn a_load_balancer_in_another_vpc_fails_at_once_naming_both_vpcs() {
    let enis = listed_interfaces(vec![nlb_eni("10.0.0.5").vpc_id("vpc-0fffffffffffffff0").build()]);
    let err = Allowlist::new(opted_in(&[&enis])).reconcile(OWNER, &props()).await.unwrap_err();
    assert!(matches!(err, AllowlistError::OtherVpc { .. }), "{err}");
    let text = err.to_string();
    for part in ["vpc-0fffffffffffffff0", VPC, GROUP, "SecurityGroupId", "LoadBalancerArn"] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
}

/// The attack: an author names a group whose owner never opted in. Refused before any other call (the
/// client has no answer for one), naming the property, the tag and who sets it.
#[tokio::test]
async fn an_untagged_group_is_refused_before_any_change() {
    for (tags, found) in [
        (&[("team", "payments")][..], "has no tag stackhand:allowlist"),
        (&[("stackhand:allowlist", "false")][..], "is tagged stackhand:allowlist=\"false\""),
    ] {
        let group = group_tagged(tags);
        let enis = interfaces(&["10.0.0.5"]);
        let err = Allowlist::new(client(&[&group, &enis])).reconcile(OWNER, &props()).await.unwrap_err();
        assert!(matches!(err, AllowlistError::NotOptedIn { .. }), "{err}");
        assert_eq!(enis.num_calls(), 0, "nothing after the group was read");
        let text = err.to_string();
        for part in
            [GROUP, "(SecurityGroupId)", found, "stackhand:allowlist=true", "AllowlistGroupTagValue", GROUP_TAG_ENV]
        {
            assert!(text.contains(part), "{part:?} in {text}");
        }
    }
}

/// The owner's value, not `true`, is what a group must carry when the owner sets one.
#[tokio::test]
async fn the_owner_chooses_the_opt_in_value() {
    let group = group_tagged(&[("stackhand:allowlist", "true")]);
    let handler = Allowlist::new(client(&[&group])).with_group_tag_setting(Some("team-a"));
    let err = handler.reconcile(OWNER, &props()).await.unwrap_err();
    assert!(err.to_string().contains("stackhand:allowlist=team-a"), "{err}");
    let group = group_tagged(&[("stackhand:allowlist", "team-a")]);
    let enis = interfaces(&["10.0.0.5"]);
    let empty = listed(vec![]);
    let authorize = authorized();
    let handler = Allowlist::new(client(&[&group, &enis, &empty, &authorize])).with_group_tag_setting(Some("team-a"));
    handler.reconcile(OWNER, &props()).await.unwrap();
    assert_eq!(authorize.num_calls(), 1);
}

/// A Delete never asks the group: it removes its own rules from a group that never opted in (the
/// client would have no answer for DescribeSecurityGroups).
#[tokio::test]
async fn a_delete_on_an_untagged_group_removes_its_own_rules() {
    let ours = rules_output(&[("sgr-1", "10.0.0.5/32")]);
    let revoke = revoked(&["sgr-1"]);
    Allowlist::new(client(&[&ours, &revoke])).delete(&info(), OWNER, &props()).await.unwrap();
    assert_eq!(revoke.num_calls(), 1);
}

#[tokio::test]
async fn a_load_balancer_of_another_account_or_region_is_refused_before_any_call() {
    let handler = Allowlist::new(client(&[]));
    for arn in [
        "arn:aws:elasticloadbalancing:us-east-1:210987654321:loadbalancer/net/app/0123456789abcdef",
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/app/0123456789abcdef",
    ] {
        let props = Properties { load_balancer_arn: arn.parse().unwrap(), ..props() };
        let err = handler.create(&info(), OWNER, &props).await.unwrap_err();
        assert!(matches!(err, AllowlistError::ForeignLoadBalancer { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(arn) && text.contains("(LoadBalancerArn)"), "{text}");
        assert!(text.contains("account 123456789012, Region us-east-1"), "{text}");
    }
}

/// Every rule is created carrying the marker IAM requires for ModifySecurityGroupRules; a rule of an
/// earlier version gets it before its description changes.
#[tokio::test]
async fn rules_carry_the_marker_and_an_unmarked_rule_is_marked_before_it_is_redescribed() {
    let enis = one_interface();
    let empty = listed(vec![]);
    let authorize = mock!(Client::authorize_security_group_ingress)
        .match_requests(|r| {
            let tags = r.tag_specifications()[0].tags();
            tags.iter().any(|t| t.key() == Some(RULE_MARKER_TAG) && t.value() == Some(RULE_MARKER_VALUE))
        })
        .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().r#return(true).build());
    Allowlist::new(opted_in(&[&enis, &empty, &authorize])).reconcile(OWNER, &props()).await.unwrap();
    assert_eq!(authorize.num_calls(), 1);

    let enis = one_interface();
    let unmarked = listed(vec![r("sgr-old", "10.0.0.5/32", &[mine()])]);
    let mark = mock!(Client::create_tags)
        .match_requests(|r| r.resources() == ["sgr-old".to_string()] && r.tags()[0].key() == Some(RULE_MARKER_TAG))
        .then_output(|| CreateTagsOutput::builder().build());
    let modify = mock!(Client::modify_security_group_rules).then_output(|| {
        aws_sdk_ec2::operation::modify_security_group_rules::ModifySecurityGroupRulesOutput::builder().build()
    });
    let props = Properties { rule_description: Some("new words".parse().unwrap()), ..props() };
    Allowlist::new(opted_in(&[&enis, &unmarked, &mark, &modify])).reconcile(OWNER, &props).await.unwrap();
    assert_eq!((mark.num_calls(), modify.num_calls()), (1, 1));
}
