//! What IAM sees of one call, for `scripts/iam-check.py --observed`: the resources it acts on (ARNs
//! from the ids in the request), each with its tags as they were just before the call (asked of the
//! emulator then, so `aws:ResourceTag/…` is what IAM would evaluate), the tags and tag keys the
//! request writes (`aws:RequestTag/…`, `aws:TagKeys`) and the few service keys the templates' conditions
//! use (`ec2:Vpc` of a security group, Application Auto Scaling's namespace and dimension, EventBridge's
//! `events:source`).
//!
//! As JSON: `{"resources":[{"arn":…,"tags":{…},"keys":{…}}],"request_tags":{…},"tag_keys":[…],"keys":{…}}`.
//! `resources` is empty for a call on no resource (`Describe*`, `List*`: IAM's `*`), and absent for an
//! operation this does not know; a resource's `tags` are absent where the emulator could not say.
//!
//! The lookups carry the call's own credentials (moto picks the account from the access key and does
//! not check signatures) and [`LOOKUP_HEADER`], with which every [`crate::ThrottlingProxy`] on the way
//! forwards them untouched: not counted, throttled, refused or recorded.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use serde_json::{json, Map, Value};

/// Marks a request the proxy itself sends to learn a resource's tags.
pub(crate) const LOOKUP_HEADER: &str = "x-stackhand-lookup";

/// Where lookups go: the proxy's upstream, with the call's headers.
pub(crate) struct Upstream<'a> {
    pub http: &'a reqwest::Client,
    pub url: &'a str,
    pub headers: &'a HeaderMap,
}

struct Resource {
    arn: String,
    tags: Option<BTreeMap<String, String>>,
    keys: Map<String, Value>,
}

impl Resource {
    fn new(arn: String) -> Self {
        Self { arn, tags: None, keys: Map::new() }
    }
}

/// The account moto puts a caller's resources in: the role's for assumed credentials, else the access
/// key id when it is 12 digits, else moto's default account.
pub(crate) fn own_account(key_id: &str) -> String {
    if key_id.len() == 12 && key_id.bytes().all(|b| b.is_ascii_digit()) {
        key_id.to_owned()
    } else {
        "123456789012".to_owned()
    }
}

/// The context of a call as JSON (see the module's documentation).
pub(crate) async fn context(
    service: &str,
    operation: &str,
    body: &str,
    region: &str,
    account: &str,
    up: &Upstream<'_>,
) -> Value {
    let query = if body.trim_start().starts_with('{') { Vec::new() } else { form(body) };
    let json: Value = if query.is_empty() { serde_json::from_str(body).unwrap_or(Value::Null) } else { Value::Null };
    let mut out = Map::new();
    let (request_tags, tag_keys) = if query.is_empty() { json_tags(&json) } else { query_tags(&query) };
    let mut keys = Map::new();
    let resources = match service {
        "ec2" => ec2(operation, &query, region, account, up).await,
        "rds" => rds(operation, &query, region, account, up).await,
        "redshift" => redshift(operation, &query, region, account, up).await,
        "autoscaling" => autoscaling(operation, &query, region, account, up).await,
        "ecs" => ecs(operation, &json, region, account, up).await,
        "application-autoscaling" => {
            if operation == "RegisterScalableTarget" {
                for (key, field) in
                    [("service-namespace", "ServiceNamespace"), ("scalable-dimension", "ScalableDimension")]
                {
                    if let Some(v) = json[field].as_str() {
                        keys.insert(format!("application-autoscaling:{key}"), v.into());
                    }
                }
                Some(vec![scalable_target(&json, region, account, up).await])
            } else {
                reads(operation)
            }
        }
        "ssm" => ssm(operation, &json, region, account),
        "sagemaker" => sagemaker(operation, &json, region, account, up).await,
        "events" => events(operation, &json, region, account, &mut keys),
        "sqs" => sqs(&json, region),
        // Read-only, on the organization's root and OUs, whose ARNs need the organization's id: the
        // template grants them on "*".
        "organizations" => reads(operation),
        "secretsmanager" => secrets(operation, &json, region, account, up).await,
        "sts" => match operation {
            "AssumeRole" => Some(param(&query, "RoleArn").map(|a| Resource::new(a.to_owned())).into_iter().collect()),
            "GetCallerIdentity" => Some(Vec::new()),
            _ => None,
        },
        "elasticloadbalancing" => reads(operation),
        _ => None,
    };
    if let Some(resources) = resources {
        let list: Vec<Value> = resources
            .into_iter()
            .map(|r| {
                let mut item = Map::new();
                item.insert("arn".into(), r.arn.into());
                if let Some(tags) = r.tags {
                    item.insert("tags".into(), json!(tags));
                }
                if !r.keys.is_empty() {
                    item.insert("keys".into(), Value::Object(r.keys));
                }
                Value::Object(item)
            })
            .collect();
        out.insert("resources".into(), Value::Array(list));
    }
    if !request_tags.is_empty() {
        out.insert("request_tags".into(), json!(request_tags));
    }
    if !tag_keys.is_empty() {
        out.insert("tag_keys".into(), json!(tag_keys));
    }
    if !keys.is_empty() {
        out.insert("keys".into(), Value::Object(keys));
    }
    Value::Object(out)
}

