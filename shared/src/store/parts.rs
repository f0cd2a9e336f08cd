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

    /// At most `parts` recorded parts of run `run` whose index is after `after`, in part order,
    /// and the index to continue after when there may be more (a page of `GET /jobs/{id}/images`).
    async fn page(&self, job: JobId, run: &str, after: Option<u32>, parts: usize) -> Result<PartPage> {
        let listed = self.list(job, run).await?;
        let rest: Vec<PartResult> = listed
            .into_iter()
            .filter(|p| after.is_none_or(|a| p.part > a))
            .collect();
        Ok(PartPage::of(rest, parts))
    }
}

/// One page of a run's parts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PartPage {
    pub parts: Vec<PartResult>,
    /// The last part index of this page when more may follow (`after` of the next page).
    pub next: Option<u32>,
}

impl PartPage {
    /// The first `max` of `rest` (parts in order), with `next` when some are left.
    fn of(mut rest: Vec<PartResult>, max: usize) -> PartPage {
        let more = rest.len() > max;
        rest.truncate(max);
        let next = if more { rest.last().map(|p| p.part) } else { None };
        PartPage { parts: rest, next }
    }
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

fn decode_part(job: JobId, item: &HashMap<String, AttributeValue>) -> Result<PartResult> {
    let data = item
        .get("data")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| Error::Corrupt(format!("part item of job {job} without data")))?;
    serde_json::from_str(data).map_err(|e| Error::Corrupt(format!("part of job {job}: {e}")))
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

    /// A Query from `PART#<run>#<after + 1>` up to the run's last possible part, `parts + 1`
    /// items at most (the one more says whether there is a next page).
    async fn page(&self, job: JobId, run: &str, after: Option<u32>, parts: usize) -> Result<PartPage> {
        let from = after.map_or(0, |a| a + 1);
        let want = parts + 1;
        let mut found: Vec<PartResult> = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", AttributeValue::S(job_pk(job)))
                .expression_attribute_values(":from", AttributeValue::S(part_sk(run, from)))
                .expression_attribute_values(":to", AttributeValue::S(part_sk(run, 999_999)))
                .consistent_read(true)
                .limit((want - found.len()).min(1000) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::aws("Query", e))?;
            for item in out.items() {
                found.push(decode_part(job, item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && found.len() < want => start = Some(key),
                _ => break,
            }
        }
        Ok(PartPage::of(found, parts))
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
                parts.push(decode_part(job, item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(parts)
    }
}

/// The contract of [`PartStore::page`], for every store: pages in part order, `next` only when
/// more may follow, runs kept apart.
#[cfg(any(test, feature = "testing"))]
pub async fn pages_follow_part_order(store: &dyn PartStore) {
    let job = JobId::new();
    let part = |n: u32| PartResult {
        part: n,
        ..PartResult::default()
    };
    for n in [7, 0, 3, 12, 5, 9, 1] {
        store.record(job, "r1", &part(n)).await.unwrap();
    }
    store.record(job, "r10", &part(2)).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store.page(job, "r1", after, 3).await.unwrap();
        assert!(page.parts.len() <= 3);
        seen.extend(page.parts.iter().map(|p| p.part));
        pages += 1;
        match page.next {
            Some(next) => {
                assert_eq!(Some(next), page.parts.last().map(|p| p.part));
                after = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(seen, [0, 1, 3, 5, 7, 9, 12]);
    assert_eq!(pages, 3);
    let exact = store.page(job, "r1", None, 7).await.unwrap();
    assert_eq!(
        (exact.parts.len(), exact.next),
        (7, None),
        "no next when nothing is left"
    );
    let empty = store.page(job, "r1", Some(12), 3).await.unwrap();
    assert_eq!(empty, PartPage::default());
    assert_eq!(store.page(job, "r10", None, 3).await.unwrap().parts, [part(2)]);
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn pages_follow_part_order_in_memory() {
        super::pages_follow_part_order(&crate::store::memory::MemoryPartStore::new()).await;
    }
}
