//! What Lambda's event source mapping hands a function for a message it received from an SQS queue:
//! the tests and the bench drive the scheduler's workers with it (moto can't run a mapping).

use serde_json::{json, Map, Value};

/// One record of the SQS event, for `message` received (with its system attributes) from the queue at
/// `queue_url` (`…/<account>/<name>`) in `region`.
pub fn record(message: &aws_sdk_sqs::types::Message, queue_url: &str, region: &str) -> Value {
    let attributes: Map<String, Value> = message
        .attributes()
        .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone()))).collect())
        .unwrap_or_default();
    let mut path = queue_url.trim_end_matches('/').rsplit('/');
    let (name, account) = (path.next().unwrap_or_default(), path.next().unwrap_or_default());
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:{region}:{account}:{name}"),
        "awsRegion": region,
    })
}
