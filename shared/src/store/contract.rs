//! What every [`JobStore`] and [`PartStore`] must do, written once and run against each
//! implementation: the in-memory stores in `shared`'s unit tests, DynamoDB in
//! `shared/tests/dynamo_store.rs`. Behind the `testing` feature.

use serde_json::json;
use time::Duration;

use super::{Created, JobStore, ListFilter, PartStore, Recorded};
use crate::auth::{Owner, Scope};
use crate::clock;
use crate::error::Error;
use crate::images::{ImageResult, PartResult, StoreError};
use crate::job::{ArchiveResult, Job, JobId, JobKind, JobSpec, JobStatus};
use crate::quota::Quotas;

fn owner(name: &str) -> Owner {
    Owner::parse(name).expect("owner id")
}

fn image_spec(urls: usize) -> JobSpec {
    let urls: Vec<String> = (0..urls).map(|i| format!("https://img.example/{i}.jpg")).collect();
    JobSpec::from_json(
        "image",
        json!({"count": 1, "visits": [{"store_id": "S1", "image_url": urls, "visit_time": "t"}]}),
    )
    .expect("image spec")
}

fn archive_spec(n: usize) -> JobSpec {
    JobSpec::from_json(
        "archive",
        json!({"asset_id": format!("a{n}"), "source": "s3://b/uploads/x/k"}),
    )
    .expect("archive spec")
}

async fn create(store: &dyn JobStore, quotas: &Quotas, spec: JobSpec, who: Option<&Owner>) -> crate::Result<Job> {
    let now = clock::now();
    let mut job = Job::new(spec, 3, None, now)?;
    job.owner = who.cloned();
    let charges = quotas.charges(&job, now)?;
    match store.create(&job, None, &charges).await? {
        Created::New(j) | Created::Existing(j) => Ok(j),
    }
}

/// Listings and counts per owner: an owner's listing holds exactly its jobs (by status and
/// kind too), its counts equal its listing, and the global view holds everyone's.
pub async fn owners_list_and_count_only_their_own(store: &dyn JobStore) {
    let (alice, bob) = (owner("alice"), owner("bob"));
    let none = Quotas::NONE;
    let mut alices = Vec::new();
    for n in 0..3 {
        alices.push(create(store, &none, archive_spec(n), Some(&alice)).await.unwrap());
    }
    alices.push(create(store, &none, image_spec(2), Some(&alice)).await.unwrap());
    let bobs = create(store, &none, archive_spec(9), Some(&bob)).await.unwrap();
    let ownerless = create(store, &none, archive_spec(10), None).await.unwrap();
    // one of alice's completes, one fails
    for (job, to) in [(&alices[0], JobStatus::Completed), (&alices[1], JobStatus::Failed)] {
        store
            .modify(job.id, &mut |j| {
                j.transition(JobStatus::Queued, clock::now(), "enqueued")?;
                j.claim(clock::now(), Duration::seconds(60))
                    .map_err(|_| Error::Conflict("claim".into()))?;
                match to {
                    JobStatus::Completed => j.complete(1, &ArchiveResult::example(), clock::now()),
                    _ => j.fail_permanently(1, "boom", clock::now()),
                }
            })
            .await
            .unwrap();
    }

    let mine = ListFilter {
        scope: Scope::Owner(alice.clone()),
        ..ListFilter::default()
    };
    let listed = store.list(&mine, 100, None).await.unwrap().jobs;
    let mut ids: Vec<_> = listed.iter().map(|j| j.id).collect();
    ids.sort();
    let mut expected: Vec<_> = alices.iter().map(|j| j.id).collect();
    expected.sort();
    assert_eq!(ids, expected, "alice's listing is exactly her jobs");

    let failed_images = ListFilter {
        statuses: vec![JobStatus::Failed],
        kind: Some(JobKind::Archive),
        scope: Scope::Owner(alice.clone()),
        ..ListFilter::default()
    };
    let failed: Vec<_> = store.list(&failed_images, 100, None).await.unwrap().jobs;
    assert_eq!(failed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![alices[1].id]);
    let bob_failed = ListFilter {
        scope: Scope::Owner(bob.clone()),
        ..failed_images.clone()
    };
    assert!(store.list(&bob_failed, 100, None).await.unwrap().jobs.is_empty());

    let stats = store.stats(&Scope::Owner(alice.clone()), clock::now()).await.unwrap();
    assert_eq!(stats.total, 4);
    assert_eq!(stats.by_status["pending"], 2);
    assert_eq!(stats.by_status["completed"], 1);
    assert_eq!(stats.by_status["failed"], 1);
    assert_eq!((stats.by_kind["archive"], stats.by_kind["image"]), (3, 1));
    let completed: i64 = stats.completed_per_minute.iter().map(|m| m.completed).sum();
    assert_eq!(completed, 1, "alice's completions per minute");
    let bob_stats = store.stats(&Scope::Owner(bob.clone()), clock::now()).await.unwrap();
    assert_eq!((bob_stats.total, bob_stats.by_status["pending"]), (1, 1));

    let everyone = store.list(&ListFilter::default(), 500, None).await.unwrap().jobs;
    for j in alices.iter().chain([&bobs, &ownerless]) {
        assert!(
            everyone.iter().any(|e| e.id == j.id),
            "the global listing has every job"
        );
    }
}

