//! One invocation, end to end: envelope → properties → handler (guarded by the deadline) → one response.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use tokio::time::Instant;
use tracing::Instrument;

use super::deliver::{deliver, http_client, NotDelivered};
use super::event::{Envelope, RequestType, ResponseUrlPolicy, Unanswerable};
use super::response::{Response, Status};
use super::{CustomResource, Outcome, RequestInfo};
use crate::logging::panic_message;
use crate::{aws::error_chain, props, redact};

/// Physical ids of failed Creates start with this; their Delete is acknowledged without any AWS call.
pub const FAILED_CREATE_PREFIX: &str = "stackhand-failed-create:";

pub fn is_failed_create_marker(physical_id: &str) -> bool {
    physical_id.starts_with(FAILED_CREATE_PREFIX)
}

fn failed_create_marker(env: &Envelope) -> String {
    format!("{FAILED_CREATE_PREFIX}{}:{}", env.logical_resource_id, env.request_id)
        .chars()
        .take(super::MAX_PHYSICAL_ID_BYTES / 4)
        .collect()
}

/// How long the handler may run when `remaining` is left before the Lambda deadline: the rest is kept
/// to send the response (a quarter of the time, at least 0.75 s, at most 10 s).
pub fn handler_budget(remaining: Duration) -> Duration {
    let reserve = (remaining / 4).clamp(Duration::from_millis(750), Duration::from_secs(10));
    remaining.saturating_sub(reserve)
}

/// Why an invocation ends in an error rather than a result.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error(transparent)]
    Unanswerable(#[from] Unanswerable),
    #[error(transparent)]
    NotDelivered(#[from] NotDelivered),
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Self {
        let error_type = match e {
            InvocationError::Unanswerable(_) => "Stackhand.UnanswerableEvent",
            InvocationError::NotDelivered(_) => "Stackhand.ResponseNotDelivered",
        };
        crate::lambda::diagnostic(error_type, &e)
    }
}

/// Serves `handler` on the Lambda Runtime API until the process ends.
pub async fn run<H: CustomResource>(handler: H) -> Result<(), lambda_runtime::Error> {
    serve(handler, |event: Value| async move {
        let why = Unanswerable(format!(
            "the event has neither ResponseURL nor RequestType (it is {})",
            if event.is_object() { "some other event" } else { "not even an object" }
        ));
        tracing::error!(error = %why, "unanswerable event");
        Err(Diagnostic::from(InvocationError::from(why)))
    })
    .await
}

/// Whether an event is a CloudFormation custom-resource request (it has a ResponseURL or a
/// RequestType): those get the exactly-once answer; anything else is another kind of event.
pub fn is_custom_resource_request(event: &Value) -> bool {
    event.get("ResponseURL").is_some() || event.get("RequestType").is_some()
}

/// Serves a function that takes custom-resource requests (to `handler`, with every guarantee of
/// [`Runtime`]) and other events too (to `other`, e.g. EventBridge notifications).
pub async fn serve<H, F, Fut>(handler: H, other: F) -> Result<(), lambda_runtime::Error>
where
    H: CustomResource,
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value, Diagnostic>> + Send,
{
    let runtime = Arc::new(Runtime::new(handler));
    let other = Arc::new(other);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let runtime = Arc::clone(&runtime);
        let other = Arc::clone(&other);
        async move {
            let deadline = crate::lambda::deadline(event.context.deadline);
            if is_custom_resource_request(&event.payload) {
                let invocation = Invocation {
                    log_stream: &event.context.env_config.log_stream,
                    function_arn: &event.context.invoked_function_arn,
                };
                runtime.handle(event.payload, deadline, &invocation).await.map_err(Diagnostic::from)
            } else {
                // Other events' AWS calls retry within the invocation, keeping a second to return.
                let cutoff = deadline.checked_sub(Duration::from_secs(1)).unwrap_or(deadline);
                crate::aws::within(cutoff, other(event.payload)).await
            }
        }
    }))
    .await
}

/// A handler with the HTTP client its responses go out on and the hosts they may go to.
pub struct Runtime<H> {
    handler: Arc<H>,
    http: aws_smithy_runtime_api::client::http::SharedHttpConnector,
    response_urls: ResponseUrlPolicy,
}

