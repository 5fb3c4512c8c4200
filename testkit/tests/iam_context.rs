//! The recording proxy's IAM context against moto: a call's resources with the tags they had before
//! it, the tags it writes, and its lookups passing a proxy behind it uncounted.

use serde_json::Value;
use testkit::local;
use testkit::ThrottlingProxy;

fn context_of(proxy: &ThrottlingProxy, action: &str) -> Value {
    let line = proxy.scoped_actions().into_iter().find(|l| l.starts_with(&format!("{action} "))).expect(action);
    serde_json::from_str(line.splitn(4, ' ').nth(3).expect("a context field")).expect("JSON")
}

#[tokio::test]
async fn a_call_is_recorded_with_its_resources_tags_and_the_tags_it_writes() {
    let ec2 = local::ec2().await;
    let network = local::network(&ec2, 91).await;
    let tagged = local::instance(&ec2, &network.subnet_ids[0], &[("Schedule", "office")]).await;
    let untagged = local::instance(&ec2, &network.subnet_ids[0], &[]).await;

    // The recording proxy (as FunctionProcess puts it) in front of a test's counting one.
    let behind = ThrottlingProxy::counting(&local::moto_url()).await;
    let recording = ThrottlingProxy::counting_now(&behind.url());
    let config = local::sdk_config(&recording.url()).await;
    let client = aws_sdk_ec2::Client::new(&config);
    client.stop_instances().instance_ids(&tagged).instance_ids(&untagged).send().await.expect("StopInstances");
    client
        .create_tags()
        .resources(&tagged)
        .tags(aws_sdk_ec2::types::Tag::builder().key("stackhand:schedule-applied").value("x").build())
        .send()
        .await
        .expect("CreateTags");

    let stop = context_of(&recording, "ec2:StopInstances");
    let resources = stop["resources"].as_array().expect("resources");
    let tags_of = |id: &str| {
        resources
            .iter()
            .find(|r| r["arn"] == format!("arn:aws:ec2:{}:123456789012:instance/{id}", local::REGION))
            .map(|r| r["tags"].clone())
            .unwrap_or_else(|| panic!("{id} in {stop}"))
    };
    assert_eq!(tags_of(&tagged)["Schedule"], "office", "{stop}");
    assert_eq!(tags_of(&untagged), serde_json::json!({}), "an untagged instance is recorded untagged: {stop}");

    let create = context_of(&recording, "ec2:CreateTags");
    assert_eq!(create["request_tags"]["stackhand:schedule-applied"], "x", "{create}");
    assert_eq!(create["tag_keys"], serde_json::json!(["stackhand:schedule-applied"]), "{create}");
    assert!(
        create["resources"][0]["tags"].get("stackhand:schedule-applied").is_none(),
        "tags before the call: {create}"
    );

    // The proxy behind saw the two calls, not the lookups made for them.
    assert_eq!(behind.seen(), 2, "{:?}", behind.operations());
}
