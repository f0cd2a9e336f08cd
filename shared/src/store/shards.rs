//! Sharded status indexes: each job's status (and status+kind) index key carries a shard number,
//! `queued#3` / `queued#archive#3`, so the jobs of one status are spread over `STATUS_SHARDS`
//! GSI partitions instead of one (one partition's write limit would cap status changes). A job
//! keeps its shard for life (a hash of its id), so every status change writes the same shard of
//! the new status.
//!
//! A listing reads every partition (status x shard) it covers and merges them newest first by
//! `created_key` (`<created_at>#<id>`, one sort space across all of them). It reads a few jobs from
//! each partition first, then more only from the partitions that can still hold one of the page's
//! jobs, so a page costs about `limit` reads per status, not `limit` per partition. Both stores list
//! through [`merge`]; they differ only in how a partition is read ([`PartitionReader`]).
//!
//! The cursor ([`Cursor`]) carries every partition's position: the page's last `created_key`
//! (each partition goes on below it: the merge served everything above it) and the partitions that
//! are finished (not read again). It is versioned (`2|...`, base64url); a cursor of the unsharded
//! listing (the bare `created_key`) is refused with a 400 naming `next`.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::Page;
use crate::clock;
use crate::error::{Error, Result};
use crate::job::{Job, JobId};

/// Shards per status when `STATUS_SHARDS` is not set (the template's `StatusShards` default).
pub const DEFAULT_STATUS_SHARDS: u32 = 8;
/// The most shards a status may have (a listing of every status reads 6 x this many partitions).
pub const MAX_STATUS_SHARDS: u32 = 64;

/// Shards of `by_created_shard` (the listing of every status) when `LIST_SHARDS` is not set (the
/// template's `ListShards` default). That index takes one write per job, at its creation, where a
/// status partition takes about four a job: 2 list shards take the creations that the 8 status
/// shards' writes allow (docs/scale.md), and a page of every status reads 2 partitions, not 8.
pub const DEFAULT_LIST_SHARDS: u32 = 2;

/// `STATUS_SHARDS` from the environment (the template sets it from `StatusShards`), else 8.
/// Every function of a stack must see the same number: a job's keys are written with it, and a
/// listing reads exactly its shards (the sweeper re-keys the items written under another number:
/// [`super::DynamoJobStore::keep_keys_current`]).
pub fn status_shards_from_env() -> u32 {
    shards_from_env("STATUS_SHARDS", DEFAULT_STATUS_SHARDS)
}

/// `LIST_SHARDS` from the environment (the template sets it from `ListShards`), else 2. The same
/// rule as [`status_shards_from_env`].
pub fn list_shards_from_env() -> u32 {
    shards_from_env("LIST_SHARDS", DEFAULT_LIST_SHARDS)
}

fn shards_from_env(name: &str, default: u32) -> u32 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_STATUS_SHARDS).contains(&n) => n,
            _ => panic!("{name} must be a number from 1 to {MAX_STATUS_SHARDS}, not {v:?}"),
        },
    }
}

/// The shard of a job: FNV-1a of its id, so it is the same in every function and every version.
pub fn shard_of(id: JobId, shards: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % shards.max(1)
}

/// The sort key of every job index: `<created_at>#<id>`, unique, newest last.
pub fn created_key(job: &Job) -> String {
    format!("{}#{}", clock::format(job.created_at), job.id)
}

/// What a listing is sorted by. Every key ends in the job's id, so keys are unique and one sort
/// space spans every partition of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortBy {
    /// `created_key`: `<created_at>#<id>` (the `by_status_shard`/`by_status_kind_shard`/owner indexes).
    #[default]
    Created,
    /// `updated_key`: `<updated_at>#<id>` (`by_status_shard_updated`).
    Updated,
    /// `priority_key`: `<priority>#<created_at>#<id>` (`by_status_shard_priority`): by priority, then age.
    Priority,
}

impl SortBy {
    /// The job's key in this order.
    pub fn key(self, job: &Job) -> String {
        match self {
            SortBy::Created => created_key(job),
            SortBy::Updated => format!("{}#{}", clock::format(job.updated_at), job.id),
            SortBy::Priority => format!("{}#{}", job.priority, created_key(job)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SortBy::Created => "created",
            SortBy::Updated => "updated",
            SortBy::Priority => "priority",
        }
    }

    /// `created`, `updated` or `priority`; anything else is a 400 naming `sort`.
    pub fn parse(s: &str) -> Result<SortBy> {
        match s {
            "created" | "created_at" => Ok(SortBy::Created),
            "updated" | "updated_at" => Ok(SortBy::Updated),
            "priority" => Ok(SortBy::Priority),
            _ => Err(Error::Invalid(format!(
                "sort: must be created, updated or priority, not {s:?}"
            ))),
        }
    }
}

/// The order of a listing: a key, and which end first. The default is newest first by creation;
/// descending by `priority` is the highest priority first (newest first within one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Order {
    pub by: SortBy,
    /// Ascending: oldest (or lowest priority) first.
    pub ascending: bool,
}

