//! Ingested log entries behind [`EntryStore`]: one per line, keyed by job and line number, so that
//! re-ingesting a line overwrites it instead of adding a duplicate.
//!
//! [`DynamoEntryStore`] is the real one: one item per line, GSI `by_level` (pk `<job_id>#<level>`,
//! sk line) serves the level filter. Writes go in `BatchWriteItem` calls of at most 25 items;
//! `UnprocessedItems` are retried with exponential backoff, and a batch that stays unprocessed
//! fails the write. `store::memory::MemoryEntryStore` (feature `testing`) keeps them in a map.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
pub use aws_sdk_dynamodb::types::WriteRequest;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::job::JobId;
use crate::logs::{Level, LogEntry};
use crate::retry::Backoff;

/// DynamoDB's limit for one `BatchWriteItem`.
pub const BATCH: usize = 25;
/// Tries of one batch (first call + retries of what stays unprocessed).
const UNPROCESSED: Backoff = Backoff::new(8, Duration::from_millis(25), Duration::from_secs(2));

type Item = HashMap<String, AttributeValue>;

/// One page of entries, in line order.
#[derive(Debug, Clone, Serialize)]
pub struct EntryPage {
    pub entries: Vec<LogEntry>,
    pub next: Option<String>,
}

/// Where ingested entries live.
#[async_trait]
pub trait EntryStore: Send + Sync {
    /// Stores up to [`BATCH`] entries of `job`; an entry of a line stored before replaces it.
    async fn write_batch(&self, job: JobId, entries: Vec<LogEntry>) -> Result<()>;

    /// `job`'s entries in line order (of one `level`, if given), at most `limit` (1-1000) after
    /// `cursor` (the `next` of the page before).
    async fn list(&self, job: JobId, level: Option<Level>, limit: usize, cursor: Option<&str>) -> Result<EntryPage>;
}

/// The line a page's cursor stands for (entries after it come next).
pub(crate) fn parse_cursor(cursor: Option<&str>) -> Result<Option<u64>> {
    cursor
        .map(|c| c.parse().map_err(|_| Error::Invalid("next: not a valid cursor".into())))
        .transpose()
}

/// The DynamoDB [`EntryStore`].
#[derive(Clone, Debug)]
pub struct DynamoEntryStore {
    client: Client,
    table: String,
}

impl DynamoEntryStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoEntryStore {
            client,
            table: table.into(),
        }
    }

    /// Converts entries to items once, so a retry does not re-encode them.
    pub fn items(&self, job: JobId, entries: &[LogEntry]) -> Result<Vec<WriteRequest>> {
        entries
            .iter()
            .map(|e| {
                let mut item: Item =
                    serde_dynamo::to_item(e).map_err(|err| Error::Internal(format!("cannot encode entry: {err}")))?;
                item.insert("job_id".into(), AttributeValue::S(job.to_string()));
                item.insert(
                    "job_level".into(),
                    AttributeValue::S(format!("{job}#{}", e.level.as_str())),
                );
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| Error::Internal(e.to_string()))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect()
    }

    /// Writes up to 25 prepared items, retrying `UnprocessedItems` with backoff.
    pub async fn write_items(&self, mut requests: Vec<WriteRequest>) -> Result<()> {
        assert!(requests.len() <= BATCH, "BatchWriteItem takes at most {BATCH} items");
        let mut tries = UNPROCESSED.start();
        loop {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, std::mem::take(&mut requests))
                .send()
                .await
                .map_err(|e| Error::aws("BatchWriteItem", e))?;
            requests = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            tracing::debug!(
                unprocessed = requests.len(),
                attempt = tries.number(),
                "BatchWriteItem left items unprocessed"
            );
            if !tries.again().await {
                return Err(Error::Internal(format!(
                    "{} log entries still unprocessed after {} tries",
                    requests.len(),
                    UNPROCESSED.attempts
                )));
            }
        }
    }
}

#[async_trait]
impl EntryStore for DynamoEntryStore {
    /// Encodes the entries once (a retry of unprocessed items does not re-encode them), then
    /// writes them.
    async fn write_batch(&self, job: JobId, entries: Vec<LogEntry>) -> Result<()> {
        let requests = self.items(job, &entries)?;
        drop(entries);
        self.write_items(requests).await
    }

    async fn list(&self, job: JobId, level: Option<Level>, limit: usize, cursor: Option<&str>) -> Result<EntryPage> {
        let after = parse_cursor(cursor)?;
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .limit(limit.clamp(1, 1000) as i32);
        q = match level {
            Some(l) => q
                .index_name("by_level")
                .expression_attribute_names("#p", "job_level")
                .expression_attribute_values(":p", AttributeValue::S(format!("{job}#{}", l.as_str()))),
            None => q
                .expression_attribute_names("#p", "job_id")
                .expression_attribute_values(":p", AttributeValue::S(job.to_string())),
        };
        q = match after {
            Some(line) => q
                .key_condition_expression("#p = :p AND #l > :l")
                .expression_attribute_names("#l", "line")
                .expression_attribute_values(":l", AttributeValue::N(line.to_string())),
            None => q.key_condition_expression("#p = :p"),
        };
        let out = q.send().await.map_err(|e| Error::aws("Query", e))?;
        let entries: Vec<LogEntry> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| serde_dynamo::from_item(i).map_err(|e| Error::Corrupt(format!("log entry: {e}"))))
            .collect::<Result<_>>()?;
        let next = match (&out.last_evaluated_key, entries.last()) {
            (Some(_), Some(last)) => Some(last.line.to_string()),
            _ => None,
        };
        Ok(EntryPage { entries, next })
    }
}