/// What Lambda says about the invocation besides its deadline.
#[derive(Debug, Clone, Copy, Default)]
pub struct Invocation<'a> {
    /// The log stream, quoted in a success's Reason (empty: "OK").
    pub log_stream: &'a str,
    /// The ARN the function was invoked by ([`RequestInfo::function_arn`]).
    pub function_arn: &'a str,
}

enum Call<P> {
    /// `replacing`: an Update whose new physical id differs from the current one.
    Create {
        id: String,
        props: P,
        replacing: bool,
    },
    Update {
        id: String,
        props: P,
        old: Option<P>,
    },
    Delete {
        id: String,
        props: P,
    },
    /// A Delete whose properties no longer parse: the handler cleans up by the physical id alone.
    DeleteUnparsed {
        id: String,
        properties: Value,
        why: String,
    },
}

impl<P> Call<P> {
    /// The physical id a success answers with.
    fn physical_id(&self) -> &str {
        match self {
            Call::Create { id, .. } | Call::Update { id, .. } | Call::Delete { id, .. } => id,
            Call::DeleteUnparsed { id, .. } => id,
        }
    }
}

/// How a handler call ended.
enum Ended<T> {
    Done(T),
    Failed(String),
    TimedOut,
}

/// Runs `work` on its own task with `deadline` as both its retry budget ([`crate::aws::within`]) and
/// its hard stop: a panic or the deadline becomes an [`Ended`], never an unanswered request.
async fn guarded<T, E, F>(deadline: Instant, work: F) -> Ended<T>
where
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
{
    let task = tokio::spawn(crate::aws::within(deadline, work).in_current_span());
    let abort = task.abort_handle();
    match tokio::time::timeout_at(deadline, task).await {
        Ok(Ok(Ok(done))) => Ended::Done(done),
        Ok(Ok(Err(e))) => Ended::Failed(error_chain(&e)),
        Ok(Err(join)) => Ended::Failed(if join.is_panic() {
            format!("internal error: the function panicked: {}", panic_message(join.into_panic().as_ref()))
        } else {
            "internal error: the handler task was cancelled".to_owned()
        }),
        Err(_) => {
            abort.abort();
            Ended::TimedOut
        }
    }
}

/// Of a Create's handler budget, the part kept to undo what a failed Create changed: a fifth, at most
/// 30 s.
pub fn cleanup_budget(budget: Duration) -> Duration {
    (budget / 5).min(Duration::from_secs(30))
}

impl<H: CustomResource> Runtime<H> {
    pub fn new(handler: H) -> Self {
        Self::with_response_urls(handler, ResponseUrlPolicy::from_env())
    }

    /// A runtime that answers only ResponseURLs `policy` allows.
    pub fn with_response_urls(handler: H, policy: ResponseUrlPolicy) -> Self {
        Self { handler: Arc::new(handler), http: http_client(), response_urls: policy }
    }

    /// Answers one event and returns a summary for the invocation result (never the URL, never
    /// NoEcho data). Errs only when nobody can be answered or the answer could not be delivered.
    pub async fn handle(
        &self,
        event: Value,
        deadline: Instant,
        invocation: &Invocation<'_>,
    ) -> Result<Value, InvocationError> {
        let env = match Envelope::from_value_with(&event, &self.response_urls) {
            Ok(env) => env,
            Err(e) => {
                tracing::error!(error = %e, "unanswerable event");
                return Err(e.into());
            }
        };
        let span = tracing::info_span!(
            "custom_resource",
            request_type = %env.request_type,
            logical_resource_id = %env.logical_resource_id,
        );
        let response = self.decide(&env, deadline, invocation).instrument(span.clone()).await;
        let (body, sent) = response.into_body();
        let delivery = deliver(&self.http, &env.response_url, body, deadline).instrument(span).await;
        let attempts = match &delivery {
            Ok(d) => d.attempts,
            Err(e) => e.attempts,
        };
        let status = match sent.status {
            Status::Success => "SUCCESS",
            Status::Failed => "FAILED",
        };
        match &delivery {
            Ok(_) => tracing::info!(
                request_type = %env.request_type,
                logical_resource_id = %env.logical_resource_id,
                stack_id = %env.stack_id,
                physical_resource_id = %sent.physical_resource_id,
                status,
                reason = %sent.reason,
                response_to = %env.response_url.host(),
                attempts,
                "custom resource request answered"
            ),
            Err(e) => tracing::error!(
                request_type = %env.request_type,
                logical_resource_id = %env.logical_resource_id,
                stack_id = %env.stack_id,
                physical_resource_id = %sent.physical_resource_id,
                status,
                reason = %sent.reason,
                response_to = %env.response_url.host(),
                attempts,
                error = %e.last_error,
                "custom resource response NOT delivered"
            ),
        }
        delivery?;
        let data = if sent.no_echo { json!("(hidden: NoEcho)") } else { json!(sent.data) };
        Ok(json!({
            "Status": status,
            "Reason": sent.reason,
            "PhysicalResourceId": sent.physical_resource_id,
            "Data": data,
            "ResponseAttempts": attempts,
        }))
    }

