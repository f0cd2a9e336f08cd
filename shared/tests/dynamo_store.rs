//! `DynamoJobStore` against the DynamoDB emulator, each test on its own provisioned table.

use std::collections::HashMap;
use std::sync::Arc;

use local_bridge::testing::TestStack;
use serde_json::json;
use shared::auth::Scope;
use shared::clock;
use shared::job::{ArchiveResult, ClaimRefused, Job, JobKind, JobSpec, JobStatus};
use shared::store::{Created, DynamoJobStore, IdempotencyKey, JobStore, ListFilter};
use time::Duration;

async fn store() -> (TestStack, Arc<DynamoJobStore>) {
    let t = TestStack::new(None).await;
    let store = Arc::new(DynamoJobStore::new(
        shared::aws::Clients::from_config(&shared::aws::sdk_config().await).dynamodb,
        t.var("JOBS_TABLE"),
    ));
    (t, store)
}

fn spec(kind: JobKind, n: usize) -> JobSpec {
    match kind {
        JobKind::Archive => JobSpec::from_json("archive", json!({"asset_id": format!("a{n}"), "source": "s3://b/k"})),
        JobKind::Image => JobSpec::from_json(
            "image",
            json!({"count": 1, "visits": [{"store_id": "S1", "image_url": ["http://x/a.jpg"], "visit_time": "t"}]}),
        ),
        JobKind::LogIngest => JobSpec::from_json("log_ingest", json!({"bucket": "b", "key": format!("k{n}.jsonl")})),
        JobKind::Email => JobSpec::from_json("email", json!({"to": format!("u{n}@example.com")})),
        JobKind::Notification => JobSpec::from_json(
            "notification",
            json!({"user_id": format!("u{n}"), "channel": "sms", "message": "m"}),
        ),
        JobKind::Report => JobSpec::from_json(
            "report",
            json!({"report_type": "r", "date_range": {"start": "2026-11-01", "end": "2026-11-02"}}),
        ),
    }
    .unwrap()
}

async fn new_job(store: &DynamoJobStore, kind: JobKind, n: usize) -> Job {
    let job = Job::new(spec(kind, n), 3, None, clock::now()).unwrap();
    match store.create(&job, None, &[]).await.unwrap() {
        Created::New(j) => j,
        Created::Existing(_) => unreachable!(),
    }
}

#[tokio::test]
async fn a_job_round_trips_through_dynamodb() {
    let (_t, store) = store().await;
    let job = new_job(&store, JobKind::Image, 0).await;
    assert_eq!(store.get(job.id).await.unwrap(), Some(job.clone()));
    let changed = store
        .modify(job.id, &mut |j| {
            j.transition(JobStatus::Queued, clock::now(), "enqueued")
        })
        .await
        .unwrap();
    assert_eq!(changed.version, 1);
    assert_eq!(store.get(job.id).await.unwrap().unwrap(), changed);
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_job_and_refuses_a_different_request() {
    let (_t, store) = store().await;
    let key = IdempotencyKey {
        key: "order-17".into(),
        fingerprint: "f1".into(),
    };
    let first = Job::new(spec(JobKind::Archive, 1), 3, None, clock::now()).unwrap();
    assert!(matches!(
        store.create(&first, Some(&key), &[]).await.unwrap(),
        Created::New(_)
    ));
    let second = Job::new(spec(JobKind::Archive, 1), 3, None, clock::now()).unwrap();
    match store.create(&second, Some(&key), &[]).await.unwrap() {
        Created::Existing(j) => assert_eq!(j.id, first.id),
        other => panic!("expected the existing job, got {other:?}"),
    }
    assert_eq!(store.get(second.id).await.unwrap(), None, "no second job written");
    let other = IdempotencyKey {
        key: "order-17".into(),
        fingerprint: "f2".into(),
    };
    let err = store.create(&second, Some(&other), &[]).await.unwrap_err();
    assert!(matches!(err, shared::Error::Conflict(_)), "{err}");
    assert_eq!(store.stats(&Scope::All, clock::now()).await.unwrap().total, 1);
}

#[tokio::test]
async fn of_concurrent_claims_of_one_job_exactly_one_wins() {
    let (_t, store) = store().await;
    let job = new_job(&store, JobKind::Archive, 0).await;
    let claims = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut refused = None;
            let r = store
                .modify(job.id, &mut |j| {
                    j.claim(clock::now(), Duration::seconds(60)).map_err(|e| {
                        refused = Some(e);
                        shared::Error::Conflict("refused".into())
                    })
                })
                .await;
            (r.is_ok(), refused)
        })
    });
    let results: Vec<_> = futures::future::join_all(claims)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results.iter().filter(|(won, _)| *won).count(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|(won, _)| !won)
            .all(|(_, r)| matches!(r, Some(ClaimRefused::Busy { .. })))
    );
    let stored = store.get(job.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.attempts), (JobStatus::Processing, 1));
}

