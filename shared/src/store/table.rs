//! The layout of the jobs table: one table, several item types, eight sparse GSIs.
//!
//! | item            | pk                     | sk       | notes                                   |
//! |-----------------|------------------------|----------|-----------------------------------------|
//! | job             | `JOB#<id>`             | `JOB`    | + `status_shard`, `status_kind_shard`, `created_key`; owned jobs + `owner_status`, `owner_status_kind` |
//! | idempotency key | `IDEM#<key>`           | `IDEM`   | `job_id`, `fingerprint`, TTL            |
//! | status counts   | `STATS#<shard>`        | `COUNT`  | `s_<status>`, `k_<kind>`, `scheduled` (ADD only) |
//! | an owner's counts | `OWNER#<owner>`      | `COUNT`  | `s_<status>`, `k_<kind>`, `scheduled`, `inflight` |
//! | completions, failures | `MINUTE#<yyyy-mm-ddThh>#<shard>` | `COUNT` | `m<mm>` completions, `f<mm>` failures per minute of the hour, TTL ([`completions_key`], [`failures_key`]) |
//! | an owner's completions | `OMINUTE#<owner>#<yyyy-mm-ddThh>` | `COUNT` | the same, one item an hour |
//! | an owner's use of a limit | `QUOTA#<owner>#<limit>#<window>` | `USE` | `used`, TTL         |
//! | image job parts | `JOB#<id>`             | `PART#..`, `PARTS#..` | see [`super::parts`]          |
//! | index keying    | `KEYS`                 | `SHARDS` | `keyed` (`status 8, list 2`), a pass's `pass`, `from_pk`, `from_sk` |
//!
//! GSI `by_status_shard` (pk `status_shard` = `<status>#<shard>`, sk `created_key`) and
//! `by_status_kind_shard` (pk `status_kind_shard` = `<status>#<kind>#<shard>`, sk `created_key`)
//! hold only jobs, each status spread over `STATUS_SHARDS` partitions ([`super::shards`]);
//! `created_key` = `<created_at>#<id>`, so newest first is a descending query, merged over the
//! shards; the cursor of a page is [`super::shards::Cursor`].
//! `by_status_shard_updated` (sk `updated_key` = `<updated_at>#<id>`) and `by_status_shard_priority`
//! (sk `priority_key` = `<priority>#<created_at>#<id>`) share `status_shard` as their pk: the
//! listings sorted by last change or by priority (a kind or owner filter is a filter expression
//! on them).
//! `by_created_shard` (pk `created_shard` = `<shard>` of `LIST_SHARDS`, sk `created_key`, keys only) holds every job
//! once, whatever its status: the listing of every status reads its `LIST_SHARDS` partitions and
//! then the page's jobs by key. A job's keys there never change, so status changes do not write it.
//! `by_wake` (pk `wake_shard` = `<shard>`, sk `wake_key` = `<scheduled_for>#<id>`) holds only the
//! parked jobs (due more than 15 minutes after creation, no message yet): the sweeper's
//! [`super::JobStore::due_to_wake`] reads it soonest first.
//! `FIND#<term>` / `<created_key>` items (`job_id`) are the search's lookups, written in the job's
//! creating transaction ([`super::find_terms`]).
//! `by_owner_status` (pk `<owner>#<status>`) and `by_owner_status_kind` (pk
//! `<owner>#<status>#<kind>`) are the same per owner, for listings of one owner's jobs.
//! The names must match `template.yaml`.

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const STATUS_SHARD: &str = "status_shard";
pub const STATUS_KIND_SHARD: &str = "status_kind_shard";
pub const CREATED_KEY: &str = "created_key";
/// `<updated_at>#<id>`: the sort key of `by_status_shard_updated`.
pub const UPDATED_KEY: &str = "updated_key";
/// `<priority>#<created_at>#<id>`: the sort key of `by_status_shard_priority`.
pub const PRIORITY_KEY: &str = "priority_key";
/// `<shard>`: the job's shard of `LIST_SHARDS`, for `by_created_shard` (every job, keys only, sk `created_key`).
pub const CREATED_SHARD: &str = "created_shard";
pub const BY_CREATED_SHARD: &str = "by_created_shard";
/// `<shard>` and `<scheduled_for>#<id>` of a parked job ([`crate::job::Job::is_parked`]), for
/// `by_wake`: what the sweeper sends once it is due within 15 minutes.
pub const WAKE_SHARD: &str = "wake_shard";
pub const WAKE_KEY: &str = "wake_key";
pub const BY_WAKE: &str = "by_wake";
pub const BY_STATUS_SHARD_UPDATED: &str = "by_status_shard_updated";
pub const BY_STATUS_SHARD_PRIORITY: &str = "by_status_shard_priority";
pub const TTL: &str = "expires_at";
pub const BY_STATUS_SHARD: &str = "by_status_shard";
pub const BY_STATUS_KIND_SHARD: &str = "by_status_kind_shard";
pub const OWNER_STATUS: &str = "owner_status";
pub const OWNER_STATUS_KIND: &str = "owner_status_kind";
pub const BY_OWNER_STATUS: &str = "by_owner_status";
pub const BY_OWNER_STATUS_KIND: &str = "by_owner_status_kind";

