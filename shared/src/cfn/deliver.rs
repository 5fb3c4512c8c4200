//! The PUT to the presigned ResponseURL: empty Content-Type, success only on 2xx, bounded retries with
//! backoff that stop before the Lambda deadline.

use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
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

/// The HTTP client for responses: rustls, no proxy surprises, built once per process.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().expect("the TLS backend initialises")
}

/// PUTs `body` to `url`, retrying connection failures, timeouts, 5xx, 408 and 429, until delivered,
/// out of attempts, or too close to `deadline`.
pub async fn deliver(
    client: &reqwest::Client,
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
        let sent = client
            .put(url.as_url().clone())
            // The URL is signed without a Content-Type; any other value fails its signature.
            .header(CONTENT_TYPE, HeaderValue::from_static(""))
            .body(body.clone())
            .timeout(left.min(MAX_ATTEMPT_TIME))
            .send()
            .await;
        let retryable = match sent {
            Ok(resp) if resp.status().is_success() => {
                return Ok(Delivered { attempts, status: resp.status().as_u16() });
            }
            Ok(resp) => {
                let status = resp.status();
                let detail = s3_error_code(resp).await;
                last_error = format!("HTTP {status}{detail}");
                status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429
            }
            Err(e) => {
                // reqwest's Display includes the URL; keep only the kind of failure.
                last_error = if e.is_timeout() {
                    "the PUT timed out".into()
                } else if e.is_connect() {
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

/// `: <Code>` from an S3 XML error body (SignatureDoesNotMatch, AccessDenied, …), or nothing.
async fn s3_error_code(resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    text.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| format!(": {}", code.chars().take(64).collect::<String>()))
        .unwrap_or_default()
}
