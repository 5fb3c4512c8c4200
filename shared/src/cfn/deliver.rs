//! The PUT to the presigned ResponseURL: empty Content-Type, success only on 2xx, bounded retries with
//! backoff that stop before the Lambda deadline.
//!
//! It goes through the AWS SDK's own HTTP connector (hyper with rustls on aws-lc, the platform's roots
//! loaded once per process and shared with every SDK client), not a second HTTP and TLS stack: a cold
//! start loads one set of roots, not two.

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use tokio::time::Instant;

use super::event::ResponseUrl;

/// How many PUTs at most.
pub const MAX_ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const MAX_ATTEMPT_TIME: Duration = Duration::from_secs(10);
/// Left before the deadline for returning the invocation result itself.
pub const RETURN_MARGIN: Duration = Duration::from_millis(150);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub attempts: u32,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the response was not delivered after {attempts} attempt(s): {last_error}")]
pub struct NotDelivered {
    pub attempts: u32,
    pub last_error: String,
}

/// The HTTP connector for responses, built once per process: the SDK's default (rustls, the platform's
/// roots), with a bounded connect.
pub fn http_client() -> SharedHttpConnector {
    let settings = HttpConnectorSettings::builder().connect_timeout(Duration::from_secs(5)).build();
    aws_smithy_http_client::default_connector(&settings, aws_smithy_async::rt::sleep::default_async_sleep())
        .expect("the SDK's default HTTPS connector (aws-smithy-http-client's rustls-aws-lc feature)")
}

/// PUTs `body` to `url`, retrying connection failures, timeouts, 5xx, 408 and 429, until delivered,
/// out of attempts, or too close to `deadline`.
pub async fn deliver(
    client: &SharedHttpConnector,
    url: &ResponseUrl,
    body: String,
    deadline: Instant,
) -> Result<Delivered, NotDelivered> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    let mut last_error = String::from("no time was left before the deadline");
    while attempts < MAX_ATTEMPTS {
        let Some(left) = deadline.checked_duration_since(Instant::now() + RETURN_MARGIN) else {
            break;
        };
        if left < Duration::from_millis(50) {
            break;
        }
        attempts += 1;
        let sent = tokio::time::timeout(left.min(MAX_ATTEMPT_TIME), client.call(put(url, &body))).await;
        let retryable = match sent {
            Ok(Ok(resp)) if resp.status().is_success() => {
                return Ok(Delivered { attempts, status: resp.status().as_u16() });
            }
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                let detail = s3_error_code(resp.into_body()).await;
                last_error = format!("HTTP {status}{detail}");
                (500..600).contains(&status) || status == 408 || status == 429
            }
            // The connector's errors may name the URL; keep only the kind of failure.
            Err(_) => {
                last_error = "the PUT timed out".into();
                true
            }
            Ok(Err(e)) => {
                last_error = if e.is_timeout() {
                    "the PUT timed out".into()
                } else if e.is_io() {
                    "could not connect to the response endpoint".into()
                } else {
                    "the PUT failed in transit".into()
                };
                true
            }
        };
        tracing::warn!(attempt = attempts, error = %last_error, "response PUT failed");
        if !retryable {
            break;
        }
        let now = Instant::now();
        if now + backoff + RETURN_MARGIN >= deadline {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    Err(NotDelivered { attempts, last_error })
}

/// The PUT itself. The URL is signed without a Content-Type; any other value fails its signature.
fn put(url: &ResponseUrl, body: &str) -> HttpRequest {
    let request = http::Request::put(url.as_url().as_str())
        .header(http::header::CONTENT_TYPE, "")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(SdkBody::from(body.to_owned()))
        .expect("a parsed URL and fixed headers make a valid request");
    HttpRequest::try_from(request).expect("an http 1.x request converts")
}

/// `: <Code>` from an S3 XML error body (SignatureDoesNotMatch, AccessDenied, …), or nothing.
async fn s3_error_code(body: SdkBody) -> String {
    let bytes = ByteStream::new(body).collect().await.map(|b| b.into_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    text.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| format!(": {}", code.chars().take(64).collect::<String>()))
        .unwrap_or_default()
}