#[tokio::test]
async fn an_illegal_transition_is_refused_and_nothing_is_written() {
    let (_t, store) = store().await;
    let job = new_job(&store, JobKind::Archive, 0).await;
    let err = store
        .modify(job.id, &mut |j| j.transition(JobStatus::Completed, clock::now(), "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, shared::Error::Conflict(_)));
    assert_eq!(store.get(job.id).await.unwrap().unwrap(), job);
}

/// Walks every page of a listing; checks order and that no job is served twice.
async fn walk(store: &DynamoJobStore, filter: &ListFilter, limit: usize) -> (Vec<Job>, usize) {
    let (mut all, mut pages, mut cursor) = (Vec::new(), 0, None);
    loop {
        let page = store.list(filter, limit, cursor.as_deref()).await.unwrap();
        assert!(page.jobs.len() <= limit);
        pages += 1;
        all.extend(page.jobs);
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    for pair in all.windows(2) {
        assert!(
            (pair[0].created_at, pair[0].id) > (pair[1].created_at, pair[1].id),
            "newest first"
        );
    }
    let mut ids: Vec<_> = all.iter().map(|j| j.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "no duplicates across pages");
    (all, pages)
}

#[tokio::test]
async fn pagination_through_250_jobs_with_filters_serves_each_once_newest_first() {
    let (_t, store) = store().await;
    let kinds = [JobKind::Archive, JobKind::Image, JobKind::LogIngest];
    let mut expected: HashMap<(JobStatus, JobKind), usize> = HashMap::new();
    let creates = (0..250).map(|n| {
        let store = store.clone();
        async move {
            let kind = kinds[n % 3];
            let job = new_job(&store, kind, n).await;
            let status = match n % 5 {
                0 => JobStatus::Pending,
                1 | 2 => {
                    store
                        .modify(job.id, &mut |j| j.transition(JobStatus::Queued, clock::now(), "q"))
                        .await
                        .unwrap();
                    JobStatus::Queued
                }
                _ => {
                    store.modify(job.id, &mut |j| j.cancel(clock::now())).await.unwrap();
                    JobStatus::Cancelled
                }
            };
            (status, kind)
        }
    });
    for (status, kind) in futures::stream::StreamExt::collect::<Vec<_>>(futures::stream::StreamExt::buffer_unordered(
        futures::stream::iter(creates),
        16,
    ))
    .await
    {
        *expected.entry((status, kind)).or_default() += 1;
    }

    let (all, pages) = walk(&store, &ListFilter::default(), 40).await;
    assert_eq!(all.len(), 250);
    assert_eq!(pages, 7);

    let queued_or_cancelled = ListFilter {
        statuses: vec![JobStatus::Queued, JobStatus::Cancelled],
        kind: None,
        ..Default::default()
    };
    let (jobs, _) = walk(&store, &queued_or_cancelled, 33).await;
    let want: usize = expected
        .iter()
        .filter(|((s, _), _)| *s != JobStatus::Pending)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(jobs.len(), want);
    assert!(
        jobs.iter()
            .all(|j| matches!(j.status, JobStatus::Queued | JobStatus::Cancelled))
    );

    let queued_images = ListFilter {
        statuses: vec![JobStatus::Queued],
        kind: Some(JobKind::Image),
        ..Default::default()
    };
    let (jobs, _) = walk(&store, &queued_images, 7).await;
    assert_eq!(jobs.len(), expected[&(JobStatus::Queued, JobKind::Image)]);
    assert!(
        jobs.iter()
            .all(|j| j.status == JobStatus::Queued && j.kind() == JobKind::Image)
    );

    let err = store
        .list(&ListFilter::default(), 10, Some("garbage!"))
        .await
        .unwrap_err();
    assert!(matches!(err, shared::Error::Invalid(_)));
}

#[tokio::test]
async fn stats_equal_a_full_count_after_a_burst_of_mixed_transitions() {
    let (_t, store) = store().await;
    let kinds = [JobKind::Archive, JobKind::Image, JobKind::LogIngest];
    let work = (0..60).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            let job = new_job(&store, kinds[n % 3], n).await;
            let id = job.id;
            let step = |f: fn(&mut Job) -> shared::Result<()>| {
                let store = store.clone();
                async move { store.modify(id, &mut |j| f(j)).await.unwrap() }
            };
            match n % 6 {
                0 => {}
                1 => {
                    step(|j| j.cancel(clock::now())).await;
                }
                2 => {
                    step(|j| j.transition(JobStatus::Queued, clock::now(), "q")).await;
                    step(|j| {
                        j.claim(clock::now(), Duration::seconds(30))
                            .map_err(|_| shared::Error::Conflict("x".into()))
                    })
                    .await;
                }
                3 => {
                    step(|j| {
                        j.claim(clock::now(), Duration::seconds(30))
                            .map_err(|_| shared::Error::Conflict("x".into()))
                    })
                    .await;
                    step(|j| j.complete(1, &ArchiveResult::example(), clock::now())).await;
                }
                4 => {
                    step(|j| {
                        j.claim(clock::now(), Duration::seconds(30))
                            .map_err(|_| shared::Error::Conflict("x".into()))
                    })
                    .await;
                    step(|j| j.fail_permanently(1, "boom", clock::now())).await;
                    step(|j| j.retry(clock::now())).await;
                }
                _ => {
                    step(|j| {
                        j.claim(clock::now(), Duration::seconds(30))
                            .map_err(|_| shared::Error::Conflict("x".into()))
                    })
                    .await;
                    step(|j| j.fail_permanently(1, "boom", clock::now())).await;
                }
            }
        })
    });
    for w in futures::future::join_all(work).await {
        w.unwrap();
    }
    let (all, _) = walk(&store, &ListFilter::default(), 100).await;
    let stats = store.stats(&Scope::All, clock::now()).await.unwrap();
    assert_eq!(stats.total, all.len() as i64);
    for status in JobStatus::ALL {
        let listed = all.iter().filter(|j| j.status == status).count() as i64;
        assert_eq!(stats.by_status[status.as_str()], listed, "{status}");
    }
    for kind in JobKind::ALL {
        let listed = all.iter().filter(|j| j.kind() == kind).count() as i64;
        assert_eq!(stats.by_kind[kind.as_str()], listed, "{kind}");
    }
    assert_eq!(stats.by_status["completed"], 10);
    assert_eq!(stats.completed_per_minute.len(), 60);
    assert_eq!(stats.completed_per_minute.iter().map(|m| m.completed).sum::<i64>(), 10);
}