/// Limits per owner: the jobs-in-flight limit counts pending/queued/processing jobs and frees a
/// slot when one ends; a windowed limit adds up within its window; a refused create writes
/// nothing; other owners are not affected.
pub async fn limits_hold_per_owner(store: &dyn JobStore) {
    let carol = owner("carol");
    let dave = owner("dave");
    let quotas = Quotas {
        jobs_in_flight: 2,
        image_urls_per_hour: 5,
        upload_bytes_per_day: 0,
    };
    let first = create(store, &quotas, archive_spec(1), Some(&carol)).await.unwrap();
    create(store, &quotas, image_spec(3), Some(&carol)).await.unwrap();
    match create(store, &quotas, archive_spec(3), Some(&carol)).await {
        Err(Error::Limited { limit, retry_after, .. }) => {
            assert_eq!(limit, "jobs_in_flight");
            assert!(retry_after > 0);
        }
        other => panic!("a third job in flight must be refused: {other:?}"),
    }
    let stats = store.stats(&Scope::Owner(carol.clone()), clock::now()).await.unwrap();
    assert_eq!(stats.total, 2, "a refused create writes nothing");
    create(store, &quotas, archive_spec(4), Some(&dave)).await.unwrap();

    // cancelling one frees its slot
    store.modify(first.id, &mut |j| j.cancel(clock::now())).await.unwrap();
    // 3 image URLs used of 5 this hour: 3 more do not fit, 2 do
    match create(store, &quotas, image_spec(3), Some(&carol)).await {
        Err(Error::Limited { limit, .. }) => assert_eq!(limit, "image_urls_per_hour"),
        other => panic!("3 more image URLs must be refused: {other:?}"),
    }
    create(store, &quotas, image_spec(2), Some(&carol)).await.unwrap();
    let stats = store.stats(&Scope::Owner(carol), clock::now()).await.unwrap();
    assert_eq!(
        (stats.total, stats.by_status["pending"], stats.by_status["cancelled"]),
        (3, 2, 1)
    );
}

/// A part's result: one image measured `width` wide, or one store error when `error` is given.
fn part(n: u32, width: u32, error: Option<&str>) -> PartResult {
    let url = format!("https://img.example/{n}.jpg");
    match error {
        None => PartResult {
            part: n,
            images: vec![ImageResult::new("S1", &url, width, 10, 100)],
            errors: Vec::new(),
        },
        Some(e) => PartResult {
            part: n,
            images: Vec::new(),
            errors: vec![StoreError {
                store_id: "S1".into(),
                url: Some(url),
                error: e.into(),
            }],
        },
    }
}