    /// The response for this request, whatever happens on the way to it: the request is validated,
    /// then the handler's call runs guarded by its deadline.
    async fn decide(&self, env: &Envelope, deadline: Instant, invocation: &Invocation<'_>) -> Response {
        let answers = Answers { env, log_stream: invocation.log_stream, function_arn: invocation.function_arn };
        match self.validate(&answers, deadline) {
            Validated::Call(planned) => self.run(&answers, planned).await,
            Validated::Answered(response) => response,
        }
    }

    /// The handler call this request asks for, or the answer when none is needed or possible: fields
    /// missing, a physical id missing or out of bounds, an unknown RequestType, the Delete of a failed
    /// Create, properties that do not parse (except on a Delete, which cleans up by its id).
    fn validate(&self, answers: &Answers<'_>, deadline: Instant) -> Validated<H::Properties> {
        let env = answers.env;
        let current_id = env.physical_resource_id.clone();
        if !env.missing.is_empty() {
            return Validated::Answered(answers.fail(format!("the request lacks {}", env.missing.join(", "))));
        }
        let needs_id = matches!(env.request_type, RequestType::Update | RequestType::Delete);
        if needs_id && current_id.is_none() {
            return Validated::Answered(
                answers.fail(format!("{} requests must carry a PhysicalResourceId", env.request_type)),
            );
        }
        if let RequestType::Unknown(t) = &env.request_type {
            return Validated::Answered(
                answers.fail(format!("RequestType {t:?} is not one of Create, Update, Delete")),
            );
        }
        if env.request_type == RequestType::Delete {
            let id = current_id.clone().unwrap_or_default();
            if is_failed_create_marker(&id) {
                let reason = "nothing to delete: the Create of this resource had failed".to_owned();
                return Validated::Answered(answers.respond(Status::Success, reason, id, Outcome::default()));
            }
        }
        let parsed: Result<H::Properties, _> = props::parse(&env.properties);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let budget = handler_budget(remaining);
        let started = Instant::now();
        let call = match (env.request_type.clone(), parsed) {
            // A Delete must not wedge the stack: properties a later version no longer accepts still
            // name a resource to clean up, by its physical id.
            (RequestType::Delete, Err(e)) => Call::DeleteUnparsed {
                id: current_id.clone().unwrap_or_default(),
                properties: env.properties.clone(),
                why: e.to_string(),
            },
            (_, Err(e)) => return Validated::Answered(answers.fail(e.to_string())),
            (RequestType::Create, Ok(props)) => {
                let info = RequestInfo::new(env, answers.function_arn, started + budget);
                Call::Create { id: self.handler.physical_id(&info, &props), props, replacing: false }
            }
            (RequestType::Update, Ok(props)) => {
                let info = RequestInfo::new(env, answers.function_arn, started + budget);
                let new_id = self.handler.physical_id(&info, &props);
                if Some(&new_id) != current_id.as_ref() {
                    tracing::info!(new_physical_id = %new_id, "update replaces the resource");
                    Call::Create { id: new_id, props, replacing: true }
                } else {
                    // The old properties only inform the handler; if they no longer parse it gets None.
                    let old = env.old_properties.as_ref().and_then(|v| props::parse(v).ok());
                    Call::Update { id: new_id, props, old }
                }
            }
            (_, Ok(props)) => Call::Delete { id: current_id.clone().unwrap_or_default(), props },
        };
        let id = call.physical_id();
        if id.is_empty() || id.len() > super::MAX_PHYSICAL_ID_BYTES {
            return Validated::Answered(answers.fail(format!(
                "internal error: the function chose a physical id of {} bytes (1 to {} allowed)",
                id.len(),
                super::MAX_PHYSICAL_ID_BYTES
            )));
        }
        Validated::Call(Planned { call, started, budget })
    }

