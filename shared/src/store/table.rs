//! The layout of the jobs table: one table, several item types, two sparse GSIs.
//!
//! | item            | pk                     | sk       | notes                                   |
//! |-----------------|------------------------|----------|-----------------------------------------|
//! | job             | `JOB#<id>`             | `JOB`    | + `status`, `status_kind`, `created_key` |
//! | idempotency key | `IDEM#<key>`           | `IDEM`   | `job_id`, `fingerprint`, TTL            |
//! | status counts   | `STATS#<shard>`        | `COUNT`  | `s_<status>`, `k_<kind>` (ADD only)     |
//! | completions     | `MINUTE#<yyyy-mm-ddThh:mm>` | `COUNT` | `completed`, TTL                    |
//! | image job parts | `JOB#<id>`             | `PART#..`, `PARTS#..` | see [`super::parts`]          |
//!
//! GSI `by_status` (pk `status`, sk `created_key`) and `by_status_kind` (pk `status_kind`, sk
//! `created_key`) hold only jobs; `created_key` = `<created_at>#<id>`, so newest first is a
//! descending query and the cursor of a page is simply the last `created_key` served.
//! The names must match `template.yaml`.

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const STATUS: &str = "status";
pub const STATUS_KIND: &str = "status_kind";
pub const CREATED_KEY: &str = "created_key";
pub const TTL: &str = "expires_at";
pub const BY_STATUS: &str = "by_status";
pub const BY_STATUS_KIND: &str = "by_status_kind";

/// Counter items are spread over this many partitions so hot counters do not throttle.
pub const STATS_SHARDS: u32 = 8;

pub fn job_pk(id: impl std::fmt::Display) -> String {
    format!("JOB#{id}")
}
