//! The sweeper function: wiring only. The logic lives in `handler` and `shared::sweep`.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::aws::Clients;
use shared::queue::SqsJobQueue;
use shared::settings::Settings;
use shared::store::DynamoJobStore;
use shared::sweep::{Bounds, Sweeper};
use sweeper::handler::Handler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let settings = Settings::from_env()?;
    let clients = Clients::from_env().await;
    let jobs = DynamoJobStore::new(clients.dynamodb.clone(), &settings.jobs_table);
    let handler = Arc::new(Handler {
        keys: Some(jobs.clone()),
        sweeper: Sweeper {
            store: shared::metrics::Metered::wrap(Arc::new(jobs)),
            queue: Arc::new(SqsJobQueue::from_settings(clients.sqs.clone(), &settings)),
            bounds: Bounds::from_env()?,
        },
        max_receives: shared::settings::optional("MAX_RECEIVE_COUNT", 3)?,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        shared::metrics::invocation(async move { handler.handle(event.payload).await })
    }))
    .await
}
