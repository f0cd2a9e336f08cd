//! The ingest function: wiring only. The per-object logic lives in `handler`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ingest::handler::Ingest;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::aws::Clients;
use shared::objects::S3Objects;
use shared::queue::SqsJobQueue;
use shared::service::Jobs;
use shared::settings::Settings;
use shared::store::DynamoJobStore;
use shared::store::entries::DynamoEntryStore;

/// mimalloc instead of the system allocator: every line becomes a handful of small allocations
/// (entry strings, attribute maps, DynamoDB items) freed 25 at a time, which glibc's malloc serves
/// from its slow paths; about 20 % more lines per CPU second (`infra/bench/ingest`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let settings = Settings::from_env()?;
    let clients = Clients::from_env().await;
    let lease = time::Duration::seconds(shared::settings::optional("INGEST_LEASE_SECONDS", 360)?);
    // Every write of a job is metered (shared::metrics): the lifecycle's EMF figures.
    let store = shared::metrics::Metered::wrap(Arc::new(DynamoJobStore::new(
        clients.dynamodb.clone(),
        &settings.jobs_table,
    )));
    // The ingest's own queue (`INGEST_QUEUE_URL`) carries its checkpoints and restarts.
    let queue = Arc::new(SqsJobQueue::from_settings(clients.sqs.clone(), &settings));
    let ingest = Arc::new(Ingest {
        jobs: Jobs::new(store, queue, lease),
        entries: Arc::new(DynamoEntryStore::new(
            clients.dynamodb.clone(),
            &settings.log_entries_table,
        )),
        objects: Arc::new(S3Objects::new(clients.s3.clone())),
        lease,
        line_delay_ms: shared::settings::optional("INGEST_LINE_DELAY_MS", 0)?,
        time_budget: Duration::from_millis(shared::settings::optional("INGEST_TIME_BUDGET_MS", 15 * 60 * 1000)?),
        limits: ingest::handler::Limits::from_env()?,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ingest = ingest.clone();
        async move {
            // The context's deadline is wall-clock milliseconds; turn it into an Instant. One that
            // has already passed when the invocation starts is not a real one (cargo lambda watch
            // sends a fixed 600000, in 1970): then only the time budget bounds the invocation.
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let deadline = (event.context.deadline > now_ms)
                .then(|| Instant::now() + Duration::from_millis(event.context.deadline - now_ms));
            // The invocation's trace (X-Ray active tracing); a record's own AWSTraceHeader wins.
            let trace = shared::trace::TraceHeader::from_context(&event.context);
            shared::metrics::invocation(shared::trace::scope(trace, ingest.handle(event.payload, deadline))).await
        }
    }))
    .await
}
