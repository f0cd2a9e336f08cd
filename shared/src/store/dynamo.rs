//! [`JobStore`] on DynamoDB: conditional writes for every transition, counters (global and per
//! owner), per-minute completions and limit charges updated in the same transaction as the job,
//! listings from sparse GSIs, the status indexes sharded ([`super::shards`]).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use futures::StreamExt;
use time::{Duration, OffsetDateTime};

use super::shards::{self, Order, PartitionReader, SortBy, created_key, shard_of};
use super::table::*;
use super::{Change, Created, IdempotencyKey, JobStore, ListFilter, MinuteCount, Page, Stats};
use crate::auth::{Owner, Scope};
use crate::clock;
use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobKind, JobStatus};
use crate::quota::{Charge, Limit};
use crate::retry::Backoff;

type Item = HashMap<String, AttributeValue>;

/// How often `modify` re-reads after losing a race before it gives up with `Contention`.
const MODIFY: Backoff = Backoff::new(
    8,
    std::time::Duration::from_millis(10),
    std::time::Duration::from_millis(200),
);
/// Idempotency keys are remembered this long.
const IDEMPOTENCY_TTL: Duration = Duration::hours(24);
/// Rounds of `BatchGetItem` for the keys DynamoDB left unprocessed before giving up.
const BATCH_GET: Backoff = Backoff::new(
    6,
    std::time::Duration::from_millis(20),
    std::time::Duration::from_secs(1),
);

/// What a re-keying pass did ([`DynamoJobStore::keep_keys_current`], [`DynamoJobStore::backfill_shard_keys`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Backfilled {
    /// Job items read.
    pub scanned: usize,
    /// Job items given their keys.
    pub updated: usize,
    /// Job items written by someone else meanwhile (with their keys): left alone.
    pub raced: usize,
    /// Job items that do not read as a job (logged with their key): left alone.
    pub unreadable: usize,
}

/// Where the table's index keys stand after [`DynamoJobStore::keep_keys_current`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rekeyed {
    /// The shard counts the items are (being) keyed with: `status 8, list 2`.
    pub keyed: String,
    /// Every job item has them (`false`: a pass is under way, to go on at the next call).
    pub done: bool,
    /// What this call's part of the pass did (nothing when the keys were already current).
    pub pass: Backfilled,
}

/// The DynamoDB job store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
    /// Shards per status of the status indexes (`STATUS_SHARDS`).
    shards: u32,
    /// Shards of `by_created_shard`, the listing of every status (`LIST_SHARDS`).
    list_shards: u32,
}