/// Parts of a run: each recorded once (a duplicate keeps the first result and does not count),
/// counted per run (a retried job's new run starts from zero; run `r1` is not a prefix of `r10`),
/// listed in part order (numeric, 2 before 10), per job.
pub async fn parts_are_recorded_once_per_run(store: &dyn PartStore) {
    let (job, other_job) = (JobId::new(), JobId::new());
    assert_eq!(store.done(job, "r1").await.unwrap(), 0, "nothing recorded yet");
    assert!(store.list(job, "r1").await.unwrap().is_empty());

    let recorded = store.record(job, "r1", &part(10, 1, None)).await.unwrap();
    assert_eq!(recorded, Recorded { first: true, done: 1 });
    let recorded = store.record(job, "r1", &part(2, 2, None)).await.unwrap();
    assert_eq!(recorded, Recorded { first: true, done: 2 });
    // A redelivery measured differently: counted once, the first result kept.
    let recorded = store.record(job, "r1", &part(10, 99, Some("timed out"))).await.unwrap();
    assert_eq!(recorded, Recorded { first: false, done: 2 });
    assert_eq!(store.done(job, "r1").await.unwrap(), 2);
    let listed = store.list(job, "r1").await.unwrap();
    assert_eq!(
        listed,
        vec![part(2, 2, None), part(10, 1, None)],
        "part order, first results"
    );

    // Another run of the same job (a retry), one whose key starts like this one's, another job.
    assert_eq!(store.done(job, "r10").await.unwrap(), 0);
    let recorded = store.record(job, "r10", &part(10, 3, None)).await.unwrap();
    assert_eq!(recorded, Recorded { first: true, done: 1 }, "a new run counts afresh");
    assert_eq!(store.list(job, "r10").await.unwrap(), vec![part(10, 3, None)]);
    assert_eq!(
        store.list(job, "r1").await.unwrap().len(),
        2,
        "the old run is untouched"
    );
    assert_eq!(store.done(other_job, "r1").await.unwrap(), 0);
    let recorded = store.record(other_job, "r1", &part(0, 4, None)).await.unwrap();
    assert_eq!(recorded, Recorded { first: true, done: 1 });
    assert_eq!(store.done(job, "r1").await.unwrap(), 2);
}

/// Three deliveries of each of five parts at once: each part counted once, exactly one delivery
/// sees the run complete as the first of its part (the one that finishes the job), the count
/// never goes past five.
pub async fn concurrent_deliveries_of_parts_count_each_part_once(store: std::sync::Arc<dyn PartStore>) {
    let job = JobId::new();
    let deliveries = (0..15u32).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.record(job, "run", &part(i % 5, 1 + i, None)).await })
    });
    let recorded: Vec<Recorded> = futures::future::join_all(deliveries)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("recorded"))
        .collect();
    assert_eq!(recorded.iter().filter(|r| r.first).count(), 5, "{recorded:?}");
    assert_eq!(
        recorded.iter().filter(|r| r.first && r.done == 5).count(),
        1,
        "one finisher: {recorded:?}"
    );
    assert!(recorded.iter().all(|r| (1..=5).contains(&r.done)), "{recorded:?}");
    assert_eq!(store.done(job, "run").await.unwrap(), 5);
    let listed = store.list(job, "run").await.unwrap();
    assert_eq!(listed.iter().map(|p| p.part).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
}

/// `modify_known` from the job as just written changes it once (version + 1), and from a stale
/// copy (somebody wrote since) still applies the change to the job as it is now, losing nothing.
pub async fn modify_known_writes_from_a_known_job_and_never_loses_a_newer_write(store: &dyn JobStore) {
    let quotas = Quotas::default();
    let created = create(store, &quotas, archive_spec(1), None).await.expect("created");
    let now = clock::now();
    let sent = store
        .modify_known(&created, &mut |j| {
            j.mark_enqueued(now);
            Ok(())
        })
        .await
        .expect("modified");
    assert_eq!(sent.version, created.version + 1);
    assert_eq!(store.get(created.id).await.unwrap(), Some(sent.clone()));

    // Somebody else moves the job on; a change from the old copy lands on the new job.
    let claimed = store
        .modify(created.id, &mut |j| {
            j.claim(clock::now(), Duration::seconds(30))
                .map_err(|_| Error::Conflict("claim".into()))
        })
        .await
        .expect("claimed");
    let after = store
        .modify_known(&sent, &mut |j| {
            j.progress.percent = 40;
            Ok(())
        })
        .await
        .expect("modified from a stale copy");
    assert_eq!(
        after.status,
        JobStatus::Processing,
        "the newer write (the claim) is kept"
    );
    assert_eq!(after.progress.percent, 40);
    assert_eq!(after.version, claimed.version + 1);
    assert_eq!(store.get(created.id).await.unwrap(), Some(after));
}