    /// Runs the handler's call guarded by its deadline ([`guarded`]) and answers with how it ended.
    async fn run(&self, answers: &Answers<'_>, planned: Planned<H::Properties>) -> Response {
        let Planned { call, started, budget } = planned;
        let (env, handler) = (answers.env, Arc::clone(&self.handler));
        match call {
            Call::Create { id, props, replacing } => self.create(answers, id, props, replacing, started, budget).await,
            Call::Update { id, props, old } => {
                let info = RequestInfo::new(env, answers.function_arn, started + budget);
                let work = {
                    let id = id.clone();
                    async move { handler.update(&info, &id, &props, old.as_ref()).await }
                };
                answers.ended(guarded(started + budget, work).await, id, budget, None)
            }
            Call::Delete { id, props } => {
                let info = RequestInfo::new(env, answers.function_arn, started + budget);
                let work = {
                    let id = id.clone();
                    async move { handler.delete(&info, &id, &props).await.map(|()| Outcome::default()) }
                };
                answers.ended(guarded(started + budget, work).await, id, budget, None)
            }
            Call::DeleteUnparsed { id, properties, why } => {
                tracing::warn!(error = %why, "Delete with properties that no longer parse; cleaning up by the physical id");
                let info = RequestInfo::new(env, answers.function_arn, started + budget);
                let work = {
                    let id = id.clone();
                    async move { handler.delete_unparsed(&info, &id, &properties).await.map(|()| Outcome::default()) }
                };
                let note = Some(format!("Deleted by the physical id alone ({why})"));
                answers.ended(guarded(started + budget, work).await, id, budget, note)
            }
        }
    }

    /// A Create (or a replacement's): the handler's create guarded by its deadline less the time kept to
    /// undo it ([`cleanup_budget`]); a failed one is undone at once by the handler's Delete, also guarded,
    /// unless the resource opts out ([`CustomResource::UNDOES_A_FAILED_CREATE`]).
    async fn create(
        &self,
        answers: &Answers<'_>,
        id: String,
        props: H::Properties,
        replacing: bool,
        started: Instant,
        budget: Duration,
    ) -> Response {
        let (env, handler) = (answers.env, &self.handler);
        let cleanup = cleanup_budget(budget);
        let create_deadline = started + budget - cleanup;
        let info = RequestInfo::new(env, answers.function_arn, create_deadline);
        let props = Arc::new(props);
        let work = {
            let (handler, id, props) = (Arc::clone(handler), id.clone(), Arc::clone(&props));
            async move { handler.create(&info, &id, &props).await }
        };
        let failure = match guarded(create_deadline, work).await {
            Ended::Done(outcome) => return answers.success(id, outcome, None),
            Ended::Failed(why) => why,
            Ended::TimedOut => answers.timed_out(budget - cleanup),
        };
        let physical_id = if replacing { answers.fail_id() } else { id.clone() };
        if !H::UNDOES_A_FAILED_CREATE {
            tracing::warn!(error = %redact::redact(&failure), "create failed");
            return answers.respond(Status::Failed, failure, physical_id, Outcome::default());
        }
        tracing::warn!(error = %redact::redact(&failure), "create failed; undoing what it changed");
        // Never leave a change behind a FAILED answer: undo what this Create did (its Delete removes
        // only what carries this physical id). A first Create is also answered with its deterministic
        // id, so that CloudFormation's Delete finishes the job if this cannot; a replacement keeps the
        // current id, which CloudFormation rolls back to.
        let info = RequestInfo::new(env, answers.function_arn, started + budget);
        let undo = {
            let (handler, id, props) = (Arc::clone(handler), id.clone(), Arc::clone(&props));
            async move { handler.delete(&info, &id, &props).await }
        };
        let undone = match guarded(started + budget, undo).await {
            Ended::Done(()) => "nothing of it was left in place".to_owned(),
            Ended::Failed(why) => format!("undoing it failed too ({why}): the Delete of {id} retries it"),
            Ended::TimedOut => format!("undoing it ran out of time: the Delete of {id} retries it"),
        };
        let reason = format!("{failure} ({undone})");
        answers.respond(Status::Failed, reason, physical_id, Outcome::default())
    }
}

/// What validating a request found: a call for the handler, or the answer already.
enum Validated<P> {
    Call(Planned<P>),
    Answered(Response),
}