/// Reads that take no resource (IAM's `*`): no resources; anything else: unknown.
fn reads(operation: &str) -> Option<Vec<Resource>> {
    (operation.starts_with("Describe") || operation.starts_with("List")).then(Vec::new)
}

// --- the query protocols ---------------------------------------------------------------------------

/// A form-encoded body as (name, value) pairs, decoded.
fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The values of a list parameter: `InstanceId.1`, `InstanceId.2` … (`prefix` is `InstanceId.`).
fn list<'a>(query: &'a [(String, String)], prefix: &str, suffix: &str) -> Vec<&'a str> {
    query
        .iter()
        .filter(|(k, _)| {
            k.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(suffix))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The tags a query request writes: every `….Key` of a tag list (`Tag.N.`, `Tags.member.N.`,
/// `Tags.Tag.N.`, `TagSpecification.N.Tag.M.`) with its `….Value` when given, and `TagKeys.member.N`.
fn query_tags(query: &[(String, String)]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut tags = BTreeMap::new();
    let mut keys = Vec::new();
    for (name, value) in query {
        if let Some(prefix) = name.strip_suffix(".Key").filter(|p| p.starts_with("Tag")) {
            keys.push(value.clone());
            if let Some(v) = param(query, &format!("{prefix}.Value")) {
                tags.insert(value.clone(), v.to_owned());
            }
        } else if name.starts_with("TagKeys.") {
            keys.push(value.clone());
        }
    }
    keys.sort();
    keys.dedup();
    (tags, keys)
}

/// The tags a JSON request writes: `tags`/`Tags` as `[{key, value}]` (any case) and `tagKeys`/`TagKeys`.
fn json_tags(body: &Value) -> (BTreeMap<String, String>, Vec<String>) {
    let mut tags = BTreeMap::new();
    let mut keys = Vec::new();
    for field in ["tags", "Tags"] {
        for tag in body[field].as_array().into_iter().flatten() {
            let key = tag.get("key").or_else(|| tag.get("Key")).and_then(Value::as_str);
            let value = tag.get("value").or_else(|| tag.get("Value")).and_then(Value::as_str);
            if let Some(key) = key {
                keys.push(key.to_owned());
                tags.insert(key.to_owned(), value.unwrap_or_default().to_owned());
            }
        }
    }
    for field in ["tagKeys", "TagKeys"] {
        keys.extend(body[field].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned));
    }
    keys.sort();
    keys.dedup();
    (tags, keys)
}

async fn ask_query(up: &Upstream<'_>, body: String) -> Option<String> {
    let mut request = up.http.post(format!("{}/", up.url)).header(LOOKUP_HEADER, "1").body(body);
    for name in ["authorization", "x-amz-security-token", "x-amz-date"] {
        if let Some(v) = up.headers.get(name) {
            request = request.header(name, v);
        }
    }
    request = request.header("content-type", "application/x-www-form-urlencoded; charset=utf-8");
    let answer = request.send().await.ok()?;
    if !answer.status().is_success() {
        return None;
    }
    answer.text().await.ok()
}

async fn ask_json(up: &Upstream<'_>, target: &str, body: Value) -> Option<Value> {
    let mut request = up.http.post(format!("{}/", up.url)).header(LOOKUP_HEADER, "1").body(body.to_string());
    for name in ["authorization", "x-amz-security-token", "x-amz-date", "content-type"] {
        if let Some(v) = up.headers.get(name) {
            request = request.header(name, v);
        }
    }
    request = request.header("x-amz-target", target);
    let answer = request.send().await.ok()?;
    if !answer.status().is_success() {
        return None;
    }
    serde_json::from_slice(&answer.bytes().await.ok()?).ok()
}

fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    node.children().find(|c| c.has_tag_name(name)).map(|c| c.text().unwrap_or_default().to_owned())
}