/// Search and sort: [`JobStore::find`] answers a short id and each main key (an archive's asset
/// id, an ingest's file name, an image job's store ids) with exactly the jobs that have it, newest
/// first; a discarded job is no longer found; listings sorted by created, updated or priority, in
/// either direction, serve every job once in that order across cursor pages, with kind and owner
/// filters.
pub async fn search_and_sort(store: &dyn JobStore) {
    use super::find_terms;
    use super::shards::{Order, SortBy};
    let alice = owner("alice");
    let t0 = clock::now() - Duration::hours(1);
    let mut made = Vec::new();
    for n in 0..14usize {
        let spec = match n % 3 {
            0 => archive_spec(n % 6), // asset ids repeat: a0 and a3 twice
            1 => JobSpec::from_json(
                "log_ingest",
                json!({"bucket": "b", "key": format!("uploads/x/{n}/app.jsonl"), "file_name": format!("App-{}.jsonl", n % 2)}),
            )
            .unwrap(),
            _ => JobSpec::from_json(
                "image",
                json!({"count": 2, "visits": [
                    {"store_id": format!("S{}", n % 4), "image_url": ["https://img.example/1.jpg"], "visit_time": "t"},
                    {"store_id": "S99", "image_url": ["https://img.example/2.jpg"], "visit_time": "t"}]}),
            )
            .unwrap(),
        };
        let mut job = Job::new(spec, (n % 5 + 1) as u8, None, t0 + Duration::seconds(n as i64)).unwrap();
        if n % 2 == 0 {
            job.owner = Some(alice.clone());
        }
        match store.create(&job, None, &[]).await.unwrap() {
            Created::New(j) => made.push(j),
            Created::Existing(_) => unreachable!(),
        }
    }
    // Some change later (updated_at moves; statuses differ).
    for (i, job) in made.iter_mut().enumerate().filter(|(i, _)| i % 4 == 1) {
        *job = store
            .modify(job.id, &mut |j| {
                j.transition(
                    JobStatus::Queued,
                    clock::now() + Duration::milliseconds(i as i64),
                    "enqueued",
                )
            })
            .await
            .unwrap();
    }

    // Every term finds exactly the jobs that have it, newest first.
    let mut terms: Vec<String> = made.iter().flat_map(find_terms).collect();
    terms.sort();
    terms.dedup();
    assert!(
        terms.contains(&"s99".to_string()) && terms.contains(&"app-1.jsonl".to_string()),
        "{terms:?}"
    );
    for term in &terms {
        let mut want: Vec<&Job> = made.iter().filter(|j| find_terms(j).contains(term)).collect();
        want.sort_by_key(|j| std::cmp::Reverse(super::shards::created_key(j)));
        let got = store.find(term, 100).await.unwrap();
        assert_eq!(got, want.iter().map(|j| j.id).collect::<Vec<_>>(), "term {term}");
    }
    let short = find_terms(&made[5])[0].clone();
    assert_eq!(short.len(), super::SHORT_ID_LEN);
    assert!(made[5].id.to_string().ends_with(&short));
    assert_eq!(store.find("no-such-thing", 100).await.unwrap(), Vec::<JobId>::new());
    assert_eq!(store.find("s99", 2).await.unwrap().len(), 2, "limit honoured");

    // A discarded job's lookups go with it.
    let gone = Job::new(archive_spec(77), 3, None, clock::now()).unwrap();
    let gone = match store.create(&gone, None, &[]).await.unwrap() {
        Created::New(j) => j,
        Created::Existing(_) => unreachable!(),
    };
    assert_eq!(store.find("a77", 10).await.unwrap(), vec![gone.id]);
    store.discard(&gone, None).await.unwrap();
    assert_eq!(store.find("a77", 10).await.unwrap(), Vec::<JobId>::new());

    // Sorted listings: every order, both directions, small pages, with filters.
    let filters = [
        ListFilter::default(),
        ListFilter {
            kind: Some(JobKind::Image),
            ..ListFilter::default()
        },
        ListFilter {
            scope: Scope::Owner(alice.clone()),
            ..ListFilter::default()
        },
        ListFilter {
            statuses: vec![JobStatus::Pending],
            scope: Scope::Owner(alice.clone()),
            kind: Some(JobKind::Archive),
            ..ListFilter::default()
        },
    ];
    for by in [SortBy::Created, SortBy::Updated, SortBy::Priority] {
        for ascending in [false, true] {
            let order = Order { by, ascending };
            for base in &filters {
                let filter = ListFilter { order, ..base.clone() };
                let mut want: Vec<&Job> = made
                    .iter()
                    .filter(|j| filter.statuses.is_empty() || filter.statuses.contains(&j.status))
                    .filter(|j| filter.kind.is_none_or(|k| j.kind() == k))
                    .filter(|j| match &filter.scope {
                        Scope::All => true,
                        Scope::Owner(o) => j.owner.as_ref() == Some(o),
                    })
                    .collect();
                want.sort_by(|a, b| {
                    let (ka, kb) = (by.key(a), by.key(b));
                    if ascending { ka.cmp(&kb) } else { kb.cmp(&ka) }
                });
                let mut got = Vec::new();
                let mut cursor: Option<String> = None;
                for _ in 0..50 {
                    let page = store.list(&filter, 3, cursor.as_deref()).await.unwrap();
                    assert!(page.jobs.len() <= 3);
                    got.extend(page.jobs.into_iter().map(|j| j.id));
                    match page.next {
                        Some(n) => cursor = Some(n),
                        None => break,
                    }
                }
                assert_eq!(
                    got,
                    want.iter().map(|j| j.id).collect::<Vec<_>>(),
                    "{by:?} ascending={ascending} {base:?}"
                );
            }
        }
    }
}

