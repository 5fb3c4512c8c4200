//! The sample events in `events/<function>/` stay true to the code: their properties parse, and the
//! Update and Delete carry the physical id the Create produces (no accidental replacement).

use stackhand::cfn::{CustomResource, Envelope, RequestInfo, ResponseUrlPolicy};

fn load(function: &str, name: &str) -> Envelope {
    let path = crate::checkout_path(&format!("events/{function}/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The samples answer a local recorder on 127.0.0.1 (the README's `cargo lambda invoke` commands).
    let local = ResponseUrlPolicy::with_hosts(["127.0.0.1"]);
    Envelope::from_value_with(&serde_json::from_str(&text).unwrap(), &local)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn assert_sample_events_agree<H: CustomResource>(handler: &H, function: &str) {
    let create = load(function, "create");
    let info = RequestInfo::new(&create, "", tokio::time::Instant::now());
    let props: H::Properties =
        stackhand::props::parse(&create.properties).unwrap_or_else(|e| panic!("create.json: {e}"));
    let id = handler.physical_id(&info, &props);
    for name in ["update", "delete"] {
        let env = load(function, name);
        assert_eq!(env.physical_resource_id.as_deref(), Some(id.as_str()), "{function}/{name}.json");
        assert_eq!(env.logical_resource_id, create.logical_resource_id, "{function}/{name}.json");
        let p: H::Properties = stackhand::props::parse(&env.properties).unwrap_or_else(|e| panic!("{name}.json: {e}"));
        assert_eq!(handler.physical_id(&info, &p), id, "{function}/{name}.json is no replacement");
        if let Some(old) = &env.old_properties {
            stackhand::props::parse::<H::Properties>(old).unwrap_or_else(|e| panic!("{name}.json old: {e}"));
        }
    }
}