/// The sweeper's view of the table: jobs of one status created before a time, oldest first,
/// from the status index; and one sweep against DynamoDB and SQS.
#[tokio::test]
async fn the_sweeper_finds_stuck_jobs_by_index_and_ends_or_restarts_them() {
    use shared::queue::SqsJobQueue;
    use shared::sweep::{Bounds, Sweeper};
    let (t, store) = store().await;
    let now = clock::now();
    let mut created = Vec::new();
    for (n, mins) in [(0, 50), (1, 40), (2, 1)] {
        let mut job = Job::new(spec(JobKind::Archive, n), 3, None, now - Duration::minutes(mins)).unwrap();
        job.transition(JobStatus::Queued, now - Duration::minutes(mins), "enqueued")
            .unwrap();
        store.create(&job, None, &[]).await.unwrap();
        created.push(job);
    }
    // an ingest whose run died: processing, its lease long gone, no attempts left
    let mut dead = Job::new(spec(JobKind::LogIngest, 9), 3, None, now - Duration::minutes(30)).unwrap();
    dead.attempts = 2;
    dead.claim(now - Duration::minutes(30), Duration::seconds(360)).unwrap();
    store.create(&dead, None, &[]).await.unwrap();

    let old = store
        .oldest(JobStatus::Queued, now - Duration::minutes(20), 10)
        .await
        .unwrap();
    assert_eq!(
        old.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![created[0].id, created[1].id]
    );
    assert_eq!(store.oldest(JobStatus::Queued, now, 1).await.unwrap().len(), 1, "limit");

    let clients = shared::aws::Clients::from_config(&shared::aws::sdk_config().await);
    let queue = SqsJobQueue::new(clients.sqs.clone(), t.var("HIGH_QUEUE_URL"), t.var("NORMAL_QUEUE_URL"))
        .with_ingest(t.var("INGEST_QUEUE_URL"));
    let sweeper = Sweeper {
        store: store.clone(),
        queue: Arc::new(queue),
        bounds: Bounds::default(),
    };
    let report = sweeper.sweep(now).await.unwrap();
    assert_eq!((report.resent, report.failed, report.requeued), (2, 1, 0), "{report:?}");
    let failed = store.get(dead.id).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error.unwrap().contains("stopped responding"));
    let resent = store.get(created[0].id).await.unwrap().unwrap();
    assert_eq!((resent.status, resent.sweeps), (JobStatus::Queued, 1));
    let messages = clients
        .sqs
        .receive_message()
        .queue_url(t.var("NORMAL_QUEUE_URL"))
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(messages.len(), 2, "the two stale queued jobs were sent again");
}

