//! The api function: wiring only. Routes live in `app`.

use std::sync::Arc;

use shared::aws::Clients;
use shared::queue::SqsJobQueue;
use shared::service::Jobs;
use shared::settings::Settings;
use shared::store::entries::DynamoEntryStore;
use shared::store::{DynamoJobStore, DynamoPartStore};

use api::app;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let settings = Settings::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let clients = Clients::from_config(&sdk);
    // Every write of a job is metered (shared::metrics): the lifecycle's EMF figures.
    let store = shared::metrics::Metered::wrap(Arc::new(DynamoJobStore::new(
        clients.dynamodb.clone(),
        &settings.jobs_table,
    )));
    let parts = Arc::new(DynamoPartStore::new(clients.dynamodb.clone(), &settings.jobs_table));
    let queue = Arc::new(SqsJobQueue::from_settings(clients.sqs.clone(), &settings));
    let files = api::files::Files {
        s3: clients.s3.clone(),
        bucket: settings.uploads_bucket.clone(),
        entries: Arc::new(DynamoEntryStore::new(
            clients.dynamodb.clone(),
            &settings.log_entries_table,
        )),
        max_upload_bytes: shared::settings::optional("UPLOAD_MAX_BYTES", api::files::MAX_UPLOAD_BYTES)?,
        max_presigned_bytes: shared::settings::optional("PRESIGNED_MAX_BYTES", api::files::MAX_PRESIGNED_BYTES)?,
    };
    let jobs = Jobs::new(store, queue, settings.lease)
        .with_quotas(shared::quota::Quotas::from_env()?)
        .with_uploads_bucket(&settings.uploads_bucket)
        .with_bounds(shared::sweep::Bounds::from_env()?)
        .with_payloads(Arc::new(shared::payloads::S3Payloads::new(
            clients.s3.clone(),
            &settings.uploads_bucket,
        )));
    let state = app::AppState {
        jobs,
        files,
        parts,
        auth: api::auth::AuthConfig::from_env()?,
    };
    // Lambda (the queues' event source mappings) at AWS_ENDPOINT_URL_LAMBDA when set: locally the bridge.
    let queues = api::dashboard::Queues::from_env(clients.clone())
        .with_lambda(aws_sdk_lambda::Client::new(&sdk), |var| std::env::var(var).ok());
    let mut router = app::router(state)
        .layer(axum::Extension(queues))
        .layer(axum::Extension(api::metrics::MetricsSource::new(&sdk)));
    if let Some(live) = api::dashboard::LiveUrl::from_env()? {
        router = router.layer(axum::Extension(live));
    }
    // The EMF lines of each request are written when it ends.
    let router = router.layer(axum::middleware::from_fn(
        |req: axum::extract::Request, next: axum::middleware::Next| shared::metrics::invocation(next.run(req)),
    ));
    lambda_http::run(router).await
}