/// `<parent><item|member|Tag><key_name>…</key_name><value_name>…</value_name>…` pairs under `node`'s
/// child `parent`.
fn xml_tags(node: roxmltree::Node<'_, '_>, parent: &str, key_name: &str, value_name: &str) -> BTreeMap<String, String> {
    node.children()
        .filter(|c| c.has_tag_name(parent))
        .flat_map(|p| p.children().filter(|c| c.is_element()))
        .filter_map(|item| Some((child_text(item, key_name)?, child_text(item, value_name).unwrap_or_default())))
        .collect()
}

// --- EC2 ------------------------------------------------------------------------------------------

fn ec2_type(id: &str) -> &'static str {
    match id.split_once('-').map(|(p, _)| p).unwrap_or_default() {
        "i" => "instance",
        "sg" => "security-group",
        "sgr" => "security-group-rule",
        "eipalloc" => "elastic-ip",
        "eni" => "network-interface",
        "vpc" => "vpc",
        "subnet" => "subnet",
        "vol" => "volume",
        "snap" => "snapshot",
        "ami" => "image",
        _ => "unknown",
    }
}

async fn ec2(
    operation: &str,
    query: &[(String, String)],
    region: &str,
    account: &str,
    up: &Upstream<'_>,
) -> Option<Vec<Resource>> {
    let mut ids: Vec<String> = Vec::new();
    let mut new_rule = false;
    match operation {
        op if op.starts_with("Describe") => return Some(Vec::new()),
        "StartInstances" | "StopInstances" | "RebootInstances" | "TerminateInstances" => {
            ids.extend(list(query, "InstanceId.", "").into_iter().map(str::to_owned));
        }
        "CreateTags" | "DeleteTags" => ids.extend(list(query, "ResourceId.", "").into_iter().map(str::to_owned)),
        "AuthorizeSecurityGroupIngress" | "AuthorizeSecurityGroupEgress" => {
            ids.extend(param(query, "GroupId").map(str::to_owned));
            new_rule = list(query, "TagSpecification.", ".ResourceType").contains(&"security-group-rule");
        }
        "RevokeSecurityGroupIngress"
        | "RevokeSecurityGroupEgress"
        | "UpdateSecurityGroupRuleDescriptionsIngress"
        | "UpdateSecurityGroupRuleDescriptionsEgress" => ids.extend(param(query, "GroupId").map(str::to_owned)),
        "ModifySecurityGroupRules" => {
            ids.extend(param(query, "GroupId").map(str::to_owned));
            ids.extend(list(query, "SecurityGroupRule.", ".SecurityGroupRuleId").into_iter().map(str::to_owned));
        }
        "AssociateAddress" => {
            for name in ["AllocationId", "InstanceId", "NetworkInterfaceId"] {
                ids.extend(param(query, name).map(str::to_owned));
            }
        }
        "DisassociateAddress" => {
            // The request names the association: the address and its interface, from the emulator.
            let association = param(query, "AssociationId")?;
            let body = format!(
                "Action=DescribeAddresses&Version=2016-11-15&Filter.1.Name=association-id&Filter.1.Value.1={}",
                encode(association)
            );
            let answer = ask_query(up, body).await.unwrap_or_default();
            if let Ok(doc) = roxmltree::Document::parse(&answer) {
                for item in doc
                    .descendants()
                    .filter(|n| n.has_tag_name("item") && n.parent().is_some_and(|p| p.has_tag_name("addressesSet")))
                {
                    ids.extend(child_text(item, "allocationId"));
                    ids.extend(child_text(item, "networkInterfaceId").filter(|e| !e.is_empty()));
                }
            }
        }
        _ => return None,
    }
    let mut tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut known = false;
    if !ids.is_empty() {
        let mut body = "Action=DescribeTags&Version=2016-11-15&Filter.1.Name=resource-id".to_owned();
        for (n, id) in ids.iter().enumerate() {
            body.push_str(&format!("&Filter.1.Value.{}={}", n + 1, encode(id)));
        }
        if let Some(answer) = ask_query(up, body).await {
            if let Ok(doc) = roxmltree::Document::parse(&answer) {
                known = doc.root_element().has_tag_name("DescribeTagsResponse");
                for item in doc.descendants().filter(|n| n.has_tag_name("item")) {
                    if let (Some(id), Some(key)) = (child_text(item, "resourceId"), child_text(item, "key")) {
                        tags.entry(id).or_default().insert(key, child_text(item, "value").unwrap_or_default());
                    }
                }
            }
        }
    }
    // ec2:Vpc of the security groups.
    let groups: Vec<&String> = ids.iter().filter(|id| ec2_type(id) == "security-group").collect();
    let mut vpcs: BTreeMap<String, String> = BTreeMap::new();
    if !groups.is_empty() {
        let mut body = "Action=DescribeSecurityGroups&Version=2016-11-15".to_owned();
        for (n, id) in groups.iter().enumerate() {
            body.push_str(&format!("&GroupId.{}={}", n + 1, encode(id)));
        }
        if let Some(answer) = ask_query(up, body).await {
            if let Ok(doc) = roxmltree::Document::parse(&answer) {
                for item in doc.descendants().filter(|n| {
                    n.has_tag_name("item") && n.parent().is_some_and(|p| p.has_tag_name("securityGroupInfo"))
                }) {
                    if let (Some(id), Some(vpc)) = (child_text(item, "groupId"), child_text(item, "vpcId")) {
                        vpcs.insert(id, vpc);
                    }
                }
            }
        }
    }
    let mut out: Vec<Resource> = ids
        .iter()
        .map(|id| {
            let mut r = Resource::new(format!("arn:aws:ec2:{region}:{account}:{}/{id}", ec2_type(id)));
            r.tags = known.then(|| tags.get(id).cloned().unwrap_or_default());
            if let Some(vpc) = vpcs.get(id) {
                r.keys.insert("ec2:Vpc".into(), format!("arn:aws:ec2:{region}:{account}:vpc/{vpc}").into());
            }
            r
        })
        .collect();
    if new_rule {
        let mut r = Resource::new(format!("arn:aws:ec2:{region}:{account}:security-group-rule/*"));
        r.tags = Some(BTreeMap::new());
        out.push(r);
    }
    Some(out)
}

