//! A local stand-in for EC2 at fleet scale: answers the calls instance-scheduler makes, in the XML
//! shapes EC2 (and RDS, Auto Scaling) answer with, from pages built in advance. moto finds each
//! instance's tags by scanning the Region, so a page of 1,000 costs it time that grows with the square
//! of the fleet and a 5,000 fleet can't be listed within the scheduler's 60 s attempt; this server
//! answers a page in milliseconds, so what a run costs is the scheduler's own work.
//!
//! What it answers (EC2's query protocol, API version 2016-11-15, form-encoded POSTs to `/`):
//! - `DescribeInstances` with `MaxResults=1000`: `reservationSet` pages of 1,000 instances (one
//!   reservation each, as launched one by one), `nextToken` paging; each instance about 4.7 KB of
//!   XML, the fields a real t3 instance has (placement, block devices, a network interface, tags …).
//!   Filters are not applied: every instance carries the Schedule tag and is running or stopped,
//!   which is what the scheduler's filters (tag-key, instance-state-name) would select anyway.
//!   Another page size is refused with EC2's error shape, so a change in the scheduler's shows.
//! - `StopInstances` / `StartInstances` (`InstanceId.N`): the `instancesSet` of previous and current
//!   states, and the instances flip at once to stopped / running (as moto does; no stopping phase).
//! - `DescribeSpotInstanceRequests`: none (the fleet has no Spot Instances).
//! - RDS `DescribeDBInstances`, `DescribeDBClusters`, `DescribeGlobalClusters` and Auto Scaling
//!   `DescribeAutoScalingGroups`: empty, in their services' `…Response/…Result` shapes.
//!
//! The other kinds' listings answer none, each in its own protocol: ECS ListClusters and SageMaker
//! ListNotebookInstances (JSON), Redshift DescribeClusters (query), EKS ListClusters (REST, `GET
//! /clusters`). CreateTags (the scheduler's transition marker) and EventBridge PutEvents (the run's
//! events) succeed.
//! Anything else is answered with EC2's `InvalidAction` error, and every call is counted by action.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::report::fill;

/// Instances per DescribeInstances page: the scheduler's MaxResults, and EC2's largest.
pub const PAGE: usize = 1000;

/// The Schedule tag every instance carries.
pub const SCHEDULE: &str = "Mon-Fri 08:00-19:00 Europe/London";

/// One instance of a DescribeInstances page, with `{state}` where its state goes.
const INSTANCE: &str = include_str!("replay/instance.xml");

const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

const RUNNING: &str = "<instanceState>\n<code>16</code>\n<name>running</name>\n</instanceState>\n<reason/>";
const STOPPED: &str = "<instanceState>\n<code>80</code>\n<name>stopped</name>\n</instanceState>\n\
     <reason>User initiated (2026-11-23 20:00:04 GMT)</reason>\n<stateReason>\n\
     <code>Client.UserInitiatedShutdown</code>\n\
     <message>Client.UserInitiatedShutdown: User initiated shutdown</message>\n</stateReason>";

/// The fleet: instance `n`'s id and whether it runs, and each page's XML while it is current.
struct Fleet {
    running: Vec<bool>,
    pages: Vec<Option<Bytes>>,
}

struct Inner {
    region: String,
    ids: Vec<String>,
    index: HashMap<String, usize>,
    fleet: Mutex<Fleet>,
    calls: Mutex<BTreeMap<String, usize>>,
    requests: AtomicUsize,
}

/// The server, on 127.0.0.1 at a port of its own; it stops with the Tokio runtime.
pub struct Ec2Replay {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Ec2Replay {
    /// A fleet of `instances` running instances in `region`, its pages built before the first call.
    pub async fn start(instances: usize, region: &str) -> Self {
        let ids: Vec<String> = (0..instances).map(|n| format!("i-0{:016x}", mixed(n, 1))).collect();
        let index = ids.iter().enumerate().map(|(n, id)| (id.clone(), n)).collect();
        let pages = instances.div_ceil(PAGE);
        let inner = Arc::new(Inner {
            region: region.to_owned(),
            ids,
            index,
            fleet: Mutex::new(Fleet { running: vec![true; instances], pages: vec![None; pages] }),
            calls: Mutex::default(),
            requests: AtomicUsize::new(0),
        });
        inner.build_pages();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the EC2 replay server");
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(answer).with_state(Arc::clone(&inner));
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { addr, inner }
    }