/// Every attribute of a job item that keys one of its indexes: what re-keying compares and sets.
pub const INDEX_KEYS: &[&str] = &[
    STATUS_SHARD,
    STATUS_KIND_SHARD,
    CREATED_SHARD,
    CREATED_KEY,
    UPDATED_KEY,
    PRIORITY_KEY,
    WAKE_SHARD,
    WAKE_KEY,
    OWNER_STATUS,
    OWNER_STATUS_KIND,
];
/// The item that notes the shard counts the job items are keyed with (`keyed`), or, while a
/// re-keying pass is under way, the counts it keys with and how far it got (`pass`, `from_pk`,
/// `from_sk`).
pub const KEYS_PK: &str = "KEYS";
pub const KEYS_SK: &str = "SHARDS";
/// An owner's jobs pending, queued or processing, on its `OWNER#<owner>` counter item.
pub const INFLIGHT: &str = "inflight";
/// Jobs waiting for a later start ([`crate::job::Job::is_scheduled`]), on the `STATS#<shard>`
/// and `OWNER#<owner>` counter items, moved in the job's own transaction.
pub const SCHEDULED: &str = "scheduled";

/// Counter items are spread over this many partitions so hot counters do not throttle.
pub const STATS_SHARDS: u32 = 8;

/// Completions per minute live in one item per hour (and shard): attribute `m<mm>` counts the
/// minute `<mm>` of that hour, so the overview's last hour is 2 hours x the shards, not 60 items.
/// Every completion adds to one of this many shards of its hour (chosen at random), so one item's
/// partition (1,000 writes/s, 2 per transactional `ADD`) caps completions at 2,000/s, not 500/s.
/// An owner's series (`OMINUTE#`) is not sharded: the owner's own counter (`OWNER#`) caps it lower.
pub const MINUTE_SHARDS: u32 = 4;

/// The item key (`<hour>`, the minute key's first 13 characters) and the attribute (`m<mm>`) that
/// count the completions of the minute `minute` (a [`crate::clock::minute_key`]).
pub fn completions_key(minute: &str) -> (&str, String) {
    let (hour, mm) = minute.split_at(minute.len().min(13));
    (hour, format!("m{}", mm.trim_start_matches(':')))
}

/// The item key and the attribute (`f<mm>`) that count the failures (moves to `failed`) of the
/// minute `minute`: the same items as the completions, beside them.
pub fn failures_key(minute: &str) -> (&str, String) {
    let (hour, mm) = minute.split_at(minute.len().min(13));
    (hour, format!("f{}", mm.trim_start_matches(':')))
}

/// `BatchGetItem` reads at most this many keys per call.
pub const BATCH_GET_KEYS: usize = 100;

pub fn job_pk(id: impl std::fmt::Display) -> String {
    format!("JOB#{id}")
}

/// The size DynamoDB counts for an item (its 400 KB limit): attribute names plus values, UTF-8
/// bytes of strings, about a byte per two digits of a number plus one, one byte for a boolean or
/// null, three bytes of overhead per map or list plus a byte per element.
pub fn item_size(item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::S(s) => s.len(),
        A::N(n) => n.len().div_ceil(2) + 1,
        A::B(b) => b.as_ref().len(),
        A::Bool(_) | A::Null(_) => 1,
        A::Ss(v) => v.iter().map(String::len).sum(),
        A::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        A::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        A::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}

/// The cursor of a listing that goes on after `job` (newest first), every partition below it
/// (none known to be finished). The api uses it to end a page early.
pub fn cursor_after(job: &crate::job::Job) -> String {
    super::shards::Cursor::after(job).encode()
}

/// The cursor of a listing in `order` that goes on after `job`.
pub fn cursor_after_in(job: &crate::job::Job, order: super::shards::Order) -> String {
    super::shards::Cursor::after_in(job, order).encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_counts_on_its_hours_item_under_its_minute() {
        assert_eq!(
            completions_key("2026-12-01T02:26"),
            ("2026-12-01T02", "m26".to_string())
        );
        assert_eq!(
            completions_key("2026-12-31T23:00"),
            ("2026-12-31T23", "m00".to_string())
        );
        assert_eq!(failures_key("2026-12-01T02:26"), ("2026-12-01T02", "f26".to_string()));
    }
}