// --- RDS ------------------------------------------------------------------------------------------

async fn rds(
    operation: &str,
    query: &[(String, String)],
    region: &str,
    account: &str,
    up: &Upstream<'_>,
) -> Option<Vec<Resource>> {
    let named = |kind: &str, id: &str| {
        if id.starts_with("arn:") {
            id.to_owned()
        } else {
            format!("arn:aws:rds:{region}:{account}:{kind}:{id}")
        }
    };
    let arn = match operation {
        // A describe naming one database or cluster is authorized on that resource (IAM's resource for
        // rds:DescribeDBClusters is the cluster); one naming none, on every resource (`*`).
        "DescribeDBClusters" if param(query, "DBClusterIdentifier").is_some() => {
            named("cluster", param(query, "DBClusterIdentifier")?)
        }
        "DescribeDBInstances" if param(query, "DBInstanceIdentifier").is_some() => {
            named("db", param(query, "DBInstanceIdentifier")?)
        }
        op if op.starts_with("Describe") || op == "ListTagsForResource" => return Some(Vec::new()),
        "StartDBInstance" | "StopDBInstance" | "RebootDBInstance" => {
            format!("arn:aws:rds:{region}:{account}:db:{}", param(query, "DBInstanceIdentifier")?)
        }
        "StartDBCluster" | "StopDBCluster" => {
            format!("arn:aws:rds:{region}:{account}:cluster:{}", param(query, "DBClusterIdentifier")?)
        }
        "AddTagsToResource" | "RemoveTagsFromResource" => param(query, "ResourceName")?.to_owned(),
        _ => return None,
    };
    let mut r = Resource::new(arn);
    let body = format!("Action=ListTagsForResource&Version=2014-10-31&ResourceName={}", encode(&r.arn));
    if let Some(answer) = ask_query(up, body).await {
        if let Ok(doc) = roxmltree::Document::parse(&answer) {
            if let Some(result) = doc.descendants().find(|n| n.has_tag_name("ListTagsForResourceResult")) {
                r.tags = Some(xml_tags(result, "TagList", "Key", "Value"));
            }
        }
    }
    Some(vec![r])
}