    /// The endpoint, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every instance running again, the pages rebuilt and the calls forgotten: ready for the next run.
    pub fn reset(&self) {
        {
            let mut fleet = self.inner.fleet.lock().unwrap();
            fleet.running.fill(true);
            fleet.pages.fill(None);
        }
        self.inner.build_pages();
        self.inner.calls.lock().unwrap().clear();
        self.inner.requests.store(0, Ordering::SeqCst);
    }

    /// The calls answered since the start or the last reset, by action (`StopInstances`).
    pub fn calls(&self) -> BTreeMap<String, usize> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// How many instances are running.
    pub fn running(&self) -> usize {
        self.inner.fleet.lock().unwrap().running.iter().filter(|r| **r).count()
    }

    /// The instances' ids, in page order.
    #[cfg(test)]
    pub fn ids(&self) -> &[String] {
        &self.inner.ids
    }
}

/// `n` spread over 64 bits (a bijection for each `salt`), for ids that look like EC2's and differ.
fn mixed(n: usize, salt: u64) -> u64 {
    ((n as u64) ^ (salt << 56)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Inner {
    /// Builds every page that is not current.
    fn build_pages(&self) {
        let mut fleet = self.fleet.lock().unwrap();
        for page in 0..fleet.pages.len() {
            if fleet.pages[page].is_none() {
                let xml = self.page_xml(page, &fleet.running);
                fleet.pages[page] = Some(xml);
            }
        }
    }

    /// Page `page` of DescribeInstances as EC2 writes it, the instances in the states of `running`.
    fn page_xml(&self, page: usize, running: &[bool]) -> Bytes {
        let range = page * PAGE..((page + 1) * PAGE).min(self.ids.len());
        let mut xml = String::with_capacity(range.len() * (INSTANCE.len() + 600) + 512);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        xml.push_str(&format!("<DescribeInstancesResponse xmlns=\"{EC2_NS}\">\n"));
        xml.push_str(&format!("<requestId>{}</requestId>\n<reservationSet>\n", request_id(page)));
        for n in range.clone() {
            xml.push_str(&self.instance_xml(n, running[n]));
        }
        xml.push_str("</reservationSet>\n");
        if range.end < self.ids.len() {
            xml.push_str(&format!("<nextToken>{}</nextToken>\n", token(page + 1)));
        }
        xml.push_str("</DescribeInstancesResponse>\n");
        Bytes::from(xml)
    }

    fn instance_xml(&self, n: usize, running: bool) -> String {
        let ip = [16 + (n >> 16), (n >> 8) & 255, n & 255];
        let hex = |prefix: &str, salt| format!("{prefix}-0{:016x}", mixed(n, salt));
        let mac = mixed(n, 7).to_be_bytes();
        let values = [
            ("reservation", hex("r", 2)),
            ("id", self.ids[n].clone()),
            ("state", (if running { RUNNING } else { STOPPED }).to_owned()),
            ("ip", format!("10.{}.{}.{}", ip[0], ip[1], ip[2])),
            ("ip_dash", format!("10-{}-{}-{}", ip[0], ip[1], ip[2])),
            ("region", self.region.clone()),
            ("az", format!("{}{}", self.region, ["a", "b", "c"][n % 3])),
            ("subnet", format!("subnet-0{:016x}", mixed(n % 3, 3))),
            ("root_volume", hex("vol", 4)),
            ("data_volume", hex("vol", 5)),
            ("interface", hex("eni", 6)),
            ("attachment", hex("eni-attach", 8)),
            ("mac", format!("0e:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3], mac[4])),
            ("n", format!("{n:06}")),
            ("schedule", SCHEDULE.to_owned()),
        ];
        fill(INSTANCE, &values)
    }

    fn count(&self, action: &str) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        *self.calls.lock().unwrap().entry(action.to_owned()).or_default() += 1;
    }

    fn describe_instances(&self, params: &[(String, String)]) -> Response {
        if param(params, "MaxResults") != Some(PAGE.to_string().as_str()) {
            return ec2_error(
                "InvalidParameterValue",
                &format!("this replay server has pages of {PAGE} instances only: send MaxResults={PAGE}"),
            );
        }
        let page = match param(params, "NextToken") {
            None => 0,
            Some(t) => match page_of(t) {
                Some(page) => page,
                None => return ec2_error("InvalidParameterValue", &format!("Unable to parse pagination token: {t}")),
            },
        };
        let mut fleet = self.fleet.lock().unwrap();
        if page >= fleet.pages.len().max(1) {
            return ec2_error("InvalidParameterValue", "The pagination token is past the last page");
        }
        let xml = match fleet.pages.get(page).cloned().flatten() {
            Some(xml) => xml,
            None if self.ids.is_empty() => Bytes::from(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse xmlns=\"{EC2_NS}\">\n\
                 <requestId>{}</requestId>\n<reservationSet/>\n</DescribeInstancesResponse>\n",
                request_id(0)
            )),
            None => {
                let xml = self.page_xml(page, &fleet.running);
                fleet.pages[page] = Some(xml.clone());
                xml
            }
        };
        xml_response(StatusCode::OK, xml)
    }

    /// StopInstances (`start` false) or StartInstances: flips the instances, answers their states.
    fn start_or_stop(&self, params: &[(String, String)], start: bool) -> Response {
        let ids: Vec<&str> =
            params.iter().filter(|(k, _)| k.starts_with("InstanceId.")).map(|(_, v)| v.as_str()).collect();
        let mut numbers = Vec::with_capacity(ids.len());
        for id in &ids {
            match self.index.get(*id) {
                Some(n) => numbers.push(*n),
                None => {
                    return ec2_error("InvalidInstanceID.NotFound", &format!("The instance ID '{id}' does not exist"))
                }
            }
        }
        // EC2's StartingInstances / StoppingInstances, both an `instancesSet` on the wire.
        let operation = if start { "StartInstances" } else { "StopInstances" };
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{operation}Response xmlns=\"{EC2_NS}\">\n\
             <requestId>{}</requestId>\n<instancesSet>\n",
            request_id(self.requests.load(Ordering::SeqCst))
        );
        let mut fleet = self.fleet.lock().unwrap();
        for n in numbers {
            let was = fleet.running[n];
            let (current, previous) = match (start, was) {
                (true, true) => ((16, "running"), (16, "running")),
                (true, false) => ((0, "pending"), (80, "stopped")),
                (false, true) => ((64, "stopping"), (16, "running")),
                (false, false) => ((80, "stopped"), (80, "stopped")),
            };
            if was != start {
                fleet.running[n] = start;
                fleet.pages[n / PAGE] = None;
            }
            xml.push_str(&format!(
                "<item>\n<instanceId>{}</instanceId>\n\
                 <currentState>\n<code>{}</code>\n<name>{}</name>\n</currentState>\n\
                 <previousState>\n<code>{}</code>\n<name>{}</name>\n</previousState>\n</item>\n",
                self.ids[n], current.0, current.1, previous.0, previous.1
            ));
        }
        xml.push_str(&format!("</instancesSet>\n</{operation}Response>\n"));
        xml_response(StatusCode::OK, Bytes::from(xml))
    }
}

/// The query protocols' empty answer to `operation` of a service whose API namespace is `namespace`:
/// `<{operation}Response><{operation}Result><{list}/></…Result><ResponseMetadata>…`.
fn empty_query_answer(operation: &str, namespace: &str, list: &str) -> Response {
    let xml = format!(
        "<{operation}Response xmlns=\"{namespace}\">\n<{operation}Result>\n<{list}/>\n</{operation}Result>\n\
         <ResponseMetadata>\n<RequestId>{}</RequestId>\n</ResponseMetadata>\n</{operation}Response>\n",
        request_id(0)
    );
    xml_response(StatusCode::OK, Bytes::from(xml))
}

const RDS_NS: &str = "http://rds.amazonaws.com/doc/2014-10-31/";
const AUTOSCALING_NS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";
const REDSHIFT_NS: &str = "http://redshift.amazonaws.com/doc/2012-12-01/";

async fn answer(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // EKS's REST protocol: the scheduler lists the Region's clusters; an account without any answers empty.
    if method == Method::GET && uri.path() == "/clusters" {
        inner.count("eks:ListClusters");
        return ([("content-type", "application/json")], r#"{"clusters":[]}"#).into_response();
    }
    // The JSON protocols (ECS, SageMaker): the scheduler lists clusters and notebooks; none here.
    if let Some(target) = headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        inner.count(&operation);
        return match target {
            "AmazonEC2ContainerServiceV20141113.ListClusters" => {
                ([("content-type", "application/x-amz-json-1.1")], r#"{"clusterArns":[]}"#).into_response()
            }
            "SageMaker.ListNotebookInstances" => {
                ([("content-type", "application/x-amz-json-1.1")], r#"{"NotebookInstances":[]}"#).into_response()
            }
            // The run's events: every entry put.
            "AWSEvents.PutEvents" => {
                let entries = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|b| b["Entries"].as_array().map(Vec::len))
                    .unwrap_or(0);
                let ids: Vec<String> = (0..entries).map(|n| format!(r#"{{"EventId":"{}"}}"#, request_id(n))).collect();
                let answer = format!(r#"{{"FailedEntryCount":0,"Entries":[{}]}}"#, ids.join(","));
                ([("content-type", "application/x-amz-json-1.1")], answer).into_response()
            }
            other => (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/x-amz-json-1.1")],
                format!(r#"{{"__type":"InvalidAction","message":"{other} is not answered by the replay server"}}"#),
            )
                .into_response(),
        };
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let action = param(&params, "Action").unwrap_or("(no Action)").to_owned();
    inner.count(&action);
    match action.as_str() {
        // The scheduler's marker of the transition it applied (stackhand:schedule-applied).
        "CreateTags" => xml_response(
            StatusCode::OK,
            Bytes::from(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateTagsResponse xmlns=\"{EC2_NS}\">\n\
                 <requestId>{}</requestId>\n<return>true</return>\n</CreateTagsResponse>\n",
                request_id(0)
            )),
        ),
        "DescribeInstances" => inner.describe_instances(&params),
        "StopInstances" => inner.start_or_stop(&params, false),
        "StartInstances" => inner.start_or_stop(&params, true),
        "DescribeSpotInstanceRequests" => xml_response(
            StatusCode::OK,
            Bytes::from(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSpotInstanceRequestsResponse xmlns=\"{EC2_NS}\">\n\
                 <requestId>{}</requestId>\n<spotInstanceRequestSet/>\n</DescribeSpotInstanceRequestsResponse>\n",
                request_id(0)
            )),
        ),
        "DescribeDBInstances" => empty_query_answer("DescribeDBInstances", RDS_NS, "DBInstances"),
        "DescribeDBClusters" => empty_query_answer("DescribeDBClusters", RDS_NS, "DBClusters"),
        "DescribeGlobalClusters" => empty_query_answer("DescribeGlobalClusters", RDS_NS, "GlobalClusters"),
        "DescribeAutoScalingGroups" => {
            empty_query_answer("DescribeAutoScalingGroups", AUTOSCALING_NS, "AutoScalingGroups")
        }
        "DescribeClusters" => empty_query_answer("DescribeClusters", REDSHIFT_NS, "Clusters"),
        other => ec2_error("InvalidAction", &format!("The action {other} is not valid for this web service (replay server)")),
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// An opaque-looking pagination token naming page `page`.
fn token(page: usize) -> String {
    format!("eyJ2IjoiMiIsImMiOiJyZXBsYXkifQ.{page}.{:016x}", mixed(page, 9))
}

fn page_of(token: &str) -> Option<usize> {
    token.strip_prefix("eyJ2IjoiMiIsImMiOiJyZXBsYXkifQ.")?.split('.').next()?.parse().ok()
}

/// A request id in the UUID form AWS uses.
fn request_id(n: usize) -> String {
    let x = mixed(n, 10);
    format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", x >> 32, (x >> 16) & 0xffff, x & 0xfff, n & 0xfff, x >> 16)
}

/// EC2's error shape (HTTP 400).
fn ec2_error(code: &str, message: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
         <Message>{message}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        request_id(0)
    );
    xml_response(StatusCode::BAD_REQUEST, Bytes::from(xml))
}

fn xml_response(status: StatusCode, xml: Bytes) -> Response {
    (status, [("content-type", "text/xml;charset=UTF-8")], Body::from(xml)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{DeviceType, Filter, InstanceStateName};
    use testkit::local::sdk_config_in;

    const REGION: &str = "eu-west-1";

    /// Every instance the SDK's paginator lists, page by page: (id, state, state reason code).
    async fn listed(ec2: &aws_sdk_ec2::Client) -> Vec<Vec<(String, InstanceStateName, Option<String>)>> {
        let mut pages = ec2
            .describe_instances()
            .filters(Filter::builder().name("tag-key").values("Schedule").build())
            .max_results(PAGE as i32)
            .into_paginator()
            .send();
        let mut listed = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.expect("DescribeInstances through the replay server");
            let mut instances = Vec::new();
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                assert_eq!(instance.root_device_type(), Some(&DeviceType::Ebs));
                let schedule = instance.tags().iter().find(|t| t.key() == Some("Schedule")).and_then(|t| t.value());
                assert_eq!(schedule, Some(SCHEDULE));
                assert_eq!(instance.network_interfaces().len(), 1);
                assert_eq!(instance.block_device_mappings().len(), 2);
                assert!(instance.placement().and_then(|p| p.availability_zone()).unwrap().starts_with(REGION));
                let state = instance.state().and_then(|s| s.name()).unwrap().clone();
                let reason = instance.state_reason().and_then(|r| r.code()).map(str::to_owned);
                instances.push((instance.instance_id().unwrap().to_owned(), state, reason));
            }
            listed.push(instances);
        }
        listed
    }

    #[tokio::test]
    async fn the_sdk_pages_through_the_fleet_and_stop_and_start_flip_states() {
        let replay = Ec2Replay::start(2500, REGION).await;
        let config = sdk_config_in(&replay.url(), REGION).await;
        let ec2 = aws_sdk_ec2::Client::new(&config);

        let pages = listed(&ec2).await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [1000, 1000, 500]);
        let ids: Vec<String> = pages.iter().flatten().map(|(id, _, _)| id.clone()).collect();
        assert_eq!(ids, replay.ids());
        assert!(pages
            .iter()
            .flatten()
            .all(|(_, state, reason)| *state == InstanceStateName::Running && reason.is_none()));

        let stopped = ec2.stop_instances().set_instance_ids(Some(ids[950..1050].to_vec())).send().await.unwrap();
        assert_eq!(stopped.stopping_instances().len(), 100);
        for change in stopped.stopping_instances() {
            assert_eq!(change.current_state().and_then(|s| s.name()), Some(&InstanceStateName::Stopping));
            assert_eq!(change.previous_state().and_then(|s| s.name()), Some(&InstanceStateName::Running));
        }
        assert_eq!(replay.running(), 2400);
        let started = ec2.start_instances().instance_ids(&ids[1000]).instance_ids(&ids[0]).send().await.unwrap();
        let changes: Vec<_> = started
            .starting_instances()
            .iter()
            .map(|c| (c.instance_id().unwrap(), c.current_state().and_then(|s| s.name()).unwrap().clone()))
            .collect();
        assert_eq!(
            changes,
            [(ids[1000].as_str(), InstanceStateName::Pending), (ids[0].as_str(), InstanceStateName::Running)]
        );

        // The pages that held a flipped instance are rebuilt with its new state and reason.
        let states: Vec<_> = listed(&ec2).await.into_iter().flatten().collect();
        for (n, (id, state, reason)) in states.iter().enumerate() {
            let stopped = (950..1050).contains(&n) && n != 1000;
            assert_eq!(id, &ids[n]);
            let expected = if stopped { InstanceStateName::Stopped } else { InstanceStateName::Running };
            assert_eq!(state, &expected, "{id}");
            assert_eq!(reason.as_deref(), stopped.then_some("Client.UserInitiatedShutdown"), "{id}");
        }

        let unknown = ec2.stop_instances().instance_ids("i-0000000000000000f").send().await.unwrap_err();
        assert_eq!(unknown.into_service_error().meta().code(), Some("InvalidInstanceID.NotFound"));
        let other_page = ec2.describe_instances().max_results(5).send().await.unwrap_err();
        assert_eq!(other_page.into_service_error().meta().code(), Some("InvalidParameterValue"));

        assert_eq!(
            replay.calls(),
            BTreeMap::from([
                ("DescribeInstances".to_owned(), 7),
                ("StartInstances".to_owned(), 1),
                ("StopInstances".to_owned(), 2)
            ])
        );
        replay.reset();
        assert_eq!((replay.running(), replay.calls().len()), (2500, 0));
    }

    #[tokio::test]
    async fn the_other_kinds_listings_are_empty_in_their_own_shapes() {
        let replay = Ec2Replay::start(0, REGION).await;
        let config = sdk_config_in(&replay.url(), REGION).await;
        let rds = aws_sdk_rds::Client::new(&config);
        let autoscaling = aws_sdk_autoscaling::Client::new(&config);
        let ec2 = aws_sdk_ec2::Client::new(&config);
        assert!(aws_sdk_ecs::Client::new(&config).list_clusters().send().await.unwrap().cluster_arns().is_empty());
        assert!(aws_sdk_eks::Client::new(&config).list_clusters().send().await.unwrap().clusters().is_empty());
        let redshift = aws_sdk_redshift::Client::new(&config);
        assert!(redshift.describe_clusters().tag_keys("Schedule").send().await.unwrap().clusters().is_empty());
        let sagemaker = aws_sdk_sagemaker::Client::new(&config);
        assert!(sagemaker.list_notebook_instances().send().await.unwrap().notebook_instances().is_empty());
        assert!(rds.describe_db_instances().send().await.unwrap().db_instances().is_empty());
        assert!(rds.describe_db_clusters().send().await.unwrap().db_clusters().is_empty());
        assert!(rds.describe_global_clusters().send().await.unwrap().global_clusters().is_empty());
        assert!(autoscaling.describe_auto_scaling_groups().send().await.unwrap().auto_scaling_groups().is_empty());
        assert!(ec2.describe_spot_instance_requests().send().await.unwrap().spot_instance_requests().is_empty());
        assert!(listed(&ec2).await.iter().flatten().next().is_none());
        let unknown = ec2.describe_vpcs().send().await.unwrap_err();
        assert_eq!(unknown.into_service_error().meta().code(), Some("InvalidAction"));
        assert_eq!(replay.calls().values().sum::<usize>(), 11);
    }

    #[tokio::test]
    async fn an_instance_is_about_as_much_xml_as_real_ec2_sends() {
        let replay = Ec2Replay::start(1000, REGION).await;
        let page = replay.inner.page_xml(0, &[true; 1000]);
        let per_instance = page.len() / 1000;
        assert!((4000..5500).contains(&per_instance), "{per_instance} bytes per instance");
    }
}
