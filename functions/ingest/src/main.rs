//! The ingest function: wiring only. The per-object logic lives in `handler`.

use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use ingest::handler::Ingest;
use lambda_runtime::{LambdaEvent, service_fn};
use shared::aws::Clients;
use shared::settings::Settings;
use shared::store::DynamoJobStore;
use shared::store::entries::EntryStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let settings = Settings::from_env()?;
    let clients = Clients::from_env().await;
    let ingest = Arc::new(Ingest {
        store: Arc::new(DynamoJobStore::new(clients.dynamodb.clone(), &settings.jobs_table)),
        entries: EntryStore::new(clients.dynamodb.clone(), &settings.log_entries_table),
        s3: clients.s3.clone(),
        lease: settings.lease,
        line_delay_ms: shared::settings::optional("INGEST_LINE_DELAY_MS", 0)?,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
        let ingest = ingest.clone();
        async move { ingest.handle(event.payload).await }
    }))
    .await
}
