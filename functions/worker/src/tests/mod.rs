//! The fast tier: the worker in-process over the in-memory job store, queue and part store
//! (`shared::store::memory`), with SQS simulated as its event source behaves ([`Sqs`]): records
//! built like the real ones (from `events/worker/sqs-batch.json`), receive counts, batches, only
//! the records in `batchItemFailures` kept, dead-letter queues after `maxReceiveCount`. No emulator
//! is reached; image tests serve their files from `test_images::ImageServer` on 127.0.0.1.
//!
//! The same stories against the emulators and the real event source: `tests/emulator/`.

mod claim_check;
mod images;
mod kinds;
mod lifecycle;
mod traces;

use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::{Value, json};
use shared::auth::Caller;
use shared::job::{Job, JobId};
use shared::queue::{Band, JobMessage};
use shared::service::{Jobs, NewJob};
use shared::store::JobStore;
use shared::store::memory::{MemoryJobStore, MemoryPartStore, MemoryQueue};
use time::Duration;

use crate::handler::{ProcessError, Runner, Worker};
use crate::image::ImageJobs;
use crate::image::fetch::{FetchConfig, Fetcher};
use crate::testing::{Scripted, ok};

/// The queues' `maxReceiveCount` (template.yaml).
const MAX_RECEIVES: u32 = 3;

/// The caller of the tests' API-side operations: an admin, so tests are not about ownership.
static OPS: std::sync::LazyLock<Caller> = std::sync::LazyLock::new(|| Caller::admin("ops"));

/// The SQS record the fixture shows, as the event source builds it.
const FIXTURE: &str = include_str!("../../../../events/worker/sqs-batch.json");

/// A record of `message` as the SQS event source hands it over: its id, its `priority` message
/// attribute, the queue of its band, and its `ApproximateReceiveCount`.
fn record(message_id: &str, message: &JobMessage, priority: u8, receive_count: u32) -> SqsMessage {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let mut record = fixture["Records"][0].clone();
    record["messageId"] = json!(message_id);
    record["body"] = json!(serde_json::to_string(message).unwrap());
    record["attributes"]["ApproximateReceiveCount"] = json!(receive_count.to_string());
    record["messageAttributes"]["priority"]["stringValue"] = json!(priority.to_string());
    let queue = match Band::of(priority) {
        Band::High => "HighQueue",
        Band::Normal => "NormalQueue",
    };
    record["eventSourceARN"] = json!(format!("arn:aws:sqs:us-east-1:000000000000:jobs-local-{queue}"));
    // The fixture's digest is of its own body; nothing here reads it.
    record["md5OfBody"] = Value::Null;
    serde_json::from_value(record).unwrap()
}

/// A delivery of the job's own message, as SQS would hand it over.
fn delivery(id: JobId, receive_count: u32) -> SqsMessage {
    let message = JobMessage {
        job_id: id,
        part: None,
        run: None,
        images: None,
    };
    record(&format!("msg-{id}"), &message, 3, receive_count)
}

/// A delivery of part `part` of `id` (of no run in particular, as the emulator tests send them).
fn part_delivery(id: JobId, part: u32, receive_count: u32) -> SqsMessage {
    let message = JobMessage {
        job_id: id,
        part: Some(part),
        run: None,
        images: None,
    };
    record(&format!("msg-{id}-{part}"), &message, 3, receive_count)
}

/// One message on a simulated queue.
struct Queued {
    id: String,
    message: JobMessage,
    /// Its `AWSTraceHeader`, the trace it was sent in.
    trace: Option<String>,
    priority: u8,
    visible_at: Instant,
    receives: u32,
}

#[derive(Default)]
struct SqsState {
    /// How many of `MemoryQueue::sent` were taken onto the queues.
    seen: usize,
    /// The high and the normal queue, oldest first.
    queues: [Vec<Queued>; 2],
    dead: [Vec<JobMessage>; 2],
    /// Messages to the ingest function's queue (not the worker's).
    ingest: Vec<JobMessage>,
}

fn index(band: Band) -> usize {
    match band {
        Band::High => 0,
        Band::Normal => 1,
    }
}

/// What one invocation of the simulated event source did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Polled {
    delivered: usize,
    deleted: usize,
    dead_lettered: usize,
}

/// The worker's two queues and their event sources, in memory. What the code under test sends
/// (`MemoryQueue::sent`) lands on the queue of its priority, invisible for its delay; a poll
/// delivers up to 10 visible messages as one `SqsEvent`, deletes those not reported in
/// `batchItemFailures` (all are kept when the function fails), and moves a message that failed
/// its `maxReceiveCount`-th delivery to the dead-letter queue. A kept message is visible again at
/// once (the visibility timeout is not what these tests are about).
struct Sqs {
    sent: Arc<MemoryQueue>,
    state: Mutex<SqsState>,
    next_id: std::sync::atomic::AtomicUsize,
}

impl Sqs {
    fn new(sent: Arc<MemoryQueue>) -> Self {
        Sqs {
            sent,
            state: Mutex::default(),
            next_id: Default::default(),
        }
    }

