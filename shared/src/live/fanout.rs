//! One job change to every subscribed connection that may see the job.

use std::sync::Arc;

use futures::StreamExt;

use super::connections::ConnectionStore;
use super::management::{Management, PostError};
use super::{JobUpdate, Topic};
use crate::auth::Owner;
use crate::error::{Error, Result};

/// Posts at once per change.
const CONCURRENCY: usize = 16;

pub struct Fanout {
    pub connections: Arc<dyn ConnectionStore>,
    pub management: Arc<dyn Management>,
}

/// What one change did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub posted: usize,
    /// Connections that answered 410 Gone, now deleted.
    pub gone: usize,
    /// Subscribers that may not see the job (never posted to).
    pub refused: usize,
}

impl Fanout {
    /// Posts `update` (a job of `owner`) to its subscribers. Fails when a post failed for another
    /// reason than 410 (the stream batch is then retried from this record: the other subscribers
    /// may get the change twice, which `job_version` lets them drop).
    pub async fn deliver(&self, update: &JobUpdate, owner: Option<&Owner>) -> Result<Delivered> {
        let subscribers = self
            .connections
            .subscribers(&Topic::of_job(update.job_id, owner))
            .await?;
        let body = serde_json::to_vec(update).map_err(|e| Error::Internal(format!("encoding an update: {e}")))?;
        let mut out = Delivered::default();
        let (allowed, refused): (Vec<_>, Vec<_>) = subscribers.into_iter().partition(|s| s.viewer.may_see(owner));
        out.refused = refused.len();
        let results: Vec<(String, std::result::Result<(), PostError>)> = futures::stream::iter(allowed)
            .map(|s| {
                let body = &body;
                async move {
                    let r = self.management.post(&s.connection_id, body).await;
                    (s.connection_id, r)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut failed = Vec::new();
        for (id, r) in results {
            match r {
                Ok(()) => out.posted += 1,
                Err(PostError::Gone) => {
                    tracing::info!(connection_id = %id, "connection gone (410): deleting it");
                    self.connections.disconnect(&id).await?;
                    out.gone += 1;
                }
                Err(PostError::Failed(e)) => {
                    tracing::warn!(connection_id = %id, job_id = %update.job_id, error = %e, "post failed");
                    failed.push(e);
                }
            }
        }
        if let Some(e) = failed.into_iter().next() {
            return Err(e);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Owner;
    use crate::job::{Job, JobSpec, JobStatus};
    use crate::live::Viewer;
    use crate::live::connections::{Connection, MemoryConnectionStore};
    use crate::live::management::MemoryManagement;

    fn job(owner: &str) -> Job {
        let spec = JobSpec::from_json(
            "archive",
            serde_json::json!({"asset_id": "a1", "source": "s3://b/k.mp4"}),
        )
        .unwrap();
        let mut j = Job::new(spec, 3, None, crate::clock::now()).unwrap();
        j.owner = Some(Owner::parse(owner).unwrap());
        j.status = JobStatus::Processing;
        j
    }

    async fn connect(store: &MemoryConnectionStore, id: &str, owner: &str, admin: bool, topic: Topic) {
        let c = Connection {
            id: id.into(),
            viewer: Viewer {
                owner: Owner::parse(owner).unwrap(),
                admin,
            },
            connected_at: crate::clock::now(),
        };
        store.connect(&c).await.unwrap();
        store.subscribe(&c, &topic).await.unwrap();
    }

    #[tokio::test]
    async fn a_change_reaches_only_who_may_see_it() {
        // GIVEN alice's job, and connections of alice (that job / all hers), bob (that job's id,
        // all his) and an admin (all)
        let store = Arc::new(MemoryConnectionStore::new());
        let mgmt = Arc::new(MemoryManagement::new());
        let j = job("alice");
        let alice = Owner::parse("alice").unwrap();
        let bob = Owner::parse("bob").unwrap();
        connect(&store, "a1", "alice", false, Topic::Job(j.id)).await;
        connect(&store, "a2", "alice", false, Topic::Owner(alice.clone())).await;
        connect(&store, "b1", "bob", false, Topic::Job(j.id)).await;
        connect(&store, "b2", "bob", false, Topic::Owner(bob)).await;
        connect(&store, "ad", "root", true, Topic::All).await;
        let fanout = Fanout {
            connections: store.clone(),
            management: mgmt.clone(),
        };
        // WHEN the job changes
        let d = fanout.deliver(&JobUpdate::of(&j), j.owner.as_ref()).await.unwrap();
        // THEN alice's two connections and the admin get it, bob's never
        assert_eq!(d.posted, 3);
        assert_eq!(d.refused, 1, "bob subscribed to alice's job id: refused");
        for id in ["a1", "a2", "ad"] {
            let got = mgmt.received(id);
            assert_eq!(got.len(), 1, "{id}");
            assert_eq!(got[0]["job_id"], j.id.to_string());
            assert_eq!(got[0]["text"], "started processing");
        }
        assert!(mgmt.received("b1").is_empty() && mgmt.received("b2").is_empty());
    }

    #[tokio::test]
    async fn an_ownerless_job_goes_to_admins_only() {
        let store = Arc::new(MemoryConnectionStore::new());
        let mgmt = Arc::new(MemoryManagement::new());
        let mut j = job("alice");
        j.owner = None;
        connect(&store, "u", "alice", false, Topic::Job(j.id)).await;
        connect(&store, "ad", "root", true, Topic::All).await;
        let fanout = Fanout {
            connections: store.clone(),
            management: mgmt.clone(),
        };
        let d = fanout.deliver(&JobUpdate::of(&j), None).await.unwrap();
        assert_eq!((d.posted, d.refused), (1, 1));
        assert!(mgmt.received("u").is_empty());
    }

    #[tokio::test]
    async fn a_gone_connection_is_deleted_and_a_failing_one_fails_the_change() {
        let store = Arc::new(MemoryConnectionStore::new());
        let mgmt = Arc::new(MemoryManagement::new());
        let j = job("alice");
        connect(&store, "gone", "alice", false, Topic::Job(j.id)).await;
        connect(&store, "ok", "alice", false, Topic::Job(j.id)).await;
        mgmt.gone("gone");
        let fanout = Fanout {
            connections: store.clone(),
            management: mgmt.clone(),
        };
        let d = fanout.deliver(&JobUpdate::of(&j), j.owner.as_ref()).await.unwrap();
        assert_eq!((d.posted, d.gone), (1, 1));
        assert_eq!(store.ids(), vec!["ok".to_string()], "the 410 connection is forgotten");

        mgmt.failing("ok", true);
        assert!(fanout.deliver(&JobUpdate::of(&j), j.owner.as_ref()).await.is_err());
        assert_eq!(
            store.ids(),
            vec!["ok".to_string()],
            "a failing post does not forget the connection"
        );
    }
}