impl DynamoJobStore {
    /// The store of `table`, with `STATUS_SHARDS` shards per status (8 when unset).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoJobStore {
            client,
            table: table.into(),
            shards: shards::status_shards_from_env(),
            list_shards: shards::list_shards_from_env(),
        }
    }

    /// The same store with `n` shards per status (tests).
    pub fn with_status_shards(mut self, n: u32) -> Self {
        self.shards = n.clamp(1, shards::MAX_STATUS_SHARDS);
        self
    }

    /// The same store with `n` shards of the listing of every status (tests).
    pub fn with_list_shards(mut self, n: u32) -> Self {
        self.list_shards = n.clamp(1, shards::MAX_STATUS_SHARDS);
        self
    }

    /// Makes every job item's index keys those of this store's shard counts, a bounded piece at a
    /// time (the sweeper calls it every run with what is left of its minute). The table notes the
    /// counts its items are keyed with (item `KEYS`/`SHARDS`): when they are this store's, this is
    /// one read. Otherwise it scans the job items from where the last call stopped, re-keys each
    /// stale one ([`Self::rekey_page`]), and notes where it stopped, or, once the scan ends, the new
    /// counts. So a stack whose `StatusShards` or `ListShards` changed (or whose items predate an
    /// index key) is re-keyed by itself, on AWS as locally, and a current one costs one `GetItem`
    /// a minute. Until a pass ends, listings miss the jobs it has not reached yet when a count
    /// went down (a count that goes up loses nothing: the old shards are among the new ones).
    pub async fn keep_keys_current(&self, budget: std::time::Duration) -> Result<Rekeyed> {
        let deadline = std::time::Instant::now() + budget;
        let want = self.keying();
        let meta = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(KEYS_PK))
            .key(SK, s(KEYS_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("GetItem(keys)", e))?
            .item
            .unwrap_or_default();
        let under_way = string(&meta, "pass").map(str::to_string);
        // Current only when no pass is under way (a note holds `keyed` only then): a pass towards
        // other counts that was left when the counts went back has re-keyed some items with
        // those, and must be undone by a pass.
        if under_way.is_none() && string(&meta, "keyed") == Some(want.as_str()) {
            return Ok(Rekeyed {
                keyed: want,
                done: true,
                pass: Backfilled::default(),
            });
        }
        // A pass towards these counts that stopped goes on from where it stopped; one towards
        // other counts starts over.
        let mut start = match (under_way, string(&meta, "from_pk"), string(&meta, "from_sk")) {
            (Some(pass), Some(pk), Some(sk)) if pass == want => Some(key(pk.to_string(), sk)),
            _ => None,
        };
        let mut pass = Backfilled::default();
        loop {
            start = self.rekey_page(start, &mut pass).await?;
            // Noted after every page, so a failure later in this call loses one page at most.
            let mut note = Item::from([(PK.to_string(), s(KEYS_PK)), (SK.to_string(), s(KEYS_SK))]);
            match &start {
                None => {
                    note.insert("keyed".into(), s(&want));
                }
                Some(from) => {
                    note.insert("pass".into(), s(&want));
                    for (attr, at) in [("from_pk", PK), ("from_sk", SK)] {
                        if let Some(v) = from.get(at) {
                            note.insert(attr.into(), v.clone());
                        }
                    }
                }
            }
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(note))
                .send()
                .await
                .map_err(|e| Error::aws("PutItem(keys)", e))?;
            if start.is_none() || std::time::Instant::now() >= deadline {
                return Ok(Rekeyed {
                    keyed: want,
                    done: start.is_none(),
                    pass,
                });
            }
        }
    }

    /// One whole re-keying pass at once (tests; [`Self::keep_keys_current`] is the bounded one):
    /// every job item given the index keys of this store's shard counts. Idempotent: a second run
    /// updates nothing.
    pub async fn backfill_shard_keys(&self) -> Result<Backfilled> {
        let mut done = Backfilled::default();
        let mut start = None;
        loop {
            start = self.rekey_page(start, &mut done).await?;
            if start.is_none() {
                return Ok(done);
            }
        }
    }

    /// The job as this store writes it ([`job_item`] with its shard counts).
    fn job_item(&self, job: &Job) -> Result<Item> {
        job_item(job, self.shards, self.list_shards)
    }

    /// `status <n>, list <n>`: the shard counts this store keys job items with.
    fn keying(&self) -> String {
        format!("status {}, list {}", self.shards, self.list_shards)
    }

    /// One page (500 items) of the Scan of the job items from `start`: each item whose index keys
    /// are not those this store would write (missing, or of other shard counts) gets them, with an
    /// update of just those attributes conditional on the job's version (a job written meanwhile
    /// already has them), 8 at a time. Returns where the next page starts (`None`: the scan ended).
    async fn rekey_page(&self, start: Option<Item>, done: &mut Backfilled) -> Result<Option<Item>> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#sk = :job")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":job", s("JOB"))
            .limit(500)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| Error::aws("Scan", e))?;
        let mut updates = Vec::new();
        for item in out.items.unwrap_or_default() {
            done.scanned += 1;
            // An item that is not a job this code can read is counted and left (a pass that
            // stopped at it would stop there every minute).
            let job = match job_from_item(item.clone()) {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(pk = ?item.get(PK), error = %e, "re-keying: unreadable job item left as it is");
                    done.unreadable += 1;
                    continue;
                }
            };
            let want = self.job_item(&job)?;
            let (mut set, mut remove) = (Vec::new(), Vec::new());
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PK, s(job_pk(job.id)))
                .key(SK, s("JOB"))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(job.version.to_string()));
            for (i, attr) in INDEX_KEYS.iter().enumerate() {
                match (item.get(*attr), want.get(*attr)) {
                    (had, Some(v)) if had != Some(v) => {
                        set.push(format!("#k{i} = :k{i}"));
                        update = update.expression_attribute_values(format!(":k{i}"), v.clone());
                    }
                    (Some(_), None) => remove.push(format!("#k{i}")),
                    _ => continue,
                }
                update = update.expression_attribute_names(format!("#k{i}"), *attr);
            }
            if set.is_empty() && remove.is_empty() {
                continue;
            }
            let clauses: Vec<String> = [("SET", set), ("REMOVE", remove)]
                .into_iter()
                .filter(|(_, parts)| !parts.is_empty())
                .map(|(action, parts)| format!("{action} {}", parts.join(", ")))
                .collect();
            updates.push(update.update_expression(clauses.join(" ")).send());
        }
        let mut results = futures::stream::iter(updates).buffer_unordered(8);
        while let Some(result) = results.next().await {
            match result {
                Ok(_) => done.updated += 1,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    done.raced += 1
                }
                Err(e) => return Err(Error::aws("UpdateItem", e)),
            }
        }
        Ok(out.last_evaluated_key)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn put_job(&self, job: &Job, condition: &str, values: Option<Item>) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.job_item(job)?))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// `ADD` deltas to one randomly chosen counter shard.
    fn count(&self, deltas: &[(String, i64)]) -> Result<TransactWriteItem> {
        let shard = rand::random_range(0..STATS_SHARDS);
        self.add(format!("STATS#{shard}"), "COUNT", deltas, None)
    }

    /// `ADD` deltas to an owner's counters; with `max_in_flight`, only if the owner has fewer
    /// jobs in flight than that (the jobs-in-flight limit, checked in the creating transaction).
    fn count_owner(
        &self,
        owner: &Owner,
        deltas: &[(String, i64)],
        max_in_flight: Option<u64>,
    ) -> Result<TransactWriteItem> {
        self.add(format!("OWNER#{owner}"), "COUNT", deltas, max_in_flight)
    }

    fn add(&self, pk: String, sk: &str, deltas: &[(String, i64)], below: Option<u64>) -> Result<TransactWriteItem> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut adds = Vec::new();
        for (i, (attr, delta)) in deltas.iter().enumerate() {
            names.insert(format!("#a{i}"), attr.clone());
            values.insert(format!(":d{i}"), AttributeValue::N(delta.to_string()));
            adds.push(format!("#a{i} :d{i}"));
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .update_expression(format!("ADD {}", adds.join(", ")));
        if let Some(max) = below {
            names.insert("#inflight".into(), INFLIGHT.into());
            values.insert(":max".into(), AttributeValue::N(max.to_string()));
            update = update.condition_expression("attribute_not_exists(#inflight) OR #inflight < :max");
        }
        let update = update
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Adds a windowed charge (image URLs per hour, bytes per day) if it fits under its limit.
    fn charge(&self, c: &Charge) -> Result<TransactWriteItem> {
        let window = c.window.as_deref().unwrap_or("-");
        let room = c.max.saturating_sub(c.amount);
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(format!("QUOTA#{}#{}#{window}", c.owner, c.limit.name())))
            .key(SK, s("USE"))
            .update_expression("ADD used :n SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(used) OR used <= :room")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":n", AttributeValue::N(c.amount.to_string()))
            .expression_attribute_values(":room", AttributeValue::N(room.to_string()))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N((c.window_end + Duration::days(1)).unix_timestamp().to_string()),
            )
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// `ADD` one to the minute of `at` on the completions item `pk` (one item per hour).
    fn count_completion(&self, pk: String, minute_attr: String, at: OffsetDateTime) -> Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s("COUNT"))
            .update_expression("ADD #m :one SET #ttl = :ttl")
            .expression_attribute_names("#m", minute_attr)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N((at + Duration::hours(3)).unix_timestamp().to_string()),
            )
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The counter updates for a job written as `after` over `before` (`None` = created /
    /// removed): the global shard and its owner's counters (statuses, kinds, scheduled, in
    /// flight), and a completion or a failure in both per-minute series. Empty when none moves.
    fn counters(
        &self,
        before: Option<&Job>,
        after: Option<&Job>,
        max_in_flight: Option<u64>,
    ) -> Result<Vec<TransactWriteItem>> {
        let Some(job) = after.or(before) else {
            return Ok(Vec::new());
        };
        let (from, to) = (before.map(|j| j.status), after.map(|j| j.status));
        let mut deltas = counter_deltas(job.kind(), from, to);
        let scheduled = |j: Option<&Job>| i64::from(j.is_some_and(Job::is_scheduled));
        let moved = scheduled(after) - scheduled(before);
        if moved != 0 {
            deltas.push((SCHEDULED.to_string(), moved));
        }
        let mut items = Vec::new();
        if !deltas.is_empty() {
            items.push(self.count(&deltas)?);
        }
        if let Some(owner) = &job.owner {
            let mut owned = deltas;
            let inflight = |s: Option<JobStatus>| i64::from(s.is_some_and(in_flight));
            let change = inflight(to) - inflight(from);
            if change != 0 {
                owned.push((INFLIGHT.to_string(), change));
            }
            if !owned.is_empty() {
                items.push(self.count_owner(owner, &owned, max_in_flight)?);
            }
        }
        let series = match to {
            Some(JobStatus::Completed) if from != to => Some(completions_key as fn(&str) -> (&str, String)),
            Some(JobStatus::Failed) if from != to => Some(failures_key as fn(&str) -> (&str, String)),
            _ => None,
        };
        if let Some(key_of) = series {
            let minute = clock::minute_key(job.updated_at);
            let (hour, attr) = key_of(&minute);
            let shard = rand::random_range(0..MINUTE_SHARDS);
            items.push(self.count_completion(format!("MINUTE#{hour}#{shard}"), attr.clone(), job.updated_at)?);
            if let Some(owner) = &job.owner {
                items.push(self.count_completion(format!("OMINUTE#{owner}#{hour}"), attr, job.updated_at)?);
            }
        }
        Ok(items)
    }

    async fn transact(&self, items: Vec<TransactWriteItem>, op: &'static str) -> Result<Option<Vec<Option<String>>>> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), TransactWriteItemsError::TransactionCanceledException(_)) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(c) = e.err() else {
                    unreachable!()
                };
                let codes: Vec<Option<String>> = c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().map(str::to_owned))
                    .collect();
                if codes.iter().any(|c| c.as_deref() == Some("ConditionalCheckFailed")) {
                    Ok(Some(codes))
                } else {
                    Err(Error::aws(op, SdkError::ServiceError(e)))
                }
            }
            Err(e) => Err(Error::aws(op, e)),
        }
    }

    async fn idempotent_job(&self, key: &IdempotencyKey) -> Result<Job> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(format!("IDEM#{}", key.key)))
            .key(SK, s("IDEM"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("GetItem", e))?;
        let item = out
            .item
            .ok_or_else(|| Error::Contention(format!("idempotency key {}", key.key)))?;
        if string(&item, "fingerprint") != Some(key.fingerprint.as_str()) {
            return Err(Error::Conflict(format!(
                "Idempotency-Key {:?} was already used with a different request",
                key.key
            )));
        }
        let id: JobId = string(&item, "job_id")
            .ok_or_else(|| Error::Corrupt("idempotency item without job_id".into()))?
            .parse()?;
        self.get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("job {id} not found")))
    }

    /// Jobs of `status` in one shard created before `before`, oldest first, at most `limit`.
    async fn oldest_in_shard(
        &self,
        status: JobStatus,
        shard: u32,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Job>> {
        let mut jobs = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_STATUS_SHARD)
                .scan_index_forward(true)
                .limit((limit - jobs.len()).clamp(1, 500) as i32)
                .key_condition_expression("#p = :p AND #c < :c")
                .expression_attribute_names("#p", STATUS_SHARD)
                .expression_attribute_names("#c", CREATED_KEY)
                .expression_attribute_values(":p", s(format!("{status}#{shard}")))
                .expression_attribute_values(":c", s(clock::format(before)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::aws("Query", e))?;
            for item in out.items.unwrap_or_default() {
                jobs.push(job_from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() || jobs.len() >= limit {
                return Ok(jobs);
            }
        }
    }

    /// Writes `after` over `before` if the stored job is still `before`'s version: `false` when
    /// it is not (a lost race). A change of status moves the counters in the same transaction;
    /// any other change is one conditional `PutItem` (half a transaction's write units).
    async fn write_modified(&self, before: &Job, after: &Job) -> Result<bool> {
        let version = HashMap::from([(":v".to_string(), AttributeValue::N(before.version.to_string()))]);
        if after.status != before.status || after.is_scheduled() != before.is_scheduled() {
            let mut items = vec![self.put_job(after, "version = :v", Some(version))?];
            items.extend(self.counters(Some(before), Some(after), None)?);
            return Ok(self.transact(items, "TransactWriteItems(modify)").await?.is_none());
        }
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.job_item(after)?))
            .condition_expression("version = :v")
            .set_expression_attribute_values(Some(version))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {
                Ok(false)
            }
            Err(e) => Err(Error::aws("PutItem(modify)", e)),
        }
    }

    /// Every item of `keys` (any number), read consistently: `BatchGetItem` takes at most 100
    /// keys, so the keys go in chunks of 100, all at once, each retried for its unprocessed keys.
    async fn batch_get_consistent(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let chunks = keys.chunks(BATCH_GET_KEYS).map(|chunk| async move {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?,
            );
            let mut found = Vec::new();
            let mut tries = BATCH_GET.start();
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| Error::aws("BatchGetItem", e))?;
                found.extend(
                    out.responses
                        .and_then(|mut r| r.remove(&self.table))
                        .unwrap_or_default(),
                );
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() && !tries.again().await {
                    return Err(Error::Contention(format!(
                        "keys still unprocessed after {} BatchGetItem rounds",
                        BATCH_GET.attempts
                    )));
                }
            }
            Ok(found)
        });
        Ok(futures::future::try_join_all(chunks)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Jobs by status from the counters (every shard of them, or the owner's), in one
    /// `BatchGetItem`; an error when any is left unprocessed (the caller then reads every status).
    async fn status_counts(&self, scope: &Scope) -> Result<HashMap<String, i64>> {
        let keys: Vec<Item> = match scope {
            Scope::All => (0..STATS_SHARDS).map(|n| key(format!("STATS#{n}"), "COUNT")).collect(),
            Scope::Owner(o) => vec![key(format!("OWNER#{o}"), "COUNT")],
        };
        let out = self
            .client
            .batch_get_item()
            .request_items(
                &self.table,
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await
            .map_err(|e| Error::aws("BatchGetItem", e))?;
        if out
            .unprocessed_keys
            .as_ref()
            .and_then(|u| u.get(&self.table))
            .is_some_and(|k| !k.keys().is_empty())
        {
            return Err(Error::Contention("counters left unprocessed".into()));
        }
        let mut counts: HashMap<String, i64> = JobStatus::ALL.iter().map(|s| (s.to_string(), 0)).collect();
        for item in out
            .responses
            .and_then(|mut r| r.remove(&self.table))
            .unwrap_or_default()
        {
            for (attr, v) in &item {
                if let Some(st) = attr.strip_prefix("s_") {
                    *counts.entry(st.to_string()).or_default() += as_i64(v);
                }
            }
        }
        Ok(counts)
    }

    /// The partitions of a listing: every status of the filter times its shards (the owner
    /// indexes are not sharded: one owner's jobs are already their own partitions).
    fn partitions(&self, filter: &ListFilter) -> (Vec<(String, &'static str, &'static str)>, u32) {
        let statuses = if filter.statuses.is_empty() {
            JobStatus::ALL.to_vec()
        } else {
            filter.statuses.clone()
        };
        let mut parts = Vec::new();
        // Sorted by last change or priority: the sharded status indexes of that key, whoever's
        // and whatever kind (the reader filters those).
        let sorted_index = match filter.order.by {
            SortBy::Created => None,
            SortBy::Updated => Some(BY_STATUS_SHARD_UPDATED),
            SortBy::Priority => Some(BY_STATUS_SHARD_PRIORITY),
        };
        if let Some(index) = sorted_index {
            for status in statuses {
                for shard in 0..self.shards {
                    parts.push((format!("{status}#{shard}"), index, STATUS_SHARD));
                }
            }
            return (parts, self.shards);
        }
        let shards = match &filter.scope {
            Scope::All => self.shards,
            Scope::Owner(_) => 1,
        };
        for status in statuses {
            for shard in 0..shards {
                parts.push(match (&filter.scope, filter.kind) {
                    (Scope::All, Some(k)) => (format!("{status}#{k}#{shard}"), BY_STATUS_KIND_SHARD, STATUS_KIND_SHARD),
                    (Scope::All, None) => (format!("{status}#{shard}"), BY_STATUS_SHARD, STATUS_SHARD),
                    (Scope::Owner(o), Some(k)) => {
                        (format!("{o}#{status}#{k}"), BY_OWNER_STATUS_KIND, OWNER_STATUS_KIND)
                    }
                    (Scope::Owner(o), None) => (format!("{o}#{status}"), BY_OWNER_STATUS, OWNER_STATUS),
                });
            }
        }
        (parts, shards)
    }

    /// Everyone's jobs of every status in creation order: the page's keys merged from the
    /// `LIST_SHARDS` partitions of `by_created_shard`, then its jobs in one consistent
    /// `BatchGetItem` (so they are as of now; a job deleted in between is left out).
    async fn list_every_job(&self, order: Order, limit: usize, cursor: Option<&str>) -> Result<Page> {
        let reader = KeyReader { store: self, order };
        let parts = self.list_shards as usize;
        let (keys, next) = shards::merge_items(&reader, order, parts, self.list_shards, &[], limit, cursor).await?;
        let items = self
            .batch_get_consistent(keys.iter().map(|k| key(job_pk(k.id), "JOB")).collect())
            .await?;
        let mut found: HashMap<JobId, Job> = items
            .into_iter()
            .map(|i| job_from_item(i).map(|j| (j.id, j)))
            .collect::<Result<_>>()?;
        Ok(Page {
            jobs: keys.iter().filter_map(|k| found.remove(&k.id)).collect(),
            next,
        })
    }

    /// The query of one partition of a listing: `index`'s partition `attr` = `value`, in `order`
    /// by `sort_attr`, past `before` in that order (when given), from `start` on, `n` items.
    fn partition_query(
        &self,
        (index, attr, value): (&str, &str, &str),
        sort_attr: &str,
        order: Order,
        (before, start, n): (Option<&str>, Option<Item>, usize),
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .scan_index_forward(order.ascending)
            .limit(n as i32)
            .expression_attribute_names("#p", attr)
            .expression_attribute_values(":p", s(value))
            .set_exclusive_start_key(start);
        match before {
            Some(c) => q
                .key_condition_expression(if order.ascending {
                    "#p = :p AND #c > :c"
                } else {
                    "#p = :p AND #c < :c"
                })
                .expression_attribute_names("#c", sort_attr)
                .expression_attribute_values(":c", s(c)),
            None => q.key_condition_expression("#p = :p"),
        }
    }
}

/// A job as `by_created_shard` holds it: its id and `created_key`.
#[derive(Clone, Debug)]
struct CreatedKey {
    id: JobId,
    created_key: String,
}

impl shards::Listed for CreatedKey {
    fn id(&self) -> JobId {
        self.id
    }
    fn version(&self) -> u64 {
        0
    }
    fn key(&self, _: Order) -> String {
        self.created_key.clone()
    }
}

/// Reads one shard of `by_created_shard`: keys only, in creation order.
struct KeyReader<'a> {
    store: &'a DynamoJobStore,
    order: Order,
}

#[async_trait]
impl PartitionReader for KeyReader<'_> {
    type Start = Item;
    type Item = CreatedKey;

    async fn read(
        &self,
        partition: usize,
        before: Option<&str>,
        start: Option<Item>,
        n: usize,
    ) -> Result<(Vec<CreatedKey>, Option<Item>)> {
        let out = self
            .store
            .partition_query(
                (BY_CREATED_SHARD, CREATED_SHARD, &partition.to_string()),
                CREATED_KEY,
                self.order,
                (before, start, n),
            )
            .send()
            .await
            .map_err(|e| Error::aws("Query", e))?;
        let keys = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                let created_key = string(item, CREATED_KEY).unwrap_or_default();
                let id = created_key
                    .rsplit_once('#')
                    .and_then(|(_, id)| id.parse().ok())
                    .ok_or_else(|| Error::Corrupt(format!("{BY_CREATED_SHARD}: created_key {created_key:?}")))?;
                Ok(CreatedKey {
                    id,
                    created_key: created_key.to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((keys, out.last_evaluated_key))
    }
}

/// Reads one partition (one shard of one status) of a listing: a GSI query, newest first.
struct IndexReader<'a> {
    store: &'a DynamoJobStore,
    parts: Vec<(String, &'static str, &'static str)>,
    order: Order,
    /// Filters of a sorted-by-updated/priority listing (its index holds every kind and owner).
    kind: Option<JobKind>,
    owner: Option<Owner>,
}

#[async_trait]
impl PartitionReader for IndexReader<'_> {
    type Start = Item;
    type Item = Job;

    async fn read(
        &self,
        partition: usize,
        before: Option<&str>,
        start: Option<Item>,
        n: usize,
    ) -> Result<(Vec<Job>, Option<Item>)> {
        let (value, index, attr) = &self.parts[partition];
        let sort_attr = match self.order.by {
            SortBy::Created => CREATED_KEY,
            SortBy::Updated => UPDATED_KEY,
            SortBy::Priority => PRIORITY_KEY,
        };
        let mut q = self
            .store
            .partition_query((index, attr, value), sort_attr, self.order, (before, start, n));
        let mut filters = Vec::new();
        if let Some(k) = self.kind {
            filters.push("#k = :k");
            q = q
                .expression_attribute_names("#k", "kind")
                .expression_attribute_values(":k", s(k.as_str()));
        }
        if let Some(o) = &self.owner {
            filters.push("#o = :o");
            q = q
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":o", s(o.to_string()));
        }
        if !filters.is_empty() {
            q = q.filter_expression(filters.join(" AND "));
        }
        let out = q.send().await.map_err(|e| Error::aws("Query", e))?;
        let jobs = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(job_from_item)
            .collect::<Result<Vec<_>>>()?;
        Ok((jobs, out.last_evaluated_key))
    }
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create(&self, job: &Job, idempotency: Option<&IdempotencyKey>, charges: &[Charge]) -> Result<Created> {
        let mut items = vec![self.put_job(job, "attribute_not_exists(pk)", None)?];
        if let Some(key) = idempotency {
            let put = Put::builder()
                .table_name(&self.table)
                .item(PK, s(format!("IDEM#{}", key.key)))
                .item(SK, s("IDEM"))
                .item("job_id", s(job.id.to_string()))
                .item("fingerprint", s(&key.fingerprint))
                .item(
                    TTL,
                    AttributeValue::N((job.created_at + IDEMPOTENCY_TTL).unix_timestamp().to_string()),
                )
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        // The search's lookups (short id, main keys): one small item each, no condition.
        for term in super::find_terms(job) {
            let put = Put::builder()
                .table_name(&self.table)
                .item(PK, s(find_pk(&term)))
                .item(SK, s(created_key(job)))
                .item("job_id", s(job.id.to_string()))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        // Which transaction item checks which limit, to name it when one refuses.
        let mut checks: Vec<(usize, &Charge)> = Vec::new();
        let in_flight = charges.iter().find(|c| c.limit == Limit::JobsInFlight);
        let counters = self.counters(None, Some(job), in_flight.map(|c| c.max))?;
        if let Some(c) = in_flight {
            checks.push((items.len() + 1, c)); // the owner's counters follow the global shard
        }
        items.extend(counters);
        for c in charges.iter().filter(|c| c.window.is_some()) {
            checks.push((items.len(), c));
            items.push(self.charge(c)?);
        }
        let Some(codes) = self.transact(items, "TransactWriteItems(create)").await? else {
            return Ok(Created::New(job.clone()));
        };
        let refused = |i: usize| {
            codes
                .get(i)
                .is_some_and(|c| c.as_deref() == Some("ConditionalCheckFailed"))
        };
        let job_refused = refused(0) || (idempotency.is_some() && refused(1));
        if !job_refused && let Some((_, charge)) = checks.iter().find(|(i, _)| refused(*i)) {
            return Err(charge.exceeded());
        }
        match idempotency {
            Some(key) => Ok(Created::Existing(self.idempotent_job(key).await?)),
            // Ids are new for every job: a job already there under ours is our own write, retried
            // by the SDK after its answer was lost. It is ours; nothing was written twice.
            None => match self.get(job.id).await? {
                Some(existing) if existing.created_at == job.created_at && existing.spec == job.spec => {
                    Ok(Created::New(existing))
                }
                _ => Err(Error::Conflict(format!("job {} already exists", job.id))),
            },
        }
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(job_pk(id)))
            .key(SK, s("JOB"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("GetItem", e))?;
        out.item.map(job_from_item).transpose()
    }

    async fn modify(&self, id: JobId, change: &mut Change<'_>) -> Result<Job> {
        let mut tries = MODIFY.start();
        loop {
            let before = self
                .get(id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("job {id} not found")))?;
            let Some(after) = super::apply(&before, change)? else {
                return Ok(before);
            };
            if self.write_modified(&before, &after).await? {
                return Ok(after);
            }
            tracing::debug!(job_id = %id, attempt = tries.number(), "lost a write race; re-reading");
            if !tries.again().await {
                return Err(Error::Contention(format!("job {id}")));
            }
        }
    }

    async fn modify_known(&self, before: &Job, change: &mut Change<'_>) -> Result<Job> {
        let Some(after) = super::apply(before, change)? else {
            return Ok(before.clone());
        };
        if self.write_modified(before, &after).await? {
            return Ok(after);
        }
        // Somebody wrote since `before` was read: the usual read-modify-write.
        self.modify(before.id, change).await
    }

    async fn discard(&self, job: &Job, idempotency: Option<&IdempotencyKey>) -> Result<()> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(job_pk(job.id)))
            .key(SK, s("JOB"))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(job.version.to_string()))
            .build()
            .map_err(build_error)?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        if let Some(key) = idempotency {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key(PK, s(format!("IDEM#{}", key.key)))
                .key(SK, s("IDEM"))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        for term in super::find_terms(job) {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key(PK, s(find_pk(&term)))
                .key(SK, s(created_key(job)))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        items.extend(self.counters(Some(job), None, None)?);
        match self.transact(items, "TransactWriteItems(discard)").await? {
            None => Ok(()),
            Some(_) => Err(Error::Conflict(format!(
                "job {} changed before it could be discarded",
                job.id
            ))),
        }
    }

    async fn oldest(&self, status: JobStatus, before: OffsetDateTime, limit: usize) -> Result<Vec<Job>> {
        // The oldest `limit` of each shard, merged: the oldest `limit` of all.
        let reads = (0..self.shards).map(|shard| self.oldest_in_shard(status, shard, before, limit));
        let mut jobs: Vec<Job> = futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect();
        jobs.sort_by_key(created_key);
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn due_to_wake(
        &self,
        after: Option<(OffsetDateTime, JobId)>,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Job>> {
        // The soonest `limit` of each shard, merged: the soonest `limit` of all. Keys are
        // `<scheduled_for>#<id>`, all of one length, so the key just above `after`'s is its key
        // and one more character, and every key before `until` is below its bare time.
        let bound = clock::format(until);
        let from = after.map(|(at, id)| format!("{}\u{1}", wake_key(at, id)));
        if from.as_ref().is_some_and(|f| *f > bound) {
            return Ok(Vec::new());
        }
        let reads = (0..self.shards).map(|shard| {
            let (bound, from) = (bound.clone(), from.clone());
            async move {
                let q = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(BY_WAKE)
                    .expression_attribute_names("#p", WAKE_SHARD)
                    .expression_attribute_names("#w", WAKE_KEY)
                    .expression_attribute_values(":p", s(shard.to_string()))
                    .expression_attribute_values(":w", s(bound))
                    .limit(limit.clamp(1, 1000) as i32);
                let q = match from {
                    Some(from) => q
                        .key_condition_expression("#p = :p AND #w BETWEEN :a AND :w")
                        .expression_attribute_values(":a", s(from)),
                    None => q.key_condition_expression("#p = :p AND #w < :w"),
                };
                let out = q.send().await.map_err(|e| Error::aws("Query", e))?;
                out.items
                    .unwrap_or_default()
                    .into_iter()
                    .map(job_from_item)
                    .collect::<Result<Vec<_>>>()
            }
        });
        let mut jobs: Vec<Job> = futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect();
        jobs.sort_by_key(|j| (j.scheduled_for, j.id));
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn list(&self, filter: &ListFilter, limit: usize, cursor: Option<&str>) -> Result<Page> {
        if filter.statuses.is_empty()
            && filter.kind.is_none()
            && filter.scope == Scope::All
            && filter.order.by == SortBy::Created
        {
            return self.list_every_job(filter.order, limit, cursor).await;
        }
        let (parts, shards) = self.partitions(filter);
        let count = parts.len();
        // A status whose counter says 0 has nothing in any shard: its shards are not queried (a
        // listing of every status otherwise costs 6 x STATUS_SHARDS queries, most of them empty).
        let statuses = if filter.statuses.is_empty() {
            JobStatus::ALL.to_vec()
        } else {
            filter.statuses.clone()
        };
        let empty: Vec<bool> = match self.status_counts(&filter.scope).await {
            Ok(counts) => statuses
                .iter()
                .flat_map(|st| {
                    let none = counts.get(st.as_str()).is_some_and(|n| *n <= 0);
                    std::iter::repeat_n(none, shards as usize)
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "status counters unreadable: listing every status");
                Vec::new()
            }
        };
        let sorted = filter.order.by != SortBy::Created;
        let reader = IndexReader {
            store: self,
            parts,
            order: filter.order,
            kind: filter.kind.filter(|_| sorted),
            owner: match &filter.scope {
                Scope::Owner(o) if sorted => Some(o.clone()),
                _ => None,
            },
        };
        shards::merge_in(&reader, filter.order, count, shards, &empty, limit, cursor).await
    }

    async fn find(&self, term: &str, limit: usize) -> Result<Vec<JobId>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", PK)
            .expression_attribute_values(":p", s(find_pk(term)))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100) as i32)
            .send()
            .await
            .map_err(|e| Error::aws("Query", e))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                string(item, "job_id")
                    .ok_or_else(|| Error::Corrupt("lookup item without job_id".into()))?
                    .parse()
            })
            .collect()
    }

    async fn stats(&self, scope: &Scope, now: OffsetDateTime) -> Result<Stats> {
        let minutes: Vec<String> = (0..60)
            .rev()
            .map(|m| clock::minute_key(now - Duration::minutes(m)))
            .collect();
        let mut keys: Vec<Item> = match scope {
            Scope::All => (0..STATS_SHARDS).map(|n| key(format!("STATS#{n}"), "COUNT")).collect(),
            Scope::Owner(o) => vec![key(format!("OWNER#{o}"), "COUNT")],
        };
        // Completions: one item per hour (per shard for everyone's), `m<mm>` per minute.
        let mut hours: Vec<&str> = minutes.iter().map(|m| completions_key(m).0).collect();
        hours.dedup();
        let hour_of: HashMap<String, &str> = hours
            .iter()
            .flat_map(|&h| match scope {
                Scope::All => (0..MINUTE_SHARDS)
                    .map(|n| (format!("MINUTE#{h}#{n}"), h))
                    .collect::<Vec<_>>(),
                Scope::Owner(o) => vec![(format!("OMINUTE#{o}#{h}"), h)],
            })
            .collect();
        keys.extend(hour_of.keys().map(|pk| key(pk.clone(), "COUNT")));
        let found = self.batch_get_consistent(keys).await?;
        let mut by_status: std::collections::BTreeMap<String, i64> =
            JobStatus::ALL.iter().map(|s| (s.to_string(), 0)).collect();
        let mut by_kind: std::collections::BTreeMap<String, i64> =
            JobKind::ALL.iter().map(|k| (k.to_string(), 0)).collect();
        let mut per_minute: HashMap<String, (i64, i64)> = HashMap::new();
        let mut scheduled = 0;
        for item in &found {
            let pk = string(item, PK).unwrap_or_default();
            if let Some(hour) = hour_of.get(pk) {
                for m in minutes.iter().filter(|m| m.starts_with(hour)) {
                    let counts = per_minute.entry(m.clone()).or_default();
                    counts.0 += number(item, &completions_key(m).1);
                    counts.1 += number(item, &failures_key(m).1);
                }
                continue;
            }
            scheduled += number(item, SCHEDULED);
            for (attr, v) in item {
                if let Some(st) = attr.strip_prefix("s_") {
                    *by_status.entry(st.to_string()).or_default() += as_i64(v);
                } else if let Some(k) = attr.strip_prefix("k_") {
                    *by_kind.entry(k.to_string()).or_default() += as_i64(v);
                }
            }
        }
        let total = by_status.values().sum();
        let completed_per_minute = minutes
            .into_iter()
            .map(|m| {
                let (completed, failed) = per_minute.get(&m).copied().unwrap_or_default();
                MinuteCount {
                    completed,
                    failed,
                    minute: m,
                }
            })
            .collect();
        Ok(Stats {
            total,
            by_status,
            by_kind,
            scheduled,
            completed_per_minute,
        })
    }
}