// --- EventBridge ----------------------------------------------------------------------------------

/// PutEvents acts on each entry's event bus (`default` when it names none); `events:source` is the
/// entries' source when they all have the same one.
fn events(
    operation: &str,
    body: &Value,
    region: &str,
    account: &str,
    keys: &mut Map<String, Value>,
) -> Option<Vec<Resource>> {
    if operation != "PutEvents" {
        return reads(operation);
    }
    let entries = body["Entries"].as_array()?;
    let mut buses: Vec<String> = entries
        .iter()
        .map(|e| match e["EventBusName"].as_str().unwrap_or("default") {
            arn if arn.starts_with("arn:") => arn.to_owned(),
            name => format!("arn:aws:events:{region}:{account}:event-bus/{name}"),
        })
        .collect();
    buses.sort();
    buses.dedup();
    let mut sources: Vec<&str> = entries.iter().filter_map(|e| e["Source"].as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    if let [source] = sources.as_slice() {
        keys.insert("events:source".into(), (*source).into());
    }
    Some(buses.into_iter().map(Resource::new).collect())
}

/// An SQS call acts on its queue: the ARN from the queue URL (`…/<account>/<name>`).
fn sqs(body: &Value, region: &str) -> Option<Vec<Resource>> {
    let url = body["QueueUrl"].as_str()?;
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let (name, account) = (parts.next()?, parts.next()?);
    Some(vec![Resource::new(format!("arn:aws:sqs:{region}:{account}:{name}"))])
}

// --- SageMaker ------------------------------------------------------------------------------------

/// A notebook instance's start, stop or tagging: its ARN (the name lowercased, as SageMaker's ARNs
/// have it), with its tags from ListTags.
async fn sagemaker(
    operation: &str,
    body: &Value,
    region: &str,
    account: &str,
    up: &Upstream<'_>,
) -> Option<Vec<Resource>> {
    let arn = match operation {
        "StartNotebookInstance" | "StopNotebookInstance" => {
            let name = body["NotebookInstanceName"].as_str()?.to_lowercase();
            format!("arn:aws:sagemaker:{region}:{account}:notebook-instance/{name}")
        }
        "AddTags" | "DeleteTags" | "ListTags" => body["ResourceArn"].as_str()?.to_owned(),
        _ => return reads(operation),
    };
    let mut r = Resource::new(arn);
    if let Some(answer) = ask_json(up, "SageMaker.ListTags", json!({"ResourceArn": r.arn})).await {
        if let Some(tags) = answer["Tags"].as_array() {
            r.tags = Some(
                tags.iter()
                    .filter_map(|t| {
                        Some((t["Key"].as_str()?.to_owned(), t["Value"].as_str().unwrap_or_default().to_owned()))
                    })
                    .collect(),
            );
        }
    }
    Some(vec![r])
}

// --- Redshift -------------------------------------------------------------------------------------

/// A cluster's pause, resume or tagging: the cluster's ARN (IAM's resource for each), with its tags
/// from DescribeClusters.
async fn redshift(
    operation: &str,
    query: &[(String, String)],
    region: &str,
    account: &str,
    up: &Upstream<'_>,
) -> Option<Vec<Resource>> {
    let (arn, id) = match operation {
        op if op.starts_with("Describe") => return Some(Vec::new()),
        "PauseCluster" | "ResumeCluster" | "RebootCluster" => {
            let id = param(query, "ClusterIdentifier")?;
            (format!("arn:aws:redshift:{region}:{account}:cluster:{id}"), id.to_owned())
        }
        "CreateTags" | "DeleteTags" => {
            let arn = param(query, "ResourceName")?;
            (arn.to_owned(), arn.rsplit(':').next()?.to_owned())
        }
        _ => return None,
    };
    let mut r = Resource::new(arn);
    let body = format!("Action=DescribeClusters&Version=2012-12-01&ClusterIdentifier={}", encode(&id));
    if let Some(answer) = ask_query(up, body).await {
        if let Ok(doc) = roxmltree::Document::parse(&answer) {
            if let Some(cluster) = doc.descendants().find(|n| n.has_tag_name("Cluster")) {
                r.tags = Some(xml_tags(cluster, "Tags", "Key", "Value"));
            }
        }
    }
    Some(vec![r])
}

// --- Auto Scaling ---------------------------------------------------------------------------------

async fn autoscaling(
    operation: &str,
    query: &[(String, String)],
    region: &str,
    account: &str,
    up: &Upstream<'_>,
) -> Option<Vec<Resource>> {
    let mut names: Vec<&str> = match operation {
        op if op.starts_with("Describe") => return Some(Vec::new()),
        "UpdateAutoScalingGroup" | "SuspendProcesses" | "ResumeProcesses" | "SetDesiredCapacity" => {
            vec![param(query, "AutoScalingGroupName")?]
        }
        "CreateOrUpdateTags" | "DeleteTags" => list(query, "Tags.member.", ".ResourceId"),
        _ => return None,
    };
    names.sort();
    names.dedup();
    let mut body = "Action=DescribeAutoScalingGroups&Version=2011-01-01".to_owned();
    for (n, name) in names.iter().enumerate() {
        body.push_str(&format!("&AutoScalingGroupNames.member.{}={}", n + 1, encode(name)));
    }
    let mut found: BTreeMap<String, Resource> = BTreeMap::new();
    if let Some(answer) = ask_query(up, body).await {
        if let Ok(doc) = roxmltree::Document::parse(&answer) {
            for group in doc
                .descendants()
                .filter(|n| n.has_tag_name("member") && n.parent().is_some_and(|p| p.has_tag_name("AutoScalingGroups")))
            {
                if let (Some(name), Some(arn)) =
                    (child_text(group, "AutoScalingGroupName"), child_text(group, "AutoScalingGroupARN"))
                {
                    let mut r = Resource::new(arn);
                    r.tags = Some(xml_tags(group, "Tags", "Key", "Value"));
                    found.insert(name, r);
                }
            }
        }
    }
    Some(
        names
            .into_iter()
            .map(|name| {
                found.remove(name).unwrap_or_else(|| {
                    // Not found: the ARN as IAM would see it, its id unknown.
                    Resource::new(format!(
                        "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{name}"
                    ))
                })
            })
            .collect(),
    )
}

// --- the JSON protocols ---------------------------------------------------------------------------

fn ecs_name(value: &str, kind: &str) -> String {
    value.rsplit_once(&format!("{kind}/")).map(|(_, n)| n.to_owned()).unwrap_or_else(|| value.to_owned())
}

async fn ecs(operation: &str, body: &Value, region: &str, account: &str, up: &Upstream<'_>) -> Option<Vec<Resource>> {
    let cluster = ecs_name(body["cluster"].as_str().unwrap_or("default"), "cluster");
    let service_arn = |s: &str| {
        if s.starts_with("arn:") {
            s.to_owned()
        } else {
            format!("arn:aws:ecs:{region}:{account}:service/{cluster}/{s}")
        }
    };
    match operation {
        "ListClusters" | "ListServices" => Some(Vec::new()),
        "DescribeServices" => Some(
            body["services"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|s| Resource::new(service_arn(s)))
                .collect(),
        ),
        "UpdateService" | "TagResource" | "UntagResource" => {
            let arn = if operation == "UpdateService" {
                service_arn(body["service"].as_str()?)
            } else {
                body["resourceArn"].as_str()?.to_owned()
            };
            let mut r = Resource::new(arn);
            let answer =
                ask_json(up, "AmazonEC2ContainerServiceV20141113.ListTagsForResource", json!({"resourceArn": r.arn}))
                    .await;
            if let Some(tags) = answer.as_ref().and_then(|a| a["tags"].as_array()) {
                r.tags = Some(
                    tags.iter()
                        .filter_map(|t| {
                            Some((t["key"].as_str()?.to_owned(), t["value"].as_str().unwrap_or_default().to_owned()))
                        })
                        .collect(),
                );
            }
            Some(vec![r])
        }
        _ => None,
    }
}

async fn scalable_target(body: &Value, region: &str, account: &str, up: &Upstream<'_>) -> Resource {
    let ask = json!({
        "ServiceNamespace": body["ServiceNamespace"],
        "ResourceIds": [body["ResourceId"]],
        "ScalableDimension": body["ScalableDimension"],
    });
    let answer = ask_json(up, "AnyScaleFrontendService.DescribeScalableTargets", ask).await;
    let arn = answer.as_ref().and_then(|a| a["ScalableTargets"][0]["ScalableTargetARN"].as_str()).map(str::to_owned);
    // A target not registered yet (or an emulator that gives no ARN): its id unknown.
    Resource::new(
        arn.unwrap_or_else(|| format!("arn:aws:application-autoscaling:{region}:{account}:scalable-target/*")),
    )
}

fn ssm_arn(name: &str, region: &str, account: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_owned();
    }
    let name = name.split_once(':').map(|(n, _)| n).unwrap_or(name); // a version or label selector
    let slash = if name.starts_with('/') { "" } else { "/" };
    format!("arn:aws:ssm:{region}:{account}:parameter{slash}{name}")
}

