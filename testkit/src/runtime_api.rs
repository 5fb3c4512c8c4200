//! A Lambda Runtime API emulator: the function binary polls it exactly as it polls Lambda, so tests go
//! through the real runtime path (`lambda_runtime`, deadlines, error reporting).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// POSTed to `/invocation/{id}/response`.
    Response(Value),
    /// POSTed to `/invocation/{id}/error`: an invocation error (Lambda would retry an async invoke).
    Error(Value),
}

impl Answer {
    pub fn is_error(&self) -> bool {
        matches!(self, Self::Error(_))
    }
    pub fn value(&self) -> &Value {
        match self {
            Self::Response(v) | Self::Error(v) => v,
        }
    }
}

struct Pending {
    id: String,
    body: Bytes,
    deadline_ms: u64,
}

struct Inner {
    first_poll: std::sync::Mutex<Option<Instant>>,
    queue_rx: Mutex<mpsc::UnboundedReceiver<Pending>>,
    waiting: std::sync::Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_errors: std::sync::Mutex<Vec<Value>>,
}

pub struct RuntimeApi {
    addr: SocketAddr,
    queue_tx: mpsc::UnboundedSender<Pending>,
    inner: Arc<Inner>,
    next_id: AtomicU64,
}

/// One finished invocation: the answer and the deadline it was given.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub answer: Answer,
    pub deadline: Instant,
    pub answered_at: Instant,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            first_poll: Default::default(),
            queue_rx: Mutex::new(queue_rx),
            waiting: Default::default(),
            init_errors: Default::default(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the Runtime API");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { addr, queue_tx, inner, next_id: AtomicU64::new(1) }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Invokes the function with raw `payload` bytes and a Lambda timeout of `timeout`; waits for its
    /// answer (at most `timeout` plus a grace period, then panics: the function hung past its deadline).
    pub async fn invoke(&self, payload: impl Into<Bytes>, timeout: Duration) -> Invocation {
        let id = format!("inv-{:06}", self.next_id.fetch_add(1, Ordering::SeqCst));
        let (tx, rx) = oneshot::channel();
        self.inner.waiting.lock().unwrap().insert(id.clone(), tx);
        let deadline_sys = SystemTime::now() + timeout;
        let deadline = Instant::now() + timeout;
        let deadline_ms = deadline_sys.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        self.queue_tx.send(Pending { id: id.clone(), body: payload.into(), deadline_ms }).expect("queue");
        let answer = tokio::time::timeout(timeout + Duration::from_secs(10), rx)
            .await
            .unwrap_or_else(|_| panic!("invocation {id} got no answer within its timeout + 10 s"))
            .expect("answer channel");
        Invocation { answer, deadline, answered_at: Instant::now() }
    }

    /// Invokes with a JSON event.
    pub async fn invoke_json(&self, event: &Value, timeout: Duration) -> Invocation {
        self.invoke(serde_json::to_vec(event).unwrap(), timeout).await
    }

    /// When the function first asked for an invocation: the end of its cold start.
    pub fn first_poll(&self) -> Option<Instant> {
        *self.inner.first_poll.lock().unwrap()
    }

    pub fn init_errors(&self) -> Vec<Value> {
        self.inner.init_errors.lock().unwrap().clone()
    }
}

async fn next(State(inner): State<Arc<Inner>>) -> Response {
    inner.first_poll.lock().unwrap().get_or_insert_with(Instant::now);
    let pending = inner.queue_rx.lock().await.recv().await;
    let Some(p) = pending else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_str(&p.id).unwrap());
    headers.insert("lambda-runtime-deadline-ms", HeaderValue::from_str(&p.deadline_ms.to_string()).unwrap());
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:under-test"),
    );
    headers.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-00000000-000000000000000000000000"));
    // As Lambda sends it; runtime clients such as Python's decode the event only when told it is JSON.
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (StatusCode::OK, headers, p.body).into_response()
}

fn answer(inner: &Inner, id: &str, answer: Answer) -> StatusCode {
    match inner.waiting.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(answer);
            StatusCode::ACCEPTED
        }
        // Lambda refuses a second answer to the same invocation.
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answer(&inner, &id, Answer::Response(json_or_text(&body)))
}

async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answer(&inner, &id, Answer::Error(json_or_text(&body)))
}

async fn init_error(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    inner.init_errors.lock().unwrap().push(json_or_text(&body));
    StatusCode::ACCEPTED
}