/// Counter deltas for a job entering `to` from `from` (`None` = created / removed).
fn counter_deltas(kind: JobKind, from: Option<JobStatus>, to: Option<JobStatus>) -> Vec<(String, i64)> {
    let mut d = Vec::new();
    if from == to {
        return d;
    }
    if let Some(f) = from {
        d.push((format!("s_{f}"), -1));
    }
    if let Some(t) = to {
        d.push((format!("s_{t}"), 1));
    }
    match (from, to) {
        (None, Some(_)) => d.push((format!("k_{kind}"), 1)),
        (Some(_), None) => d.push((format!("k_{kind}"), -1)),
        _ => {}
    }
    d
}

/// Statuses that count against an owner's jobs-in-flight limit.
fn in_flight(status: JobStatus) -> bool {
    matches!(status, JobStatus::Pending | JobStatus::Queued | JobStatus::Processing)
}

/// The job as its item: its fields, and the keys of every index it is in. The status index keys
/// carry the job's shard (the same for its whole life), so each status change moves it to the same
/// shard of the new status.
fn job_item(job: &Job, shards: u32, list_shards: u32) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(job).map_err(|e| Error::Internal(format!("cannot encode job: {e}")))?;
    item.insert(PK.into(), s(job_pk(job.id)));
    item.insert(SK.into(), s("JOB"));
    let shard = shard_of(job.id, shards);
    item.insert(STATUS_SHARD.into(), s(format!("{}#{shard}", job.status)));
    item.insert(
        STATUS_KIND_SHARD.into(),
        s(format!("{}#{}#{shard}", job.status, job.kind())),
    );
    item.insert(CREATED_SHARD.into(), s(shard_of(job.id, list_shards).to_string()));
    if job.is_parked()
        && let Some(at) = job.scheduled_for
    {
        item.insert(WAKE_SHARD.into(), s(shard.to_string()));
        item.insert(WAKE_KEY.into(), s(wake_key(at, job.id)));
    }
    item.insert(CREATED_KEY.into(), s(created_key(job)));
    item.insert(UPDATED_KEY.into(), s(SortBy::Updated.key(job)));
    item.insert(PRIORITY_KEY.into(), s(SortBy::Priority.key(job)));
    if let Some(owner) = &job.owner {
        item.insert(OWNER_STATUS.into(), s(format!("{owner}#{}", job.status)));
        item.insert(
            OWNER_STATUS_KIND.into(),
            s(format!("{owner}#{}#{}", job.status, job.kind())),
        );
    }
    Ok(item)
}

