//! What every [`JobStore`] must do, written once and run against each implementation: the
//! in-memory store in `shared`'s unit tests, DynamoDB in `shared/tests/dynamo_store.rs`.
//! Behind the `testing` feature.

use serde_json::json;
use time::Duration;

use super::{Created, JobStore, ListFilter};
use crate::auth::{Owner, Scope};
use crate::clock;
use crate::error::Error;
use crate::job::{Job, JobKind, JobSpec, JobStatus};
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
                    JobStatus::Completed => j.complete(1, json!({}), clock::now()),
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