/// The `scheduled` count and the failures per minute: scheduled jobs are counted apart from the
/// due ones while they wait (created, run now, cancelled, failed and retried, sent), and every
/// move to `failed` counts in its minute (a retried job's failure stays counted), for everyone
/// and per owner; the count always equals the jobs that are [`Job::is_scheduled`].
pub async fn scheduled_and_failures_are_counted(store: &dyn JobStore) {
    let dana = owner("dana");
    let now = clock::now();
    let later = now + Duration::days(1);
    let mut ids = Vec::new();
    for n in 0..4 {
        let mut job = Job::new(archive_spec(40 + n), 3, Some(later), now).unwrap();
        job.owner = Some(dana.clone());
        store.create(&job, None, &[]).await.unwrap();
        ids.push(job.id);
    }
    let due = create(store, &Quotas::NONE, archive_spec(50), Some(&dana))
        .await
        .unwrap();
    let counts = |scope: Scope| async move {
        let stats = store.stats(&scope, clock::now()).await.unwrap();
        let failed: i64 = stats.completed_per_minute.iter().map(|m| m.failed).sum();
        (stats.by_status["pending"], stats.scheduled, failed)
    };
    assert_eq!(counts(Scope::All).await, (5, 4, 0));
    assert_eq!(counts(Scope::Owner(dana.clone())).await, (5, 4, 0));

    // sent: still scheduled (a write that keeps it waiting for its time)
    store
        .modify(ids[0], &mut |j| {
            j.mark_enqueued(clock::now());
            Ok(())
        })
        .await
        .unwrap();
    // run now: due, no longer scheduled, still pending
    store
        .modify(ids[1], &mut |j| j.run_now("op", clock::now()))
        .await
        .unwrap();
    // cancelled
    store.modify(ids[2], &mut |j| j.cancel(clock::now())).await.unwrap();
    assert_eq!(counts(Scope::Owner(dana.clone())).await, (4, 2, 0));

    // failed (one failure), then retried: waiting for its time again
    store
        .modify(ids[3], &mut |j| j.fail_stuck("gave up", clock::now()))
        .await
        .unwrap();
    assert_eq!(counts(Scope::Owner(dana.clone())).await, (3, 1, 1));
    store.modify(ids[3], &mut |j| j.retry(clock::now())).await.unwrap();
    // the due job fails twice (failed, retried, failed again)
    for _ in 0..2 {
        store
            .modify(due.id, &mut |j| j.fail_stuck("no source", clock::now()))
            .await
            .unwrap();
        store.modify(due.id, &mut |j| j.retry(clock::now())).await.unwrap();
    }
    let (pending, scheduled, failed) = counts(Scope::All).await;
    assert_eq!((pending, scheduled, failed), (2, 2, 3));
    assert_eq!(counts(Scope::Owner(dana.clone())).await, (2, 2, 3));
    let mut really = 0;
    for id in &ids {
        really += i64::from(store.get(*id).await.unwrap().unwrap().is_scheduled());
    }
    assert_eq!(scheduled, really, "the counter equals the jobs that are scheduled");
}
