//! The generic SQS batch loop, kept apart from the business function for one message.
//!
//! Each record is handled on its own; only the records whose handler failed are reported in
//! `batchItemFailures`, so SQS deletes the rest. A record without a message id cannot be reported,
//! so its failure fails the whole invocation instead (the whole batch is retried): never an empty
//! `itemIdentifier`.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;

/// Runs `handle` on every record, at most `concurrency` at a time.
pub async fn process<F, Fut, E>(
    event: SqsEvent,
    concurrency: usize,
    handle: F,
) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let outcomes: Vec<(Option<String>, Result<(), E>)> = futures::stream::iter(event.records)
        .map(|record| {
            let id = record.message_id.clone().filter(|id| !id.is_empty());
            let fut = handle(record);
            async move { (id, fut.await) }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;

    let mut response = SqsBatchResponse::default();
    for (id, outcome) in outcomes {
        if let Err(e) = outcome {
            match id {
                Some(id) => {
                    tracing::warn!(message_id = %id, error = %e, "record failed; it stays on the queue");
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
                None => return Err(format!("a record without messageId failed: {e}").into()),
            }
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ids: &[Option<&str>]) -> SqsEvent {
        let mut event = SqsEvent::default();
        for id in ids {
            let mut m = SqsMessage::default();
            m.message_id = id.map(str::to_owned);
            m.body = Some(id.unwrap_or("none").to_string());
            event.records.push(m);
        }
        event
    }

    #[tokio::test]
    async fn only_failed_records_are_reported() {
        let out = process(event(&[Some("a"), Some("b"), Some("c")]), 2, |m| async move {
            if m.body.as_deref() == Some("b") {
                Err("bad")
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
        let ids: Vec<_> = out
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, vec!["b"]);
    }

    #[tokio::test]
    async fn a_failure_without_message_id_fails_the_invocation() {
        let out = process(event(&[Some("a"), None]), 1, |m| async move {
            if m.message_id.is_none() { Err("bad") } else { Ok(()) }
        })
        .await;
        assert!(out.is_err());
    }
}
