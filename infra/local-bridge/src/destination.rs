//! Destinations of asynchronous invocations (`EventInvokeConfig.DestinationConfig`): the
//! invocation record Lambda sends when an event succeeded (`OnSuccess`) or failed every attempt
//! (`OnFailure`), in the shape AWS documents ("Capturing records of Lambda asynchronous
//! invocations"):
//!
//! ```json
//! {"version": "1.0", "timestamp": "2019-11-14T18:16:05.568Z",
//!  "requestContext": {"requestId": "...", "functionArn": "arn:...:function:NAME:$LATEST",
//!                     "condition": "RetriesExhausted", "approximateInvokeCount": 3},
//!  "requestPayload": {...the event...},
//!  "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
//!  "responsePayload": {"errorType": "...", "errorMessage": "..."}}
//! ```

use aws_sdk_sqs::Client;
use serde_json::{Value, json};
use time::macros::format_description;

use crate::invoke::InvokeError;
use crate::provision::Destination;

/// How an asynchronous invocation ended.
pub enum Outcome<'a> {
    Success(&'a Value),
    /// Every attempt failed; the last error.
    RetriesExhausted(&'a InvokeError),
}

/// The invocation record for `event` after `attempts` attempts.
pub fn record(function_arn: &str, request_id: &str, event: &Value, attempts: u32, outcome: Outcome<'_>) -> Value {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default();
    let (condition, response_context, response_payload) = match outcome {
        Outcome::Success(response) => (
            "Success",
            json!({"statusCode": 200, "executedVersion": "$LATEST"}),
            response.clone(),
        ),
        Outcome::RetriesExhausted(e) => (
            "RetriesExhausted",
            json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}),
            e.payload(request_id),
        ),
    };
    json!({
        "version": "1.0",
        "timestamp": timestamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!("{function_arn}:$LATEST"),
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": response_context,
        "responsePayload": response_payload,
    })
}

/// Sends `record` to the destination queue.
pub async fn send(sqs: &Client, destination: &Destination, record: &Value) -> anyhow::Result<()> {
    sqs.send_message()
        .queue_url(&destination.queue_url)
        .message_body(record.to_string())
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "sending an invocation record to {}: {}",
                destination.queue_arn,
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_record_has_lambdas_shape() {
        let event = json!({"Records": [{"s3": {}}]});
        let error = InvokeError::Function {
            error_type: "Panic".into(),
            message: "boom".into(),
        };
        let r = record(
            "arn:aws:lambda:us-east-1:000000000000:function:ingest",
            "req-1",
            &event,
            3,
            Outcome::RetriesExhausted(&error),
        );
        assert_eq!(r["version"], "1.0");
        assert_eq!(
            r["requestContext"],
            json!({"requestId": "req-1", "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:ingest:$LATEST",
                   "condition": "RetriesExhausted", "approximateInvokeCount": 3})
        );
        assert_eq!(r["requestPayload"], event);
        assert_eq!(
            r["responseContext"],
            json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
        );
        assert_eq!(
            r["responsePayload"],
            json!({"errorType": "Panic", "errorMessage": "boom"})
        );
        let ts = r["timestamp"].as_str().unwrap();
        assert_eq!((ts.len(), &ts[10..11], &ts[19..20]), (24, "T", "."), "{ts}");
    }
}