/// A validated request: the handler call to make, when the handler's time began and how long it has
/// (the rest of the invocation is kept to answer).
struct Planned<P> {
    call: Call<P>,
    started: Instant,
    budget: Duration,
}

/// The responses to one request, as CloudFormation expects them.
struct Answers<'a> {
    env: &'a Envelope,
    log_stream: &'a str,
    function_arn: &'a str,
}

impl Answers<'_> {
    fn respond(&self, status: Status, reason: String, physical_id: String, outcome: Outcome) -> Response {
        Response {
            status,
            reason,
            physical_resource_id: physical_id,
            stack_id: self.env.stack_id.clone(),
            request_id: self.env.request_id.clone(),
            logical_resource_id: self.env.logical_resource_id.clone(),
            no_echo: outcome.no_echo,
            data: outcome.data,
        }
    }

    /// The id a failure is answered with: the current one, or (a first Create) the failed-Create marker.
    fn fail_id(&self) -> String {
        self.env.physical_resource_id.clone().unwrap_or_else(|| failed_create_marker(self.env))
    }

    fn fail(&self, reason: String) -> Response {
        self.respond(Status::Failed, reason, self.fail_id(), Outcome::default())
    }

    fn success(&self, physical_id: String, outcome: Outcome, note: Option<String>) -> Response {
        let mut reason = if self.log_stream.is_empty() {
            "OK".to_owned()
        } else {
            format!("See the details in CloudWatch Log Stream: {}", self.log_stream)
        };
        if let Some(note) = note {
            reason = format!("{note}. {reason}");
        }
        self.respond(Status::Success, reason, physical_id, outcome)
    }

    /// The Reason of a handler that did not finish within `spent`.
    fn timed_out(&self, spent: Duration) -> String {
        tracing::error!(budget_ms = spent.as_millis() as u64, "handler timed out; answering FAILED");
        format!(
            "timed out: the {} did not finish within {:.1} s (the Lambda timeout less a margin to answer); \
             raise the function's Timeout or look for an unreachable endpoint in its log",
            self.env.request_type,
            spent.as_secs_f64()
        )
    }

    /// The answer for a guarded call that ended as `ended`, whose success keeps `physical_id`.
    fn ended(&self, ended: Ended<Outcome>, physical_id: String, budget: Duration, note: Option<String>) -> Response {
        match ended {
            Ended::Done(outcome) => self.success(physical_id, outcome, note),
            Ended::Failed(why) => {
                tracing::warn!(error = %redact::redact(&why), "handler failed");
                self.fail(why)
            }
            Ended::TimedOut => self.fail(self.timed_out(budget)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::sync::Mutex;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct FakeProps {
        key: String,
        #[serde(default)]
        mode: String,
        #[serde(default, deserialize_with = "crate::props::optional_number")]
        count: Option<u32>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the fake was told to fail")]
    struct FakeError;

    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<String>>,
    }

    impl Fake {
        async fn act(&self, what: String, props: &FakeProps) -> Result<Outcome, FakeError> {
            self.calls.lock().unwrap().push(what);
            match props.mode.as_str() {
                "err" => Err(FakeError),
                "panic" => panic!("the fake panicked on purpose"),
                "hang" => {
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                _ => Ok(Outcome::default().with("Count", props.count.unwrap_or(0))),
            }
        }
    }

    impl CustomResource for Arc<Fake> {
        type Properties = FakeProps;
        type Error = FakeError;
        fn physical_id(&self, _: &RequestInfo, props: &FakeProps) -> String {
            format!("fake-{}", props.key)
        }
        async fn create(&self, _: &RequestInfo, id: &str, props: &FakeProps) -> Result<Outcome, FakeError> {
            if props.mode == "fail-create" {
                self.calls.lock().unwrap().push(format!("create {id}"));
                return Err(FakeError);
            }
            self.act(format!("create {id}"), props).await
        }
        async fn update(
            &self,
            _: &RequestInfo,
            id: &str,
            props: &FakeProps,
            old: Option<&FakeProps>,
        ) -> Result<Outcome, FakeError> {
            let old = old.map(|o| o.key.as_str()).unwrap_or("?");
            self.act(format!("update {id} from {old}"), props).await
        }
        async fn delete(&self, _: &RequestInfo, id: &str, props: &FakeProps) -> Result<(), FakeError> {
            self.act(format!("delete {id}"), props).await.map(|_| ())
        }
        async fn delete_unparsed(&self, _: &RequestInfo, id: &str, properties: &Value) -> Result<(), FakeError> {
            self.calls.lock().unwrap().push(format!("delete-unparsed {id} {properties}"));
            Ok(())
        }
    }

    /// The tests' ResponseURL host, as a local setup lists it.
    fn local() -> ResponseUrlPolicy {
        ResponseUrlPolicy::with_hosts(["127.0.0.1"])
    }

    fn event(request_type: &str, props: Value) -> Value {
        json!({
            "RequestType": request_type,
            "ResponseURL": "http://127.0.0.1:9/response?X-Amz-Signature=abcdef0123456789",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
            "RequestId": "req-1", "LogicalResourceId": "Res", "ResourceType": "Custom::Fake",
            "ResourceProperties": props,
        })
    }

    const STREAM: Invocation<'static> = Invocation { log_stream: "stream-1", function_arn: "" };

    async fn decide(fake: &Arc<Fake>, event: Value, budget: Duration) -> Response {
        let runtime = Runtime::new(Arc::clone(fake));
        let env = Envelope::from_value_with(&event, &local()).unwrap();
        // handler_budget keeps a reserve; give enough that the handler gets `budget`.
        let remaining = budget + (budget / 3).max(Duration::from_millis(750));
        runtime.decide(&env, Instant::now() + remaining, &STREAM).await
    }

    fn calls(fake: &Arc<Fake>) -> Vec<String> {
        fake.calls.lock().unwrap().clone()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn create_success_uses_the_handlers_id_and_data() {
        let fake = Arc::new(Fake::default());
        let r = decide(&fake, event("Create", json!({"Key": "a", "Count": "3"})), SECOND).await;
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.physical_resource_id, "fake-a");
        assert_eq!(r.data["Count"], "3");
        assert!(r.reason.contains("stream-1"));
        assert_eq!(calls(&fake), ["create fake-a"]);
    }

    /// A resource whose Delete removes nothing on purpose (a schema) opts out of the undo.
    struct Keeps(Arc<Fake>);

    impl CustomResource for Keeps {
        type Properties = FakeProps;
        type Error = FakeError;
        const UNDOES_A_FAILED_CREATE: bool = false;
        fn physical_id(&self, request: &RequestInfo, props: &FakeProps) -> String {
            self.0.physical_id(request, props)
        }
        async fn create(&self, request: &RequestInfo, id: &str, props: &FakeProps) -> Result<Outcome, FakeError> {
            self.0.create(request, id, props).await
        }
        async fn delete(&self, request: &RequestInfo, id: &str, props: &FakeProps) -> Result<(), FakeError> {
            self.0.delete(request, id, props).await
        }
    }

    #[tokio::test]
    async fn a_resource_that_keeps_its_work_is_not_undone_nor_said_to_be() {
        let fake = Arc::new(Fake::default());
        let runtime = Runtime::new(Keeps(Arc::clone(&fake)));
        let event = event("Create", json!({"Key": "a", "Mode": "fail-create"}));
        let env = Envelope::from_value_with(&event, &local()).unwrap();
        let r = runtime.decide(&env, Instant::now() + 2 * SECOND, &STREAM).await;
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.reason, "the fake was told to fail");
        assert_eq!(r.physical_resource_id, "fake-a");
        assert_eq!(calls(&fake), ["create fake-a"]);
    }

    #[tokio::test]
    async fn a_failed_create_is_undone_at_once_and_answered_with_its_own_id_for_the_delete_to_come() {
        let fake = Arc::new(Fake::default());
        let r = decide(&fake, event("Create", json!({"Key": "a", "Mode": "fail-create"})), SECOND).await;
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.reason, "the fake was told to fail (nothing of it was left in place)");
        assert_eq!(r.physical_resource_id, "fake-a", "CloudFormation's Delete must reach what the Create did");
        assert_eq!(calls(&fake), ["create fake-a", "delete fake-a"]);

        let mut delete = event("Delete", json!({"Key": "a"}));
        delete["PhysicalResourceId"] = json!(r.physical_resource_id);
        let d = decide(&fake, delete, SECOND).await;
        assert_eq!(d.status, Status::Success);
        assert_eq!(calls(&fake), ["create fake-a", "delete fake-a", "delete fake-a"]);
    }

    #[tokio::test]
    async fn an_undo_that_fails_too_says_the_delete_will_retry_it() {
        let fake = Arc::new(Fake::default());
        let r = decide(&fake, event("Create", json!({"Key": "a", "Mode": "err"})), SECOND).await;
        assert_eq!(r.status, Status::Failed);
        assert!(
            r.reason.contains("undoing it failed too (the fake was told to fail): the Delete of fake-a retries it"),
            "{}",
            r.reason
        );
        assert_eq!(r.physical_resource_id, "fake-a");
    }

    #[tokio::test]
    async fn a_failed_replacement_is_undone_and_keeps_the_current_id() {
        let fake = Arc::new(Fake::default());
        let mut e = event("Update", json!({"Key": "b", "Mode": "fail-create"}));
        e["PhysicalResourceId"] = json!("fake-a");
        let r = decide(&fake, e, SECOND).await;
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.physical_resource_id, "fake-a");
        assert_eq!(calls(&fake), ["create fake-b", "delete fake-b"], "the new resource's work is undone, not the old");
    }

    #[tokio::test]
    async fn a_create_with_unparseable_properties_answers_the_marker_and_its_delete_touches_nothing() {
        let fake = Arc::new(Fake::default());
        let r = decide(&fake, event("Create", json!({"Key": "a", "Count": "many"})), SECOND).await;
        assert_eq!(r.status, Status::Failed);
        assert!(is_failed_create_marker(&r.physical_resource_id), "{}", r.physical_resource_id);

        let mut delete = event("Delete", json!({"Key": "a", "Count": "many"}));
        delete["PhysicalResourceId"] = json!(r.physical_resource_id);
        let d = decide(&fake, delete, SECOND).await;
        assert_eq!(d.status, Status::Success);
        assert_eq!(d.physical_resource_id, r.physical_resource_id);
        assert!(calls(&fake).is_empty(), "the marker's Delete calls no handler");
    }

    #[tokio::test]
    async fn a_delete_whose_properties_no_longer_parse_cleans_up_by_its_id_and_succeeds() {
        let fake = Arc::new(Fake::default());
        let mut e = event("Delete", json!({"Key": "a", "Count": "many"}));
        e["PhysicalResourceId"] = json!("fake-a");
        let r = decide(&fake, e, SECOND).await;
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.physical_resource_id, "fake-a");
        assert!(r.reason.starts_with("Deleted by the physical id alone (invalid property Count:"), "{}", r.reason);
        // The handler gets the properties as they came (key order depends on serde_json's features).
        let calls = calls(&fake);
        let (call, properties) =
            calls[0].split_once(' ').and_then(|(c, rest)| Some((c, rest.split_once(' ')?))).unwrap();
        assert_eq!((call, properties.0), ("delete-unparsed", "fake-a"));
        assert_eq!(serde_json::from_str::<Value>(properties.1).unwrap(), json!({"Key": "a", "Count": "many"}));
        assert_eq!(calls.len(), 1);
    }

    #[tokio::test]
    async fn the_handler_runs_within_its_deadline_as_the_retry_budget() {
        // The deadline the handler's AWS calls retry within is the handler's own.
        let deadline = Instant::now() + Duration::from_secs(7);
        let inside = guarded(deadline, async { Ok::<_, FakeError>(crate::aws::deadline()) }).await;
        match inside {
            Ended::Done(d) => assert_eq!(d, Some(deadline)),
            _ => panic!("the guarded work did not finish"),
        }
        assert_eq!(crate::aws::deadline(), None, "the scope ends with the handler");
    }

    #[tokio::test]
    async fn invalid_properties_fail_before_the_handler_naming_the_property() {
        let fake = Arc::new(Fake::default());
        let r = decide(&fake, event("Create", json!({"Key": "a", "Count": "many"})), SECOND).await;
        assert_eq!(r.status, Status::Failed);
        assert!(r.reason.starts_with("invalid property Count:"), "{}", r.reason);
        let r = decide(&fake, event("Create", json!({"Count": "1"})), SECOND).await;
        assert_eq!(r.reason, "invalid property Key: is required but missing");
        let r = decide(&fake, event("Create", json!("Key=a")), SECOND).await;
        assert!(r.reason.contains("expected an object of properties"), "{}", r.reason);
        assert!(calls(&fake).is_empty());
    }

    #[tokio::test]
    async fn update_with_the_same_id_reconciles_with_the_old_properties() {
        let fake = Arc::new(Fake::default());
        let mut e = event("Update", json!({"Key": "a", "Count": 2}));
        e["PhysicalResourceId"] = json!("fake-a");
        e["OldResourceProperties"] = json!({"Key": "a", "Count": 1});
        let r = decide(&fake, e, SECOND).await;
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.physical_resource_id, "fake-a");
        assert_eq!(calls(&fake), ["update fake-a from a"]);
    }

    #[tokio::test]
    async fn update_to_a_new_id_is_a_replacement_created_under_the_new_id() {
        let fake = Arc::new(Fake::default());
        let mut e = event("Update", json!({"Key": "b"}));
        e["PhysicalResourceId"] = json!("fake-a");
        e["OldResourceProperties"] = json!({"Key": "a"});
        let r = decide(&fake, e, SECOND).await;
        assert_eq!(r.physical_resource_id, "fake-b");
        assert_eq!(calls(&fake), ["create fake-b"]);
    }

    #[tokio::test]
    async fn a_failed_update_keeps_the_current_id() {
        let fake = Arc::new(Fake::default());
        let mut e = event("Update", json!({"Key": "b", "Mode": "err"}));
        e["PhysicalResourceId"] = json!("fake-a");
        let r = decide(&fake, e, SECOND).await;
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.physical_resource_id, "fake-a");
    }

    #[tokio::test]
    async fn a_panic_is_answered_failed() {
        let fake = Arc::new(Fake::default());
        let r = decide(&fake, event("Create", json!({"Key": "a", "Mode": "panic"})), SECOND).await;
        assert_eq!(r.status, Status::Failed);
        assert!(r.reason.contains("panicked"), "{}", r.reason);
        assert!(r.reason.contains("on purpose"), "{}", r.reason);
    }

    #[tokio::test]
    async fn a_hanging_handler_is_answered_failed_when_its_budget_runs_out() {
        let fake = Arc::new(Fake::default());
        let started = Instant::now();
        let r = decide(&fake, event("Create", json!({"Key": "a", "Mode": "hang"})), Duration::from_millis(300)).await;
        assert_eq!(r.status, Status::Failed);
        assert!(r.reason.starts_with("timed out"), "{}", r.reason);
        assert!(r.reason.ends_with("(undoing it ran out of time: the Delete of fake-a retries it)"), "{}", r.reason);
        assert_eq!(calls(&fake), ["create fake-a", "delete fake-a"], "the undo was tried within the budget");
        assert!(started.elapsed() < Duration::from_secs(5), "the guard fired rather than the test timing out");
    }

    #[tokio::test]
    async fn unknown_request_types_and_missing_fields_are_answered_failed() {
        let fake = Arc::new(Fake::default());
        let r = decide(&fake, event("Upsert", json!({"Key": "a"})), SECOND).await;
        assert_eq!(r.status, Status::Failed);
        assert!(r.reason.contains("\"Upsert\" is not one of Create, Update, Delete"), "{}", r.reason);
        let mut e = event("Create", json!({"Key": "a"}));
        e.as_object_mut().unwrap().remove("StackId");
        let r = decide(&fake, e, SECOND).await;
        assert_eq!(r.reason, "the request lacks StackId");
        let r = decide(&fake, event("Delete", json!({"Key": "a"})), SECOND).await;
        assert!(r.reason.contains("must carry a PhysicalResourceId"), "{}", r.reason);
        assert!(calls(&fake).is_empty());
    }

    #[tokio::test]
    async fn delete_calls_the_handler_with_the_current_id() {
        let fake = Arc::new(Fake::default());
        let mut e = event("Delete", json!({"Key": "b"}));
        e["PhysicalResourceId"] = json!("fake-a");
        let r = decide(&fake, e, SECOND).await;
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.physical_resource_id, "fake-a");
        assert_eq!(calls(&fake), ["delete fake-a"]);
    }

    #[test]
    fn the_handler_budget_keeps_a_reserve_to_answer() {
        assert_eq!(handler_budget(Duration::from_secs(4)), Duration::from_secs(3));
        assert_eq!(handler_budget(Duration::from_secs(3)), Duration::from_millis(2250));
        assert_eq!(handler_budget(Duration::from_secs(900)), Duration::from_secs(890));
        assert_eq!(handler_budget(Duration::from_millis(500)), Duration::ZERO);
    }
}