#[tokio::test]
async fn owners_list_and_count_only_their_own() {
    let (_t, store) = store().await;
    shared::store::contract::owners_list_and_count_only_their_own(store.as_ref()).await;
}

#[tokio::test]
async fn modify_known_writes_from_a_known_job_and_never_loses_a_newer_write() {
    let (_t, store) = store().await;
    shared::store::contract::modify_known_writes_from_a_known_job_and_never_loses_a_newer_write(store.as_ref()).await;
}

#[tokio::test]
async fn search_finds_by_lookup_items_and_sorted_listings_merge_the_updated_and_priority_indexes() {
    let (_t, store) = store().await;
    let store = Arc::new(DynamoJobStore::new(store_client().await, store.table().to_string()).with_status_shards(3));
    shared::store::contract::search_and_sort(store.as_ref()).await;
}

#[tokio::test]
async fn scheduled_jobs_and_failures_per_minute_are_counted_in_the_jobs_own_writes() {
    let (_t, store) = store().await;
    shared::store::contract::scheduled_and_failures_are_counted(store.as_ref()).await;
}

#[tokio::test]
async fn limits_hold_per_owner_in_the_creating_transaction() {
    let (_t, store) = store().await;
    shared::store::contract::limits_hold_per_owner(store.as_ref()).await;
}

async fn part_store() -> (TestStack, Arc<shared::store::DynamoPartStore>) {
    let t = TestStack::new(None).await;
    let parts = Arc::new(shared::store::DynamoPartStore::new(
        shared::aws::Clients::from_config(&shared::aws::sdk_config().await).dynamodb,
        t.var("JOBS_TABLE"),
    ));
    (t, parts)
}

#[tokio::test]
async fn parts_are_recorded_once_per_run() {
    let (_t, parts) = part_store().await;
    shared::store::contract::parts_are_recorded_once_per_run(parts.as_ref()).await;
}

