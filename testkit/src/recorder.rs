//! A stand-in for the presigned S3 ResponseURL: records every PUT, and can fail the first few or hang.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use axum::Router;
use serde_json::Value;
use tokio::time::Instant;

/// The signature every recorder URL carries: tests assert it never reaches a log or a response.
pub const SIGNATURE: &str = "5ec7e75160a7c0de0f5ec7e75160a7c0de0f5ec7e7516000";

#[derive(Debug, Clone)]
pub struct RecordedPut {
    pub method: String,
    pub path_and_query: String,
    /// `None` when the header was absent; `Some("")` when sent empty (what S3 presigning needs).
    pub content_type: Option<String>,
    pub body: Value,
    pub raw_len: usize,
    pub at: Instant,
    /// The HTTP status the recorder answered with.
    pub answered: u16,
}

#[derive(Default)]
struct Behaviour {
    fail_next: usize,
    hang: bool,
}

#[derive(Default)]
struct Inner {
    puts: Mutex<Vec<RecordedPut>>,
    behaviour: Mutex<Behaviour>,
}

#[derive(Clone)]
pub struct ResponseRecorder {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl ResponseRecorder {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1").await
    }

    /// A recorder on another loopback address (`127.0.0.2`, say): a host the function under test was not
    /// told it may answer, to show that it sends nothing there.
    pub async fn start_on(ip: &str) -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new().fallback(any(record)).with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind the recorder");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { addr, inner }
    }

    /// A ResponseURL shaped like CloudFormation's, with [`SIGNATURE`] in its query.
    pub fn url(&self, name: &str) -> String {
        format!(
            "http://{}/cloudformation-custom-resource-response/{name}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=7200&X-Amz-Signature={SIGNATURE}",
            self.addr
        )
    }

    /// Answer the next `n` PUTs with HTTP 500.
    pub fn fail_next(&self, n: usize) {
        self.inner.behaviour.lock().unwrap().fail_next = n;
    }

    /// Accept PUTs but never answer them.
    pub fn hang(&self) {
        self.inner.behaviour.lock().unwrap().hang = true;
    }

    /// Every PUT whose path names `name`, in arrival order.
    pub fn puts_for(&self, name: &str) -> Vec<RecordedPut> {
        let needle = format!("/{name}?");
        self.inner.puts.lock().unwrap().iter().filter(|p| p.path_and_query.contains(&needle)).cloned().collect()
    }

    /// Every PUT received.
    pub fn all(&self) -> Vec<RecordedPut> {
        self.inner.puts.lock().unwrap().clone()
    }

    /// The accepted (2xx) PUTs for `name`.
    pub fn delivered_for(&self, name: &str) -> Vec<RecordedPut> {
        self.puts_for(name).into_iter().filter(|p| p.answered < 300).collect()
    }

    /// Waits until `count` PUTs for `name` were accepted, or `timeout`.
    pub async fn wait_delivered(&self, name: &str, count: usize, timeout: Duration) -> Vec<RecordedPut> {
        let end = Instant::now() + timeout;
        loop {
            let got = self.delivered_for(name);
            if got.len() >= count || Instant::now() >= end {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn record(
    State(inner): State<Arc<Inner>>,
    method: axum::http::Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (hang, fail) = {
        let mut b = inner.behaviour.lock().unwrap();
        let fail = b.fail_next > 0;
        if fail {
            b.fail_next -= 1;
        }
        (b.hang, fail)
    };
    let answered = if fail { 500 } else { 200 };
    inner.puts.lock().unwrap().push(RecordedPut {
        method: method.to_string(),
        path_and_query: uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        content_type: headers.get("content-type").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw_len: body.len(),
        at: Instant::now(),
        answered: if hang { 0 } else { answered },
    });
    if hang {
        std::future::pending::<()>().await;
    }
    StatusCode::from_u16(answered).unwrap()
}
