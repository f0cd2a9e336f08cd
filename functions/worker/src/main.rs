//! The worker function: wiring only. The per-message logic lives in `handler`.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use shared::aws::Clients;
use shared::queue::SqsJobQueue;
use shared::settings::Settings;
use shared::store::DynamoJobStore;

use worker::{archive, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let settings = Settings::from_env()?;
    let clients = Clients::from_env().await;
    let worker = Arc::new(handler::Worker {
        store: Arc::new(DynamoJobStore::new(clients.dynamodb.clone(), &settings.jobs_table)),
        queue: Arc::new(SqsJobQueue::new(
            clients.sqs.clone(),
            &settings.high_queue_url,
            &settings.normal_queue_url,
        )),
        runner: Arc::new(handler::Processors {
            archive: archive::Archiver::new(clients.s3.clone()),
        }),
        lease: settings.lease,
        max_receives: shared::settings::optional("MAX_RECEIVE_COUNT", 3)?,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        async move { worker.handle(event.payload).await }
    }))
    .await
}