#[tokio::test]
async fn parts_page_in_part_order() {
    let (_t, parts) = part_store().await;
    shared::store::parts::pages_follow_part_order(parts.as_ref()).await;
}

#[tokio::test]
async fn concurrent_deliveries_of_parts_count_each_part_once() {
    let (_t, parts) = part_store().await;
    shared::store::contract::concurrent_deliveries_of_parts_count_each_part_once(parts).await;
}

/// The status index keys spread one status over its shards in DynamoDB itself (raw queries of
/// `by_status_shard`), a job moves to the same shard of its new status, a listing merges them all,
/// and a cursor of the unsharded listing (the bare created_key) is refused naming `next`.
#[tokio::test]
async fn one_status_is_spread_over_its_shards_and_listings_merge_them() {
    use base64::Engine;
    let (t, _) = store().await;
    let store = Arc::new(DynamoJobStore::new(store_client().await, t.var("JOBS_TABLE")).with_status_shards(4));
    let mut jobs = Vec::new();
    for n in 0..40 {
        jobs.push(new_job(&store, JobKind::Email, n).await);
    }
    let client = store_client().await;
    let query = |key: String, index: &'static str, attr: &'static str| {
        let client = client.clone();
        let table = t.var("JOBS_TABLE").to_string();
        async move {
            let out = client
                .query()
                .table_name(table)
                .index_name(index)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", attr)
                .expression_attribute_values(":p", aws_sdk_dynamodb::types::AttributeValue::S(key))
                .send()
                .await
                .unwrap();
            out.items.unwrap_or_default().len()
        }
    };
    let mut per_shard = Vec::new();
    for shard in 0..4 {
        per_shard.push(query(format!("pending#{shard}"), "by_status_shard", "status_shard").await);
    }
    assert_eq!(per_shard.iter().sum::<usize>(), 40, "{per_shard:?}");
    assert!(
        per_shard.iter().all(|&n| n > 0 && n < 40),
        "every shard takes some: {per_shard:?}"
    );
    let by_kind: usize = futures::future::join_all((0..4).map(|shard| {
        query(
            format!("pending#email#{shard}"),
            "by_status_kind_shard",
            "status_kind_shard",
        )
    }))
    .await
    .into_iter()
    .sum();
    assert_eq!(by_kind, 40);

    // Cancel one: it leaves pending#k for cancelled#k, the same k.
    let moved = &jobs[7];
    let shard = shared::store::shards::shard_of(moved.id, 4);
    store.modify(moved.id, &mut |j| j.cancel(clock::now())).await.unwrap();
    assert_eq!(
        query(format!("cancelled#{shard}"), "by_status_shard", "status_shard").await,
        1
    );
    assert_eq!(
        query(format!("pending#{shard}"), "by_status_shard", "status_shard").await,
        per_shard[shard as usize] - 1
    );

    // Pages of 3 through 4 shards: every job once, newest first (walk checks both).
    let (all, pages) = walk(&store, &ListFilter::default(), 3).await;
    assert_eq!(all.len(), 40);
    assert_eq!(pages, 14);
    let pending = ListFilter {
        statuses: vec![JobStatus::Pending],
        kind: Some(JobKind::Email),
        ..Default::default()
    };
    assert_eq!(walk(&store, &pending, 6).await.0.len(), 39);

    let first = store.list(&ListFilter::default(), 5, None).await.unwrap();
    let last = first.jobs.last().unwrap();
    let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}#{}",
        clock::format(last.created_at),
        last.id
    ));
    match store.list(&ListFilter::default(), 5, Some(&old)).await {
        Err(shared::Error::Invalid(m)) => assert!(m.starts_with("next:"), "{m}"),
        other => panic!("{other:?}"),
    }
}

async fn store_client() -> aws_sdk_dynamodb::Client {
    shared::aws::Clients::from_config(&shared::aws::sdk_config().await).dynamodb
}

