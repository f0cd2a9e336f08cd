//! The parts of a job split over many SQS messages (image jobs): each part's result is recorded
//! once, and a counter says how many distinct parts of the run are in, so the delivery that
//! brings the last one finishes the job, whatever the duplicates and the order.
//!
//! In the jobs table, beside the job item (`JOB#<id>` / `JOB`):
//!
//! | item        | pk          | sk                          | attributes                       |
//! |-------------|-------------|-----------------------------|----------------------------------|
//! | part result | `JOB#<id>`  | `PART#<run>#<part, 6 digits>` | `data`: the [`PartResult`] as JSON |
//! | part set    | `JOB#<id>`  | `PARTS#<run>`               | `done`: number set of part indexes |
//!
//! Recording is two idempotent writes: the result (a conditional put, so the first delivery's result
//! stays), then `ADD done :part` on the set, which returns the set as it was; the new count is
//! exact under any interleaving, and a redelivery after a crash between the two simply repeats them.
//! `<run>` is the job's `run_key` (when the run started): a retried job counts from zero again.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::table::{PK, SK, job_pk};
use crate::error::{Error, Result};
use crate::images::PartResult;
use crate::job::JobId;

/// What [`PartStore::record`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// `false` when this part was already recorded (a duplicate delivery).
    pub first: bool,
    /// Distinct parts of the run recorded so far, this one included.
    pub done: u32,
}

/// Where the parts of a run are recorded.
#[async_trait]
pub trait PartStore: Send + Sync {
    /// Records `result` for part `result.part` of run `run` (once; a duplicate keeps the first).
    async fn record(&self, job: JobId, run: &str, result: &PartResult) -> Result<Recorded>;

    /// How many distinct parts of run `run` are recorded.
    async fn done(&self, job: JobId, run: &str) -> Result<u32>;

    /// Every recorded part of run `run`, in part order.
    async fn list(&self, job: JobId, run: &str) -> Result<Vec<PartResult>>;
}

/// The DynamoDB part store, in the jobs table.
#[derive(Clone, Debug)]
pub struct DynamoPartStore {
    client: Client,
    table: String,
}

impl DynamoPartStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoPartStore {
            client,
            table: table.into(),
        }
    }
}

fn part_sk(run: &str, part: u32) -> String {
    format!("PART#{run}#{part:06}")
}

fn set_sk(run: &str) -> String {
    format!("PARTS#{run}")
}

fn set_len(item: Option<&HashMap<String, AttributeValue>>) -> Vec<String> {
    item.and_then(|i| i.get("done"))
        .and_then(|v| v.as_ns().ok())
        .cloned()
        .unwrap_or_default()
}

#[async_trait]
impl PartStore for DynamoPartStore {
    async fn record(&self, job: JobId, run: &str, result: &PartResult) -> Result<Recorded> {
        let data = serde_json::to_string(result).map_err(|e| Error::Internal(format!("cannot encode part: {e}")))?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, AttributeValue::S(job_pk(job)))
            .item(SK, AttributeValue::S(part_sk(run, result.part)))
            .item("data", AttributeValue::S(data))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(SdkError::ServiceError(e)) if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {}
            Err(e) => return Err(Error::aws("PutItem", e)),
        }
        let old = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(job_pk(job)))
            .key(SK, AttributeValue::S(set_sk(run)))
            .update_expression("ADD done :part")
            .expression_attribute_values(":part", AttributeValue::Ns(vec![result.part.to_string()]))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| Error::aws("UpdateItem", e))?;
        let before = set_len(old.attributes());
        let first = !before.iter().any(|p| p.parse() == Ok(result.part));
        Ok(Recorded {
            first,
            done: before.len() as u32 + u32::from(first),
        })
    }

    async fn done(&self, job: JobId, run: &str) -> Result<u32> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(job_pk(job)))
            .key(SK, AttributeValue::S(set_sk(run)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("GetItem", e))?;
        Ok(set_len(out.item()).len() as u32)
    }

    async fn list(&self, job: JobId, run: &str) -> Result<Vec<PartResult>> {
        let mut parts = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", AttributeValue::S(job_pk(job)))
                .expression_attribute_values(":prefix", AttributeValue::S(format!("PART#{run}#")))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::aws("Query", e))?;
            for item in out.items() {
                let data = item
                    .get("data")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| Error::Corrupt(format!("part item of job {job} without data")))?;
                parts.push(serde_json::from_str(data).map_err(|e| Error::Corrupt(format!("part of job {job}: {e}")))?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(parts)
    }
}