    /// Takes what was sent since the last look onto the queues.
    fn sync(&self, state: &mut SqsState) {
        let sent = self.sent.sent.lock().unwrap();
        let traces = self.sent.sent_traces.lock().unwrap();
        let now = Instant::now();
        for (i, (message, priority, delay)) in sent.iter().enumerate().skip(state.seen) {
            if *priority == 0 {
                state.ingest.push(message.clone());
                continue;
            }
            let n = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            state.queues[index(Band::of(*priority))].push(Queued {
                id: format!("m{n}-{}", message.job_id),
                message: message.clone(),
                trace: traces.get(i).cloned().flatten(),
                priority: *priority,
                visible_at: now + StdDuration::try_from(*delay).unwrap_or_default(),
                receives: 0,
            });
        }
        state.seen = sent.len();
    }

    /// Messages on the queue of `band`, visible or not (in flight ones included).
    fn depth(&self, band: Band) -> usize {
        let mut state = self.state.lock().unwrap();
        self.sync(&mut state);
        state.queues[index(band)].len()
    }

    /// The dead-letter queue of `band`.
    fn dead_letters(&self, band: Band) -> Vec<JobMessage> {
        self.state.lock().unwrap().dead[index(band)].clone()
    }

    /// One invocation of `worker` with up to 10 visible messages of `band`.
    async fn poll(&self, band: Band, worker: &Worker) -> Polled {
        let (event, taken) = {
            let mut state = self.state.lock().unwrap();
            self.sync(&mut state);
            let now = Instant::now();
            let mut event = SqsEvent::default();
            let mut taken = Vec::new();
            for q in state.queues[index(band)].iter_mut() {
                if event.records.len() == 10 {
                    break;
                }
                if q.visible_at <= now {
                    q.receives += 1;
                    // In flight until the invocation answers.
                    q.visible_at = now + StdDuration::from_secs(3600);
                    let mut r = record(&q.id, &q.message, q.priority, q.receives);
                    if let Some(trace) = &q.trace {
                        r.attributes.insert(shared::trace::SQS_ATTRIBUTE.into(), trace.clone());
                    }
                    event.records.push(r);
                    taken.push(q.id.clone());
                }
            }
            (event, taken)
        };
        if taken.is_empty() {
            return Polled::default();
        }
        let kept: Vec<String> = match worker.handle(event).await {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(_) => taken.clone(),
        };
        let mut polled = Polled {
            delivered: taken.len(),
            ..Polled::default()
        };
        let mut state = self.state.lock().unwrap();
        let state = &mut *state;
        let (queue, dead) = (&mut state.queues[index(band)], &mut state.dead[index(band)]);
        queue.retain_mut(|q| {
            if !taken.contains(&q.id) {
                return true;
            }
            if !kept.contains(&q.id) {
                polled.deleted += 1;
                return false;
            }
            if q.receives >= MAX_RECEIVES {
                dead.push(q.message.clone());
                polled.dead_lettered += 1;
                return false;
            }
            q.visible_at = Instant::now();
            true
        });
        polled
    }
}

/// The worker over in-memory stores, the `Jobs` service clients submit through, and the queues.
struct Harness {
    store: Arc<MemoryJobStore>,
    queue: Arc<MemoryQueue>,
    parts: Arc<MemoryPartStore>,
    jobs: Jobs,
    sqs: Sqs,
}

fn harness() -> Harness {
    let store = Arc::new(MemoryJobStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let jobs = Jobs::new(store.clone(), queue.clone(), Duration::seconds(60));
    Harness {
        store,
        parts: Arc::new(MemoryPartStore::new()),
        sqs: Sqs::new(queue.clone()),
        queue,
        jobs,
    }
}

/// Images from 127.0.0.1 allowed, short timeouts.
fn short_fetches() -> FetchConfig {
    FetchConfig {
        timeout: StdDuration::from_millis(1500),
        attempts: 2,
        retry_base: StdDuration::from_millis(50),
        allow_hosts: "127.0.0.1".into(),
        // The test servers listen on random ports.
        allow_ports: "1-65535".parse().unwrap(),
        ..FetchConfig::default()
    }
}

impl Harness {
    fn worker(&self, runner: Arc<dyn Runner>, lease: Duration) -> Arc<Worker> {
        self.worker_fetching(runner, lease, short_fetches())
    }

    fn worker_fetching(&self, runner: Arc<dyn Runner>, lease: Duration, fetch: FetchConfig) -> Arc<Worker> {
        Arc::new(Worker {
            store: self.store.clone(),
            queue: self.queue.clone(),
            runner,
            images: Arc::new(ImageJobs::new(
                self.store.clone(),
                self.parts.clone(),
                self.queue.clone(),
                Fetcher::new(fetch).unwrap(),
            )),
            lease,
            max_receives: MAX_RECEIVES,
        })
    }

    async fn submit(&self, priority: u8) -> Job {
        let new = NewJob {
            kind: "archive".into(),
            payload: json!({"asset_id": "a", "source": "s3://bucket/key"}),
            priority: Some(priority),
            scheduled_for: None,
        };
        self.jobs.submit(&OPS, new, None).await.unwrap().0
    }

    async fn job(&self, id: JobId) -> Job {
        self.store.get(id).await.unwrap().unwrap()
    }
}
