//! A fault-injecting proxy in front of moto: every `every`-th request is answered with the throttling
//! error its service would send (EC2's `RequestLimitExceeded` as HTTP 503 XML, other query services'
//! `Throttling` as HTTP 400 XML, JSON services' `ThrottlingException` as HTTP 400, REST-JSON services'
//! (EKS) as HTTP 429 with `x-amzn-ErrorType`), the rest are
//! forwarded. Throttled requests are never two in a row, so a client that retries as the SDK does always
//! gets through. It also counts the calls per operation: [`ThrottlingProxy::counting`] only counts.
//! [`ThrottlingProxy::throttling`] takes any rule instead (a burst longer than the SDK's three attempts
//! on one operation, or an operation throttled for good). Every mode answers what moto cannot say as
//! AWS would ([`crate::shapes`]: a load balancer's interfaces, requester-managed).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One request as a throttling rule sees it.
pub struct Call<'a> {
    /// The operation (`CreateTags`, `GetParameter`).
    pub operation: &'a str,
    /// This request's number among the requests for its operation, from 1.
    pub nth: usize,
    /// The request body (the query protocols' form-encoded parameters).
    pub body: &'a str,
}

type ThrottleRule = Box<dyn Fn(&Call<'_>) -> bool + Send + Sync>;

/// An error answer in the service's own shape, for [`ThrottlingProxy::refusing`]: what moto never says
/// (an `AccessDenied` for a role that does not exist in that account).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

type RefuseRule = Box<dyn Fn(&Call<'_>) -> Option<Refusal> + Send + Sync>;

struct Inner {
    upstream: String,
    rule: ThrottleRule,
    refuse: Option<RefuseRule>,
    /// Added before each request is forwarded: the network time of a real endpoint.
    delay: std::time::Duration,
    seen: AtomicUsize,
    throttled: AtomicUsize,
    operations: std::sync::Mutex<BTreeMap<String, usize>>,
    /// The same calls as IAM actions (`ec2:CreateTags`).
    actions: std::sync::Mutex<BTreeMap<String, usize>>,
    /// Each IAM action with where it was called: `ec2:StopInstances ca-central-1 210987654321` (the
    /// Region of the request's SigV4 scope; the account whose role the credentials came from, or `-`
    /// for the caller's own), and with `contexts`, what IAM sees of it as a fourth field
    /// ([`crate::iam_context`]).
    scoped: std::sync::Mutex<BTreeMap<String, usize>>,
    /// Whether to learn each call's IAM context (its resources' tags, asked of the upstream).
    contexts: bool,
    /// Access key ids that AssumeRole answered, with the role's account.
    assumed: std::sync::Mutex<std::collections::HashMap<String, String>>,
    http: reqwest::Client,
}

#[derive(Clone)]
pub struct ThrottlingProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl ThrottlingProxy {
    /// Forwards to `upstream` (e.g. moto's URL), throttling every `every`-th request (2 or more).
    pub async fn start(upstream: &str, every: usize) -> Self {
        assert!(every >= 2, "throttling every request would never let one through");
        let seen = Arc::new(AtomicUsize::new(0));
        Self::throttling(upstream, move |_| (seen.fetch_add(1, Ordering::SeqCst) + 1) % every == 0).await
    }

    /// Forwards to `upstream`, throttling the requests `rule` picks.
    pub async fn throttling(upstream: &str, rule: impl Fn(&Call<'_>) -> bool + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        Self::serve(upstream, Box::new(rule), listener)
    }

    /// Forwards to `upstream`, answering the requests `rule` picks with its [`Refusal`] instead (query
    /// protocols' XML error shape; counted, not throttled).
    pub async fn refusing(upstream: &str, rule: impl Fn(&Call<'_>) -> Option<Refusal> + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        Self::serve_with(
            upstream,
            Box::new(|_| false),
            Some(Box::new(rule)),
            std::time::Duration::ZERO,
            listener,
            false,
        )
    }

    /// Forwards to `upstream` after `delay` per request (answered concurrently): an endpoint as far away
    /// as a real one, for measuring what concurrency buys when calls wait on the network.
    pub async fn delaying(upstream: &str, delay: std::time::Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        Self::serve_with(upstream, Box::new(|_| false), None, delay, listener, false)
    }

    /// [`ThrottlingProxy::counting`] from synchronous code running on a Tokio runtime.
    pub fn counting_now(upstream: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let listener = tokio::net::TcpListener::from_std(listener).expect("a Tokio listener");
        Self::serve_with(upstream, Box::new(|_| false), None, std::time::Duration::ZERO, listener, true)
    }

    fn serve(upstream: &str, rule: ThrottleRule, listener: tokio::net::TcpListener) -> Self {
        Self::serve_with(upstream, rule, None, std::time::Duration::ZERO, listener, false)
    }

    fn serve_with(
        upstream: &str,
        rule: ThrottleRule,
        refuse: Option<RefuseRule>,
        delay: std::time::Duration,
        listener: tokio::net::TcpListener,
        contexts: bool,
    ) -> Self {
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rule,
            refuse,
            delay,
            seen: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            operations: Default::default(),
            actions: Default::default(),
            scoped: Default::default(),
            contexts,
            assumed: Default::default(),
            http: reqwest::Client::new(),
        });
        let app = Router::new().fallback(forward).with_state(Arc::clone(&inner));
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { addr, inner }
    }

    /// A proxy that throttles nothing and counts every call.
    pub async fn counting(upstream: &str) -> Self {
        Self::throttling(upstream, |_| false).await
    }

    /// Calls that arrived for `operation` (e.g. `StopInstances`, `GetParameter`), throttled or not.
    pub fn calls(&self, operation: &str) -> usize {
        self.inner.operations.lock().unwrap().get(operation).copied().unwrap_or(0)
    }

    /// Every call seen as an IAM action (`ec2:CreateTags`, `ssm:GetParameter`), with its count.
    pub fn actions(&self) -> BTreeMap<String, usize> {
        self.inner.actions.lock().unwrap().clone()
    }

    /// The calls as `<action> <region> <account>` lines (account `-`: the caller's own credentials),
    /// followed by the call's IAM context as JSON on a proxy that learns it
    /// ([`ThrottlingProxy::counting_now`], the one [`crate::FunctionProcess`] records with), for
    /// `scripts/iam-check.py --observed`, which evaluates each against the policy of that account.
    pub fn scoped_actions(&self) -> Vec<String> {
        self.inner.scoped.lock().unwrap().keys().cloned().collect()
    }

    /// Every operation seen, with its count.
    pub fn operations(&self) -> BTreeMap<String, usize> {
        self.inner.operations.lock().unwrap().clone()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests were answered with a throttling error.
    pub fn throttled(&self) -> usize {
        self.inner.throttled.load(Ordering::SeqCst)
    }

    /// How many requests arrived in all.
    pub fn seen(&self) -> usize {
        self.inner.seen.load(Ordering::SeqCst)
    }
}

async fn forward(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.contains_key(crate::iam_context::LOOKUP_HEADER) {
        // Another proxy learning a call's context: straight through.
        return send(&inner, method, &uri, &headers, body)
            .await
            .map(|(status, headers, bytes)| (status, headers, Body::from(bytes)).into_response())
            .unwrap_or_else(|e| e);
    }
    inner.seen.fetch_add(1, Ordering::SeqCst);
    let text = String::from_utf8_lossy(&body);
    let (svc, operation) =
        rest(&method, uri.path(), &headers).unwrap_or_else(|| (service(&headers, &text), operation(&headers, &body)));
    let nth = {
        let mut operations = inner.operations.lock().unwrap();
        let count = operations.entry(operation.clone()).or_default();
        *count += 1;
        *count
    };
    let action = format!("{svc}:{operation}");
    let (key_id, region) = credential_scope(&headers);
    let account = inner.assumed.lock().unwrap().get(&key_id).cloned().unwrap_or_else(|| "-".into());
    let mut scoped = format!("{action} {region} {account}");
    if inner.contexts {
        let arn_account = if account == "-" { crate::iam_context::own_account(&key_id) } else { account.clone() };
        let up = crate::iam_context::Upstream { http: &inner.http, url: &inner.upstream, headers: &headers };
        let (svc, _) = action.split_once(':').unwrap_or_default();
        let context = crate::iam_context::context(svc, &operation, &text, &region, &arn_account, &up).await;
        scoped = format!("{scoped} {context}");
    }
    *inner.scoped.lock().unwrap().entry(scoped).or_default() += 1;
    *inner.actions.lock().unwrap().entry(action).or_default() += 1;
    let role_account = (operation == "AssumeRole").then(|| role_account(&text)).flatten();
    if !inner.delay.is_zero() {
        tokio::time::sleep(inner.delay).await;
    }
    let call = Call { operation: &operation, nth, body: &text };
    if let Some(refusal) = inner.refuse.as_ref().and_then(|refuse| refuse(&call)) {
        let body = format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error>\
             <RequestId>refused</RequestId></ErrorResponse>",
            refusal.code, refusal.message
        );
        let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
        return (status, [("content-type", "text/xml")], body).into_response();
    }
    if (inner.rule)(&call) {
        inner.throttled.fetch_add(1, Ordering::SeqCst);
        return if headers.contains_key("x-amz-target") {
            let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
            (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.1")], body).into_response()
        } else if !is_query(&body) {
            // REST-JSON (EKS): the code in x-amzn-ErrorType, HTTP 429.
            let headers = [("content-type", "application/json"), ("x-amzn-errortype", "ThrottlingException")];
            (StatusCode::TOO_MANY_REQUESTS, headers, r#"{"message":"Rate exceeded"}"#).into_response()
        } else if !is_ec2(&body) {
            let body =
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>\
                        </Error><RequestId>throttled</RequestId></ErrorResponse>";
            (StatusCode::BAD_REQUEST, [("content-type", "text/xml")], body).into_response()
        } else {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>\
                        <Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled</RequestID></Response>";
            (StatusCode::SERVICE_UNAVAILABLE, [("content-type", "text/xml")], body).into_response()
        };
    }
    let body_sent = body.clone();
    match send(&inner, method, &uri, &headers, body).await {
        Ok((status, response_headers, mut bytes)) => {
            if status.is_success() && operation == "DescribeNetworkInterfaces" && is_ec2(&body_sent) {
                bytes = Bytes::from(crate::shapes::aws_shaped_interfaces(&String::from_utf8_lossy(&bytes)));
            }
            if let (true, Some(account)) = (status.is_success(), role_account) {
                let answer = String::from_utf8_lossy(&bytes);
                if let Some(key_id) = between(&answer, "<AccessKeyId>", "</AccessKeyId>") {
                    inner.assumed.lock().unwrap().insert(key_id.to_owned(), account);
                }
            }
            (status, response_headers, Body::from(bytes)).into_response()
        }
        Err(response) => response,
    }
}

/// Forwards a request to the upstream: its status, headers and body, or a 502 answer.
async fn send(
    inner: &Inner,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), Response> {
    let target = format!("{}{}", inner.upstream, uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut request = inner.http.request(method, target).body(body);
    for (name, value) in headers.iter().filter(|(n, _)| !matches!(n.as_str(), "host" | "content-length" | "connection"))
    {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(upstream) => {
            let status = upstream.status();
            let mut response_headers = HeaderMap::new();
            for (name, value) in upstream.headers() {
                if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
                    response_headers.insert(name.clone(), value.clone());
                }
            }
            Ok((status, response_headers, upstream.bytes().await.unwrap_or_default()))
        }
        Err(e) => Err((StatusCode::BAD_GATEWAY, e.to_string()).into_response()),
    }
}

/// The access key id and the Region of a SigV4-signed request (`Credential=<key>/<date>/<region>/…`).
fn credential_scope(headers: &HeaderMap) -> (String, String) {
    let auth = headers.get("authorization").and_then(|a| a.to_str().ok()).unwrap_or_default();
    let scope = auth.split("Credential=").nth(1).and_then(|c| c.split(',').next()).unwrap_or_default();
    let mut parts = scope.split('/');
    let key_id = parts.next().unwrap_or_default().to_owned();
    let region = parts.nth(1).filter(|r| !r.is_empty()).unwrap_or("-").to_owned();
    (key_id, region)
}

/// The account of the role an AssumeRole request names (`RoleArn=arn%3Aaws%3Aiam%3A%3A<account>%3Arole…`).
fn role_account(body: &str) -> Option<String> {
    let arn = body.split('&').find_map(|pair| pair.strip_prefix("RoleArn="))?;
    let arn = arn.replace("%3A", ":").replace("%3a", ":");
    arn.split(':').nth(4).filter(|a| a.len() == 12).map(str::to_owned)
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    Some(&text[from..from + text[from..].find(end)?])
}

/// The service and operation of a REST-JSON request (EKS): the service from SigV4's credential scope
/// (`Credential=<key>/<date>/<region>/eks/aws4_request`), the operation from the method and path.
fn rest(method: &Method, path: &str, headers: &HeaderMap) -> Option<(&'static str, String)> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    if scope.split('/').nth(3)? != "eks" {
        return None;
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let operation = match (method.as_str(), parts.as_slice()) {
        ("GET", ["clusters"]) => "ListClusters",
        ("GET", ["clusters", _]) => "DescribeCluster",
        ("GET", ["clusters", _, "node-groups"]) => "ListNodegroups",
        ("GET", ["clusters", _, "node-groups", _]) => "DescribeNodegroup",
        ("POST", ["clusters", _, "node-groups", _, "update-config"]) => "UpdateNodegroupConfig",
        ("POST", ["tags", ..]) => "TagResource",
        ("DELETE", ["tags", ..]) => "UntagResource",
        ("GET", ["tags", ..]) => "ListTagsForResource",
        _ => "unknown",
    };
    Some(("eks", operation.to_owned()))
}

/// The operation of a request: the JSON protocols' `X-Amz-Target` suffix, or the query protocols' `Action`.
fn operation(headers: &HeaderMap, body: &Bytes) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or("unknown")
        .to_owned()
}

/// The IAM service prefix of a request: from the JSON protocols' `X-Amz-Target` or the query
/// protocols' API `Version`.
fn service(headers: &HeaderMap, body: &str) -> &'static str {
    if let Some(target) = headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
        return match target.split('.').next().unwrap_or_default() {
            "AmazonSSM" => "ssm",
            "secretsmanager" => "secretsmanager",
            "TrentService" => "kms",
            "AWSEvents" => "events",
            "AmazonEC2ContainerServiceV20141113" => "ecs",
            "AnyScaleFrontendService" => "application-autoscaling",
            "SageMaker" => "sagemaker",
            "AmazonSQS" => "sqs",
            "AWSOrganizationsV20161128" => "organizations",
            _ => "unknown",
        };
    }
    match body.split('&').find_map(|pair| pair.strip_prefix("Version=")) {
        Some("2016-11-15") => "ec2",
        Some("2014-10-31") => "rds",
        Some("2011-01-01") => "autoscaling",
        Some("2011-06-15") => "sts",
        Some("2015-12-01") => "elasticloadbalancing",
        Some("2012-12-01") => "redshift",
        _ => "unknown",
    }
}

/// A query-protocol request (form-encoded, with an `Action`); REST protocols put the operation in the path.
fn is_query(body: &Bytes) -> bool {
    String::from_utf8_lossy(body).split('&').any(|pair| pair.starts_with("Action="))
}

/// EC2's query protocol (API version 2016-11-15) has its own error shape.
fn is_ec2(body: &Bytes) -> bool {
    String::from_utf8_lossy(body).split('&').any(|pair| pair == "Version=2016-11-15")
}