fn ssm(operation: &str, body: &Value, region: &str, account: &str) -> Option<Vec<Resource>> {
    let names: Vec<&str> = match operation {
        "GetParameter" => vec![body["Name"].as_str()?],
        "GetParameters" => body["Names"].as_array()?.iter().filter_map(Value::as_str).collect(),
        "GetParametersByPath" => vec![body["Path"].as_str()?],
        _ => return reads(operation),
    };
    Some(names.into_iter().map(|n| Resource::new(ssm_arn(n, region, account))).collect())
}

async fn secrets(
    operation: &str,
    body: &Value,
    region: &str,
    account: &str,
    up: &Upstream<'_>,
) -> Option<Vec<Resource>> {
    if !matches!(operation, "GetSecretValue" | "DescribeSecret") {
        return reads(operation);
    }
    let id = body["SecretId"].as_str()?;
    let answer = ask_json(up, "secretsmanager.DescribeSecret", json!({"SecretId": id})).await;
    let arn = answer.as_ref().and_then(|a| a["ARN"].as_str()).map(str::to_owned);
    let mut r = Resource::new(arn.unwrap_or_else(|| {
        if id.starts_with("arn:") {
            id.to_owned()
        } else {
            format!("arn:aws:secretsmanager:{region}:{account}:secret:{id}-??????")
        }
    }));
    if let Some(a) = &answer {
        r.tags = Some(
            a["Tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    Some((t["Key"].as_str()?.to_owned(), t["Value"].as_str().unwrap_or_default().to_owned()))
                })
                .collect(),
        );
    }
    Some(vec![r])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_tags_reads_every_tag_list_shape() {
        let query = form(
            "Action=CreateTags&ResourceId.1=i-1&Tag.1.Key=stackhand%3Aschedule-applied&Tag.1.Value=a+b\
             &Tags.member.1.Key=k2&Tags.member.1.Value=v2&TagSpecification.1.Tag.1.Key=k3&TagKeys.member.1=k4",
        );
        let (tags, keys) = query_tags(&query);
        assert_eq!(tags.get("stackhand:schedule-applied").map(String::as_str), Some("a b"));
        assert_eq!(tags.get("k2").map(String::as_str), Some("v2"));
        assert!(!tags.contains_key("k3"), "a key without a value writes no aws:RequestTag");
        assert_eq!(keys, ["k2", "k3", "k4", "stackhand:schedule-applied"]);
    }

    #[test]
    fn list_takes_only_numbered_members() {
        let query =
            form("InstanceId.1=i-1&InstanceId.2=i-2&InstanceIdX=i-3&SecurityGroupRule.1.SecurityGroupRuleId=sgr-1");
        assert_eq!(list(&query, "InstanceId.", ""), ["i-1", "i-2"]);
        assert_eq!(list(&query, "SecurityGroupRule.", ".SecurityGroupRuleId"), ["sgr-1"]);
    }

    #[test]
    fn json_tags_reads_ecs_and_secrets_manager_shapes() {
        let (tags, keys) = json_tags(&json!({"tags": [{"key": "a", "value": "1"}], "tagKeys": ["b"]}));
        assert_eq!(tags.get("a").map(String::as_str), Some("1"));
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn arns_follow_each_service_s_format() {
        assert_eq!(
            ssm_arn("/stackhand/schedules", "eu-west-1", "1"),
            "arn:aws:ssm:eu-west-1:1:parameter/stackhand/schedules"
        );
        assert_eq!(ssm_arn("plain", "eu-west-1", "1"), "arn:aws:ssm:eu-west-1:1:parameter/plain");
        assert_eq!(ec2_type("eipalloc-0abc"), "elastic-ip");
        assert_eq!(ecs_name("arn:aws:ecs:eu-west-1:1:cluster/apps", "cluster"), "apps");
        assert_eq!(own_account("AKIASTACKHANDTEST000"), "123456789012");
        assert_eq!(own_account("210987654321"), "210987654321");
        let queue = json!({"QueueUrl": "http://127.0.0.1:5000/123456789012/targets.fifo"});
        let arns: Vec<String> = sqs(&queue, "eu-west-1").unwrap().into_iter().map(|r| r.arn).collect();
        assert_eq!(arns, ["arn:aws:sqs:eu-west-1:123456789012:targets.fifo"]);
    }
}