/// Items from before the sharded indexes (no shard keys) are invisible to listings until the
/// one-off backfill gives them their keys; a second run changes nothing.
#[tokio::test]
async fn the_backfill_gives_old_items_their_shard_keys_and_listings_see_them_again() {
    let (t, store) = store().await;
    let client = store_client().await;
    let table = t.var("JOBS_TABLE").to_string();
    let mut jobs = Vec::new();
    for n in 0..12 {
        jobs.push(new_job(&store, JobKind::Email, n).await);
    }
    // Make 5 of them look like items written before: no status_shard, status_kind_shard or
    // created_shard.
    for job in &jobs[..5] {
        client
            .update_item()
            .table_name(&table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("JOB#{}", job.id)),
            )
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("JOB".into()))
            .update_expression("REMOVE status_shard, status_kind_shard, created_shard")
            .send()
            .await
            .unwrap();
    }
    let pending = ListFilter {
        statuses: vec![JobStatus::Pending],
        ..Default::default()
    };
    assert_eq!(walk(&store, &ListFilter::default(), 5).await.0.len(), 7);
    assert_eq!(walk(&store, &pending, 5).await.0.len(), 7);
    let done = store.backfill_shard_keys().await.unwrap();
    assert_eq!((done.scanned, done.updated, done.raced), (12, 5, 0));
    let (all, _) = walk(&store, &ListFilter::default(), 5).await;
    assert_eq!(all.len(), 12);
    assert_eq!(walk(&store, &pending, 5).await.0.len(), 12);
    let again = store.backfill_shard_keys().await.unwrap();
    assert_eq!((again.scanned, again.updated), (12, 0));
}

/// A table keyed with other shard counts (here `ListShards` 8, then 2) is re-keyed by
/// `keep_keys_current` a page at a time, each call going on from where the last one stopped (every
/// job scanned once over the calls); the every-status listing misses jobs until the pass ends and
/// sees them all after, a larger count still sees them all, and a current table costs one read.
#[tokio::test]
async fn a_changed_shard_count_is_re_keyed_a_piece_at_a_time_and_then_costs_one_read() {
    use futures::StreamExt;
    use shared::store::Rekeyed;
    use shared::store::shards::shard_of;
    let (t, _) = store().await;
    let table = t.var("JOBS_TABLE").to_string();
    let eight = DynamoJobStore::new(store_client().await, table.clone()).with_list_shards(8);
    let two = eight.clone().with_list_shards(2);
    // 260 jobs and their lookups and counters: more than one page (500 items) of the scan.
    let jobs: Vec<Job> = futures::stream::iter(0..260)
        .map(|n| new_job(&eight, JobKind::Email, n))
        .buffer_unordered(8)
        .collect()
        .await;
    let status = shared::store::shards::status_shards_from_env();
    let pass = |store: DynamoJobStore| async move {
        let (mut calls, mut scanned, mut updated) = (0, 0, 0);
        loop {
            let r = store.keep_keys_current(std::time::Duration::ZERO).await.unwrap();
            calls += 1;
            scanned += r.pass.scanned;
            updated += r.pass.updated;
            if r.done {
                return (r.keyed, calls, scanned, updated);
            }
        }
    };
    // A table that notes no keying yet: one pass, nothing to change.
    let (keyed, calls, scanned, updated) = pass(eight.clone()).await;
    assert_eq!(keyed, format!("status {status}, list 8"));
    assert!(calls >= 2, "a zero budget stops after each page: {calls} calls");
    assert_eq!((scanned, updated), (260, 0));
    let current = Rekeyed {
        keyed: keyed.clone(),
        done: true,
        pass: Default::default(),
    };
    assert_eq!(
        eight.keep_keys_current(std::time::Duration::ZERO).await.unwrap(),
        current
    );

    // Two list shards: the jobs of shards 2..7 are not in the two partitions read...
    let moved = jobs.iter().filter(|j| shard_of(j.id, 8) >= 2).count();
    assert!(moved > 0);
    assert_eq!(walk(&two, &ListFilter::default(), 50).await.0.len(), 260 - moved);
    // ... until the pass ends: each of them re-keyed once, every job scanned once.
    let (keyed, calls, scanned, updated) = pass(two.clone()).await;
    assert_eq!(keyed, format!("status {status}, list 2"));
    assert!(calls >= 2);
    assert_eq!((scanned, updated), (260, moved));
    assert_eq!(walk(&two, &ListFilter::default(), 50).await.0.len(), 260);
    // Going up loses nothing (shards 0..1 are among 0..7); going back is another pass.
    assert_eq!(walk(&eight, &ListFilter::default(), 50).await.0.len(), 260);
    assert_eq!(
        two.keep_keys_current(std::time::Duration::ZERO).await.unwrap(),
        Rekeyed {
            keyed: keyed.clone(),
            ..current.clone()
        }
    );
    // A pass towards 8 that stops after a page (a deploy rolled back) has re-keyed some jobs for
    // 8 shards: back at 2, the table is not current until a pass has undone that.
    let towards_eight = eight.keep_keys_current(std::time::Duration::ZERO).await.unwrap();
    assert!(
        !towards_eight.done && towards_eight.pass.updated > 0,
        "{towards_eight:?}"
    );
    let (again, _, scanned, _) = pass(two.clone()).await;
    assert_eq!((again, scanned), (keyed, 260), "a fresh pass over every job");
    assert_eq!(walk(&two, &ListFilter::default(), 50).await.0.len(), 260);
}

