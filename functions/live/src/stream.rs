//! The `notify` function: the jobs table's DynamoDB stream (view `NEW_AND_OLD_IMAGES`) to the
//! WebSocket connections.
//!
//! Each record that changes a job item (`pk = JOB#<id>`, `sk = JOB`) in a way a subscriber can
//! see ([`JobUpdate::same_as`]) becomes one [`JobUpdate`], posted by [`Fanout`]. Other items of
//! the table (counters, parts, idempotency keys) and deletions are skipped. Records are handled in
//! order; at the first that fails, the batch answers `batchItemFailures` with its sequence
//! number, so Lambda retries from there (`ReportBatchItemFailures`, bisecting on errors, then the
//! on-failure destination after `MaximumRetryAttempts`).

use aws_lambda_events::dynamodb::{Event, EventRecord};
use serde_json::{Value, json};
use shared::error::Error;
use shared::job::Job;
use shared::live::JobUpdate;
use shared::live::fanout::{Delivered, Fanout};
use shared::store::table;

pub struct Notify {
    pub fanout: Fanout,
}

/// What a record is to the fan-out.
#[derive(Debug)]
enum Change {
    Skip(&'static str),
    Post(Box<Job>, JobUpdate),
}

fn change_of(record: &EventRecord) -> Result<Change, Error> {
    let keys: Value = serde_dynamo::from_item(record.change.keys.clone())
        .map_err(|e| Error::Corrupt(format!("stream record keys: {e}")))?;
    let is_job = keys
        .get(table::PK)
        .and_then(Value::as_str)
        .is_some_and(|p| p.starts_with("JOB#"))
        && keys.get(table::SK).and_then(Value::as_str) == Some("JOB");
    if !is_job {
        return Ok(Change::Skip("not a job item"));
    }
    if record.event_name == "REMOVE" || record.change.new_image.is_empty() {
        return Ok(Change::Skip("removed"));
    }
    let job: Job = serde_dynamo::from_item(record.change.new_image.clone())
        .map_err(|e| Error::Corrupt(format!("stream record NewImage: {e}")))?;
    let update = JobUpdate::of(&job);
    if !record.change.old_image.is_empty()
        && let Ok(before) = serde_dynamo::from_item::<_, Job>(record.change.old_image.clone())
        && JobUpdate::of(&before).same_as(&update)
    {
        return Ok(Change::Skip("nothing a subscriber sees changed"));
    }
    Ok(Change::Post(Box::new(job), update))
}

impl Notify {
    /// Handles one stream batch; answers `{"batchItemFailures": [...]}`.
    pub async fn handle(&self, event: Event) -> Value {
        let mut total = Delivered::default();
        for record in &event.records {
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            let outcome = match change_of(record) {
                Ok(Change::Skip(why)) => {
                    tracing::debug!(sequence = %sequence, why, "record skipped");
                    Ok(())
                }
                Ok(Change::Post(job, update)) => {
                    self.fanout.deliver(&update, job.owner.as_ref()).await.map(|d| {
                        tracing::info!(job_id = %job.id, status = %job.status.as_str(), posted = d.posted, gone = d.gone, refused = d.refused, "change posted");
                        total.posted += d.posted;
                        total.gone += d.gone;
                        total.refused += d.refused;
                    })
                }
                // A record that can never decode would block the shard: skip it, loudly.
                Err(e @ Error::Corrupt(_)) => {
                    tracing::error!(sequence = %sequence, error = %e, "record skipped: cannot be read");
                    Ok(())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                tracing::warn!(sequence = %sequence, error = %e, "record failed: the batch goes on from it on the retry");
                if sequence.is_empty() {
                    // Without a sequence number, only failing the whole invocation retries it.
                    return json!({"batchItemFailures": [{"itemIdentifier": ""}]});
                }
                return json!({"batchItemFailures": [{"itemIdentifier": sequence}]});
            }
        }
        tracing::info!(
            records = event.records.len(),
            posted = total.posted,
            gone = total.gone,
            "stream batch done"
        );
        json!({"batchItemFailures": []})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::auth::Owner;
    use shared::job::{JobSpec, JobStatus, Progress};
    use shared::live::connections::{Connection, ConnectionStore, MemoryConnectionStore};
    use shared::live::management::MemoryManagement;
    use shared::live::{Topic, Viewer};
    use std::sync::Arc;

    fn job() -> Job {
        let spec = JobSpec::from_json("log_ingest", json!({"bucket": "b", "key": "uploads/alice/a.jsonl"})).unwrap();
        let mut j = Job::new(spec, 3, None, shared::clock::now()).unwrap();
        j.owner = Some(Owner::parse("alice").unwrap());
        j
    }

    /// A stream record as DynamoDB Streams shapes it: the item with its keys, typed attributes.
    fn record(seq: &str, name: &str, old: Option<&Job>, new: Option<&Job>, pk: Option<&str>) -> Value {
        let item = |j: &Job| {
            let mut v: serde_dynamo::Item = serde_dynamo::to_item(j).unwrap();
            let id = format!("JOB#{}", j.id);
            v.insert(
                "pk".into(),
                serde_dynamo::AttributeValue::S(pk.map(str::to_owned).unwrap_or(id)),
            );
            v.insert("sk".into(), serde_dynamo::AttributeValue::S("JOB".into()));
            serde_json::to_value(v).unwrap()
        };
        let some = new.or(old).unwrap();
        let pk = pk.map(str::to_owned).unwrap_or(format!("JOB#{}", some.id));
        let mut dynamodb = json!({
            "Keys": {"pk": {"S": pk}, "sk": {"S": "JOB"}},
            "SequenceNumber": seq, "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES",
        });
        if let Some(o) = old {
            dynamodb["OldImage"] = item(o);
        }
        if let Some(n) = new {
            dynamodb["NewImage"] = item(n);
        }
        json!({"eventID": seq, "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
               "awsRegion": "us-east-1", "dynamodb": dynamodb,
               "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/jobs/stream/2026-01-01T00:00:00.000"})
    }

    async fn setup() -> (Notify, Arc<MemoryManagement>, Arc<MemoryConnectionStore>) {
        let store = Arc::new(MemoryConnectionStore::new());
        let mgmt = Arc::new(MemoryManagement::new());
        for (id, owner) in [("alice", "alice"), ("bob", "bob")] {
            let c = Connection {
                id: id.into(),
                viewer: Viewer {
                    owner: Owner::parse(owner).unwrap(),
                    admin: false,
                },
                connected_at: shared::clock::now(),
            };
            store.connect(&c).await.unwrap();
            store.subscribe(&c, &c.viewer.all_topic()).await.unwrap();
        }
        let notify = Notify {
            fanout: Fanout {
                connections: store.clone(),
                management: mgmt.clone(),
            },
        };
        (notify, mgmt, store)
    }

    #[tokio::test]
    async fn a_jobs_life_reaches_its_owner_in_order_and_nobody_else() {
        let (notify, mgmt, _) = setup().await;
        let queued = job();
        let mut started = queued.clone();
        started.status = JobStatus::Processing;
        started.version += 1;
        let mut lease = started.clone();
        lease.lease_owner = Some("another claim".into());
        lease.version += 1;
        let mut half = lease.clone();
        half.progress = Progress {
            percent: 50,
            stage: "50% complete (10 lines)".into(),
        };
        let mut done = half.clone();
        done.status = JobStatus::Completed;
        done.progress.percent = 100;
        done.result = Some(json!({"lines_read": 20, "lines_stored": 18, "lines_rejected": 2}));
        let event: Event = serde_json::from_value(json!({"Records": [
            record("1", "INSERT", None, Some(&queued), None),
            record("2", "MODIFY", Some(&queued), Some(&started), None),
            record("3", "MODIFY", Some(&started), Some(&lease), None),
            record("4", "MODIFY", Some(&lease), Some(&half), None),
            record("5", "MODIFY", Some(&half), Some(&done), None),
            record("6", "INSERT", None, Some(&queued), Some("STATS#3")),
            record("7", "REMOVE", Some(&done), None, None),
        ]}))
        .unwrap();
        let out = notify.handle(event).await;
        assert_eq!(out, json!({"batchItemFailures": []}));
        let texts: Vec<Value> = mgmt.received("alice").iter().map(|m| m["text"].clone()).collect();
        assert_eq!(
            texts,
            vec![
                json!("queued"),
                json!("started processing"),
                json!("50% complete"),
                json!("completed: 18 stored, 2 rejected")
            ],
            "the lease renewal, the counter item and the removal are not posted"
        );
        assert!(mgmt.received("bob").is_empty(), "bob never sees alice's job");
    }

    #[tokio::test]
    async fn a_failed_post_reports_its_record_and_stops_there() {
        let (notify, mgmt, _) = setup().await;
        mgmt.failing("alice", true);
        let j = job();
        let event: Event = serde_json::from_value(json!({"Records": [
            record("10", "INSERT", None, Some(&j), Some("OWNER#alice")),
            record("11", "INSERT", None, Some(&j), None),
            record("12", "INSERT", None, Some(&j), None),
        ]}))
        .unwrap();
        let out = notify.handle(event).await;
        assert_eq!(out, json!({"batchItemFailures": [{"itemIdentifier": "11"}]}));
    }

    #[tokio::test]
    async fn a_gone_connection_is_deleted_and_the_batch_succeeds() {
        let (notify, mgmt, store) = setup().await;
        mgmt.gone("alice");
        let j = job();
        let event: Event =
            serde_json::from_value(json!({"Records": [record("1", "INSERT", None, Some(&j), None)]})).unwrap();
        assert_eq!(notify.handle(event).await, json!({"batchItemFailures": []}));
        assert_eq!(store.ids(), vec!["bob".to_string()]);
        assert!(!store.topics("bob").contains(&Topic::All));
    }
}