/// The sort key of a parked job in `by_wake`: `<scheduled_for>#<id>`.
fn wake_key(at: OffsetDateTime, id: JobId) -> String {
    format!("{}#{id}", clock::format(at))
}

/// The partition of a search term's lookup items.
fn find_pk(term: &str) -> String {
    format!("FIND#{term}")
}

fn job_from_item(item: Item) -> Result<Job> {
    serde_dynamo::from_item(item).map_err(|e| Error::Corrupt(format!("job item: {e}")))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn number(item: &Item, name: &str) -> i64 {
    item.get(name).map(as_i64).unwrap_or(0)
}

fn as_i64(v: &AttributeValue) -> i64 {
    v.as_n().ok().and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Internal(format!("invalid DynamoDB request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_move_one_job_between_statuses() {
        let d = counter_deltas(JobKind::Image, Some(JobStatus::Queued), Some(JobStatus::Processing));
        assert_eq!(d, vec![("s_queued".into(), -1), ("s_processing".into(), 1)]);
        let d = counter_deltas(JobKind::Archive, None, Some(JobStatus::Pending));
        assert_eq!(d, vec![("s_pending".into(), 1), ("k_archive".into(), 1)]);
    }

    #[test]
    fn a_job_keeps_its_shard_across_status_changes() {
        let spec = crate::job::JobSpec::from_json("email", serde_json::json!({"to": "a@example.com"})).unwrap();
        let now = clock::now();
        let mut job = Job::new(spec, 3, None, now).unwrap();
        let shard = shard_of(job.id, 8);
        let key = |job: &Job, attr: &str| match &job_item(job, 8, 2).unwrap()[attr] {
            AttributeValue::S(v) => v.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(key(&job, STATUS_SHARD), format!("pending#{shard}"));
        assert_eq!(key(&job, STATUS_KIND_SHARD), format!("pending#email#{shard}"));
        job.claim(now, Duration::seconds(60)).unwrap();
        assert_eq!(key(&job, STATUS_SHARD), format!("processing#{shard}"));
        assert_eq!(key(&job, STATUS_KIND_SHARD), format!("processing#email#{shard}"));
    }

    /// The biggest item each kind of job can produce from the largest inputs the edge accepts,
    /// after the longest life the lifecycle allows (full timeline, longest error, biggest result):
    /// all stay under DynamoDB's 400 KB, so no input can make a job unstorable (and stuck).
    #[test]
    fn worst_case_items_stay_under_400_kb() {
        use crate::images::{PartResult, StoreError, summarize};
        use crate::job::{JobSpec, MAX_INLINE_WITHOUT_STORE};
        use crate::limits;
        use serde_json::json;
        const LIMIT: usize = 400 * 1024;
        let now = clock::now();
        let long = |n: usize| "x".repeat(n);
        let url = |i: usize| format!("https://example.com/{i:06}/{}", long(limits::IMAGE_URL - 27));

        // image: the biggest payload kept inline (larger ones go to S3), of the longest fields
        let mut visits = Vec::new();
        let mut i = 0;
        loop {
            let v = json!({"store_id": format!("{i:06}{}", long(limits::STORE_ID - 6)), "image_url": [url(i)],
                           "visit_time": long(limits::VISIT_TIME)});
            visits.push(v);
            let payload = json!({"count": visits.len(), "visits": visits});
            if serde_json::to_vec(&payload).unwrap().len() > MAX_INLINE_WITHOUT_STORE {
                visits.pop();
                break;
            }
            i += 1;
        }
        let payload = json!({"count": visits.len(), "visits": visits});
        let mut image = Job::new(JobSpec::from_json("image", payload).unwrap(), 3, None, now).unwrap();
        image.start_parts(5, now).unwrap();
        let parts: Vec<PartResult> = (0..image_count(&image))
            .map(|i| PartResult {
                part: i as u32,
                images: vec![],
                errors: vec![StoreError {
                    store_id: format!("{i:06}{}", long(limits::STORE_ID - 6)),
                    url: Some(url(i)),
                    error: long(limits::REASON * 3),
                }],
            })
            .collect();
        let (result, error) = summarize(&parts);
        let run = image.run_key().unwrap();
        image.finish_parts(&run, &result, error, now).unwrap();
        fill_timeline(&mut image);

        // log_ingest: the longest key and name, 100 longest rejections
        let spec = JobSpec::from_json(
            "log_ingest",
            json!({"bucket": long(limits::BUCKET), "key": format!("{}.jsonl", long(limits::S3_KEY - 6)),
                   "file_name": long(limits::FILE_NAME), "size": u64::MAX}),
        )
        .unwrap();
        let mut ingest = Job::new(spec, 3, None, now).unwrap();
        ingest.claim(now, Duration::seconds(60)).unwrap();
        let rejected: Vec<_> = (0..100)
            .map(|n| crate::logs::Rejection::new(n, format!("unknown level {}", limits::quote(&long(5000)))).reason)
            .map(|reason| crate::logs::Rejection {
                line: u64::MAX,
                reason: limits::clip(&reason.repeat(10), limits::REASON),
                not_json: false,
            })
            .collect();
        let levels = ["trace", "debug", "info", "warn", "error", "fatal"]
            .iter()
            .map(|l| (l.to_string(), u64::MAX))
            .collect();
        let result = crate::job::IngestResult {
            lines_read: u64::MAX,
            lines_stored: u64::MAX,
            lines_rejected: u64::MAX,
            rejected,
            levels,
            bytes_read: u64::MAX,
        };
        ingest.complete(1, &result.into(), now).unwrap();
        fill_timeline(&mut ingest);

        // archive: the longest asset id and source, failed with the longest error
        let spec = JobSpec::from_json(
            "archive",
            json!({"asset_id": long(limits::ASSET_ID), "source": format!("s3://{}/{}", long(limits::BUCKET), long(limits::S3_KEY))}),
        )
        .unwrap();
        let mut archive = Job::new(spec, 3, None, now).unwrap();
        archive.claim(now, Duration::seconds(60)).unwrap();
        archive.fail_permanently(1, long(100_000), now).unwrap();
        fill_timeline(&mut archive);

        for job in [&image, &ingest, &archive] {
            let size = item_size(&job_item(job, shards::MAX_STATUS_SHARDS, shards::MAX_STATUS_SHARDS).unwrap());
            eprintln!("worst-case {} job item: {size} bytes", job.kind());
            assert!(size < LIMIT, "{} job item is {size} bytes", job.kind());
            assert!(
                size > 20 * 1024,
                "{} job item is only {size} bytes: not a worst case",
                job.kind()
            );
        }
        // a part of 25 failed images, each with the longest store id, URL and error
        let part = PartResult {
            part: u32::MAX,
            images: vec![],
            errors: (0..crate::job::IMAGES_PER_PART)
                .map(|i| StoreError {
                    store_id: long(limits::STORE_ID),
                    url: Some(url(i)),
                    error: limits::clip(&long(100_000), 200),
                })
                .collect(),
        };
        assert!(serde_json::to_string(&part).unwrap().len() < LIMIT / 4);
        // and the stored error of a job is short whatever it was given
        assert!(archive.error.as_ref().unwrap().chars().count() <= limits::JOB_ERROR);
    }

    fn image_count(job: &Job) -> usize {
        match &job.spec {
            crate::job::JobSpec::Image(p) => p.image_count(),
            _ => 0,
        }
    }

    /// The longest timeline a job can hold: its limit of entries of the longest message.
    fn fill_timeline(job: &mut Job) {
        let status = job.status;
        for _ in 0..crate::job::TIMELINE_LIMIT * 2 {
            job.timeline.push(crate::job::TimelineEntry {
                at: clock::now(),
                status,
                attempt: u32::MAX,
                message: "y".repeat(crate::limits::TIMELINE_MESSAGE),
            });
        }
        job.timeline.truncate(crate::job::TIMELINE_LIMIT);
    }
}