/// Parked jobs (due more than 15 minutes after creation, no message) are in `by_wake`: the
/// sweeper's `due_to_wake` reads the soonest across its shards, only those due before its bound,
/// and a job leaves the index when its message is sent, it runs now or it is cancelled.
#[tokio::test]
async fn parked_jobs_are_found_soonest_first_by_the_wake_index_and_leave_it_when_sent() {
    let (_t, store) = store().await;
    let now = clock::now();
    let mut parked = Vec::new();
    for (n, mins) in [50, 20, 40, 30, 600, 25].into_iter().enumerate() {
        let job = Job::new(spec(JobKind::Archive, n), 3, Some(now + Duration::minutes(mins)), now).unwrap();
        assert!(job.is_parked());
        store.create(&job, None, &[]).await.unwrap();
        parked.push(job);
    }
    // Due within 15 minutes of its creation: never parked, never in the index.
    let soon = Job::new(spec(JobKind::Archive, 9), 3, Some(now + Duration::minutes(10)), now).unwrap();
    store.create(&soon, None, &[]).await.unwrap();
    let ids = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    let due = store.due_to_wake(None, now + Duration::minutes(45), 100).await.unwrap();
    assert_eq!(
        ids(due),
        [1, 5, 3, 2].map(|i| parked[i].id),
        "due before the bound, soonest first"
    );
    assert_eq!(
        ids(store.due_to_wake(None, now + Duration::minutes(45), 2).await.unwrap()),
        [1, 5].map(|i| parked[i].id)
    );
    // The next page goes on after the last job of the one before.
    let fifth = &parked[5];
    let after = Some((fifth.scheduled_for.unwrap(), fifth.id));
    assert_eq!(
        ids(store.due_to_wake(after, now + Duration::minutes(45), 2).await.unwrap()),
        [3, 2].map(|i| parked[i].id)
    );
    let last = &parked[2];
    let after = Some((last.scheduled_for.unwrap(), last.id));
    assert!(
        store
            .due_to_wake(after, now + Duration::minutes(45), 2)
            .await
            .unwrap()
            .is_empty()
    );

    // Sent (the sweeper's wake), run now, cancelled: each leaves the index.
    store
        .modify(parked[1].id, &mut |j| {
            j.mark_enqueued(clock::now());
            Ok(())
        })
        .await
        .unwrap();
    store
        .modify(parked[5].id, &mut |j| j.run_now("alice", clock::now()))
        .await
        .unwrap();
    store
        .modify(parked[3].id, &mut |j| j.cancel(clock::now()))
        .await
        .unwrap();
    let due = store.due_to_wake(None, now + Duration::days(1), 100).await.unwrap();
    assert_eq!(ids(due), [2, 0, 4].map(|i| parked[i].id));
}