impl Order {
    pub fn key(&self, job: &Job) -> String {
        self.by.key(job)
    }

    /// Whether key `a` is served before key `b`.
    pub fn before(&self, a: &str, b: &str) -> bool {
        if self.ascending { a < b } else { a > b }
    }
}

/// Where a listing goes on: below `boundary` in every partition but the `done` ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The `created_key` of the last job served.
    pub boundary: String,
    /// One flag per partition of the listing (statuses x shards, in the listing's order): nothing
    /// is left in it.
    pub done: Vec<bool>,
}

const VERSION: &str = "2";

impl Cursor {
    /// A cursor that goes on after `job` (newest first by creation), with no partition known to
    /// be finished.
    pub fn after(job: &Job) -> Cursor {
        Self::after_in(job, Order::default())
    }

    /// A cursor that goes on after `job` in `order`.
    pub fn after_in(job: &Job, order: Order) -> Cursor {
        Cursor {
            boundary: order.key(job),
            done: Vec::new(),
        }
    }

    pub fn encode(&self) -> String {
        let mut bits = vec![0u8; self.done.len().div_ceil(8)];
        for (i, d) in self.done.iter().enumerate() {
            if *d {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        let hex: String = bits.iter().map(|b| format!("{b:02x}")).collect();
        URL_SAFE_NO_PAD.encode(format!("{VERSION}|{}|{}|{hex}", self.boundary, self.done.len()))
    }

    /// Anything but a cursor of this version, garbage or a cursor of the older unsharded listing
    /// included, is the client's mistake, naming `next`.
    pub fn decode(cursor: &str) -> Result<Cursor> {
        let invalid = || {
            Error::Invalid(
                "next: not a valid cursor (a cursor of an older version expires: list again without next)".into(),
            )
        };
        let text = URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(invalid)?;
        let mut parts = text.split('|');
        let (Some(VERSION), Some(boundary), Some(count), Some(hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let count: usize = count.parse().map_err(|_| invalid())?;
        if !boundary.contains('#') || hex.len() != count.div_ceil(8) * 2 || count > 6 * MAX_STATUS_SHARDS as usize {
            return Err(invalid());
        }
        let bits = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(invalid)?, 16).map_err(|_| invalid()))
            .collect::<Result<Vec<u8>>>()?;
        let done = (0..count).map(|i| bits[i / 8] & (1 << (i % 8)) != 0).collect();
        Ok(Cursor {
            boundary: boundary.to_string(),
            done,
        })
    }

    /// Whether partition `i` of a listing of `count` partitions is finished. A cursor made for a
    /// listing of another shape (another filter, another shard count) knows none as finished.
    fn is_done(&self, i: usize, count: usize) -> bool {
        self.done.len() == count && self.done[i]
    }
}

/// What a partition of a listing yields: whole jobs, or only their keys (an index that projects
/// keys only, whose page is then read by key).
pub trait Listed: Clone + Send {
    fn id(&self) -> JobId;
    /// Of two copies of one job (read before and after a change), the higher is newer.
    fn version(&self) -> u64;
    /// Its key in `order`.
    fn key(&self, order: Order) -> String;
}

impl Listed for Job {
    fn id(&self) -> JobId {
        self.id
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn key(&self, order: Order) -> String {
        order.key(self)
    }
}

/// Reads one partition of a listing: the jobs of one status (and kind) in one shard.
#[async_trait]
pub trait PartitionReader: Sync {
    /// Where a read goes on (DynamoDB's `LastEvaluatedKey`).
    type Start: Send;
    /// What a read yields: [`Job`]s, or keys.
    type Item: Listed;

    /// Up to `n` jobs of partition `partition` in the listing's order (newest first by
    /// `created_key` unless the reader was made for another [`Order`]), past `before` in that
    /// order (when given), from `start` on; and where the next read goes on, `None` when there
    /// are no more.
    async fn read(
        &self,
        partition: usize,
        before: Option<&str>,
        start: Option<Self::Start>,
        n: usize,
    ) -> Result<(Vec<Self::Item>, Option<Self::Start>)>;
}

struct Partition<S, T> {
    jobs: Vec<T>,
    start: Option<S>,
    more: bool,
    batch: usize,
}

/// One page of `limit` jobs, newest first, merged from `partitions` partitions of `shards` shards
/// each status (partition `i` is status `i / shards`, shard `i % shards`; 1 for an unsharded index).
/// Partitions flagged in `empty` (known to hold nothing, e.g. a status whose counter is 0) are
/// not read.
pub async fn merge<R: PartitionReader<Item = Job>>(
    reader: &R,
    partitions: usize,
    shards: u32,
    empty: &[bool],
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page> {
    merge_in(reader, Order::default(), partitions, shards, empty, limit, cursor).await
}

/// [`merge`] in any [`Order`]: `reader` reads its partitions in that order (a GSI whose sort key
/// is the order's key, queried forward or backward).
pub async fn merge_in<R: PartitionReader<Item = Job>>(
    reader: &R,
    order: Order,
    partitions: usize,
    shards: u32,
    empty: &[bool],
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page> {
    let (jobs, next) = merge_items(reader, order, partitions, shards, empty, limit, cursor).await?;
    Ok(Page { jobs, next })
}

/// [`merge_in`] of a reader of any [`Listed`] items: the page's items in order, and its cursor.
pub async fn merge_items<R: PartitionReader>(
    reader: &R,
    order: Order,
    partitions: usize,
    shards: u32,
    empty: &[bool],
    limit: usize,
    cursor: Option<&str>,
) -> Result<(Vec<R::Item>, Option<String>)> {
    let limit = limit.clamp(1, 500);
    let cursor = cursor.map(Cursor::decode).transpose()?;
    let before = cursor.as_ref().map(|c| c.boundary.clone());
    // About twice a shard's share of a page first: most pages need one round.
    let first = ((limit + 1).div_ceil(shards.max(1) as usize) * 2).max(4).min(limit + 1);
    let mut parts: Vec<Partition<R::Start, R::Item>> = (0..partitions)
        .map(|i| Partition {
            jobs: Vec::new(),
            start: None,
            more: !empty.get(i).copied().unwrap_or(false) && !cursor.as_ref().is_some_and(|c| c.is_done(i, partitions)),
            batch: first,
        })
        .collect();
    let serve_order = |a: &String, b: &String| if order.ascending { a.cmp(b) } else { b.cmp(a) };
    let mut want: Vec<usize> = (0..partitions).filter(|&i| parts[i].more).collect();
    while !want.is_empty() {
        let reads = want.iter().map(|&i| {
            let start = parts[i].start.take();
            reader.read(i, before.as_deref(), start, parts[i].batch)
        });
        let results = futures::future::try_join_all(reads).await?;
        for (&i, (jobs, next)) in want.iter().zip(results) {
            let p = &mut parts[i];
            p.more = next.is_some();
            p.start = next;
            p.jobs.extend(jobs);
            p.batch = (p.batch * 2).min(limit + 1);
        }
        // The (limit+1)-th job read so far in the page's order: a partition whose last read job
        // comes after it cannot hold one of the page's jobs (or the one that says there is a
        // next page).
        let mut keys: Vec<String> = parts.iter().flat_map(|p| p.jobs.iter().map(|j| j.key(order))).collect();
        keys.sort_unstable_by(serve_order);
        let cut = keys.get(limit).cloned();
        want = (0..partitions)
            .filter(|&i| {
                let p = &parts[i];
                p.more
                    && match (&cut, p.jobs.last()) {
                        (Some(cut), Some(last)) => order.before(&last.key(order), cut),
                        _ => true,
                    }
            })
            .collect();
    }
    let more_unread = parts.iter().any(|p| p.more);
    // A job that changed between two reads is in two partitions (another status, or another
    // `updated_key`): keep its newer version.
    let mut newest: std::collections::HashMap<JobId, &R::Item> = std::collections::HashMap::new();
    for j in parts.iter().flat_map(|p| p.jobs.iter()) {
        let e = newest.entry(j.id()).or_insert(j);
        if j.version() > e.version() {
            *e = j;
        }
    }
    let mut jobs: Vec<(String, R::Item)> = newest.into_values().map(|j| (j.key(order), j.clone())).collect();
    jobs.sort_by(|(ka, _), (kb, _)| serve_order(ka, kb));
    let more = more_unread || jobs.len() > limit;
    jobs.truncate(limit);
    let next = match (more, jobs.last()) {
        (true, Some((boundary, _))) => Some(
            Cursor {
                boundary: boundary.clone(),
                done: parts
                    .iter()
                    .map(|p| !p.more && p.jobs.iter().all(|j| !order.before(boundary, &j.key(order))))
                    .collect(),
            }
            .encode(),
        ),
        _ => None,
    };
    Ok((jobs.into_iter().map(|(_, j)| j).collect(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_older_or_garbage_ones_name_next() {
        let c = Cursor {
            boundary: "2026-11-23T10:00:00.000Z#abc".into(),
            done: (0..13).map(|i| i % 3 == 0).collect(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        let empty = Cursor {
            boundary: "x#y".into(),
            done: vec![],
        };
        assert_eq!(Cursor::decode(&empty.encode()).unwrap(), empty);
        // The unsharded listing's cursor: the bare created_key, base64url.
        let old = URL_SAFE_NO_PAD.encode("2026-11-23T10:00:00.000Z#abc");
        for bad in [old.as_str(), "!!", "", &URL_SAFE_NO_PAD.encode("2|a#b|9|00")] {
            match Cursor::decode(bad) {
                Err(Error::Invalid(m)) => assert!(m.starts_with("next:"), "{m}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let ids: Vec<JobId> = (0..800).map(|_| JobId::new()).collect();
        let mut counts = [0usize; 8];
        for id in &ids {
            let s = shard_of(*id, 8);
            assert_eq!(s, shard_of(*id, 8));
            counts[s as usize] += 1;
        }
        // 100 expected per shard; a fair hash stays well inside 50..150.
        assert!(counts.iter().all(|&c| (50..150).contains(&c)), "{counts:?}");
        assert!(ids.iter().all(|id| shard_of(*id, 1) == 0));
    }

    use crate::auth::{Owner, Scope};
    use crate::job::{JobKind, JobSpec, JobStatus};
    use crate::store::memory::MemoryJobStore;
    use crate::store::{JobStore, ListFilter};
    use std::sync::Mutex;

    /// `n` jobs a second apart (so the order is known), statuses and kinds mixed, some owned by alice.
    fn jobs(n: usize) -> Vec<Job> {
        let t0 = clock::now() - time::Duration::days(1);
        (0..n)
            .map(|i| {
                let spec = if i % 3 == 0 {
                    JobSpec::from_json("email", serde_json::json!({"to": format!("u{i}@example.com")}))
                } else {
                    JobSpec::from_json(
                        "archive",
                        serde_json::json!({"asset_id": format!("a{i}"), "source": "s3://b/k"}),
                    )
                };
                let mut job = Job::new(spec.unwrap(), 3, None, t0 + time::Duration::seconds(i as i64)).unwrap();
                job.status = JobStatus::ALL[i * 7 % 5];
                if i % 4 == 0 {
                    job.owner = Some(Owner::parse("alice").unwrap());
                }
                job
            })
            .collect()
    }

    async fn all_pages(store: &MemoryJobStore, filter: &ListFilter, limit: usize) -> Vec<Job> {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let page = store.list(filter, limit, cursor.as_deref()).await.unwrap();
            assert!(page.jobs.len() <= limit);
            seen.extend(page.jobs);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return seen,
            }
        }
        panic!("listing did not end");
    }

    #[tokio::test]
    async fn pages_merge_the_shards_newest_first_and_cursors_go_on_across_them() {
        let all = jobs(97);
        for shards in [1, 3, 8] {
            let store = MemoryJobStore::new().with_status_shards(shards);
            for j in &all {
                store.put(j.clone());
            }
            let filters = [
                ListFilter::default(),
                ListFilter {
                    statuses: vec![JobStatus::Pending, JobStatus::Failed],
                    ..Default::default()
                },
                ListFilter {
                    kind: Some(JobKind::Archive),
                    ..Default::default()
                },
                ListFilter {
                    scope: Scope::Owner(Owner::parse("alice").unwrap()),
                    ..Default::default()
                },
            ];
            for filter in &filters {
                let mut want: Vec<Job> = all
                    .iter()
                    .filter(|j| filter.statuses.is_empty() || filter.statuses.contains(&j.status))
                    .filter(|j| filter.kind.is_none_or(|k| j.kind() == k))
                    .filter(|j| match &filter.scope {
                        Scope::All => true,
                        Scope::Owner(o) => j.owner.as_ref() == Some(o),
                    })
                    .cloned()
                    .collect();
                want.reverse(); // newest first
                assert!(want.len() > 10, "{filter:?}");
                for limit in [1, 4, 7, 50, 500] {
                    let got = all_pages(&store, filter, limit).await;
                    let ids = |v: &[Job]| v.iter().map(|j| j.id).collect::<Vec<_>>();
                    assert_eq!(ids(&got), ids(&want), "{shards} shards, limit {limit}, {filter:?}");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_page_ended_early_goes_on_from_its_last_job_and_old_cursors_name_next() {
        let store = MemoryJobStore::new().with_status_shards(4);
        let all = jobs(40);
        for j in &all {
            store.put(j.clone());
        }
        let filter = ListFilter::default();
        let page = store.list(&filter, 10, None).await.unwrap();
        // The api ends a page early (its 5 MB bound) with cursor_after(the last job it serves).
        let early = crate::store::table::cursor_after(&page.jobs[3]);
        let next = store.list(&filter, 10, Some(&early)).await.unwrap();
        assert_eq!(next.jobs[0].id, page.jobs[4].id);
        assert_eq!(next.jobs.len(), 10);
        let old = URL_SAFE_NO_PAD.encode(created_key(&page.jobs[3]));
        match store.list(&filter, 10, Some(&old)).await {
            Err(Error::Invalid(m)) => assert!(m.starts_with("next:"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    /// Partitions as lists of jobs (newest first), counting the jobs each read returns.
    struct Counting {
        parts: Vec<Vec<Job>>,
        read: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl PartitionReader for Counting {
        type Start = usize;
        type Item = Job;
        async fn read(
            &self,
            partition: usize,
            before: Option<&str>,
            start: Option<usize>,
            n: usize,
        ) -> Result<(Vec<Job>, Option<usize>)> {
            let from = start.unwrap_or_else(|| {
                self.parts[partition]
                    .iter()
                    .position(|j| before.is_none_or(|b| created_key(j).as_str() < b))
                    .unwrap_or(self.parts[partition].len())
            });
            let page: Vec<Job> = self.parts[partition].iter().skip(from).take(n).cloned().collect();
            self.read.lock().unwrap()[partition] += page.len();
            let end = from + page.len();
            Ok((page, (end < self.parts[partition].len()).then_some(end)))
        }
    }

    #[tokio::test]
    async fn a_page_reads_about_its_share_of_each_shard_and_finished_shards_are_not_read_again() {
        // 8 shards of one status, 400 jobs spread evenly, and one shard with only the 8 oldest.
        let all = jobs(408);
        let mut parts = vec![Vec::new(); 8];
        for (i, j) in all.iter().enumerate().rev() {
            let p = if i < 8 { 7 } else { i % 7 };
            parts[p].push(j.clone());
        }
        let reader = Counting {
            parts,
            read: Mutex::new(vec![0; 8]),
        };
        let page = merge(&reader, 8, 8, &[], 50, None).await.unwrap();
        let newest: Vec<JobId> = all.iter().rev().take(50).map(|j| j.id).collect();
        assert_eq!(page.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), newest);
        let read: usize = reader.read.lock().unwrap().iter().sum();
        assert!(read <= 2 * 51 + 8 * 14, "read {read} jobs for a page of 50");
        // Page on until shard 7 (the oldest jobs) is reached, then past it: the cursor marks it
        // finished once its jobs are all served, and it is not read again.
        let mut cursor = page.next;
        let mut served = 50;
        while let Some(c) = cursor {
            let before = reader.read.lock().unwrap()[7];
            let finished = Cursor::decode(&c).unwrap().done[7];
            let page = merge(&reader, 8, 8, &[], 50, Some(&c)).await.unwrap();
            if finished {
                assert_eq!(
                    reader.read.lock().unwrap()[7],
                    before,
                    "a finished shard was read again"
                );
            }
            served += page.jobs.len();
            cursor = page.next;
        }
        assert_eq!(served, 408);

        // Partitions known to be empty are not read at all.
        *reader.read.lock().unwrap() = vec![0; 8];
        let empty = [false, true, false, false, false, false, false, true];
        let page = merge(&reader, 8, 8, &empty, 500, None).await.unwrap();
        let read = reader.read.lock().unwrap().clone();
        assert_eq!((read[1], read[7]), (0, 0), "{read:?}");
        assert_eq!(page.jobs.len(), 400 - reader.parts[1].len());
    }
}
