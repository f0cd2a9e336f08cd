//! The worker function: wiring only. The per-message logic lives in `handler`.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use shared::aws::Clients;
use shared::mail::SesMailer;
use shared::notify::SnsPublisher;
use shared::queue::SqsJobQueue;
use shared::settings::Settings;
use shared::store::{DynamoJobStore, DynamoPartStore};
use worker::image::store_master::StoreMaster;

use worker::config::Config;
use worker::image::{ImageJobs, fetch};
use worker::{archive, email, handler, notification, report};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let settings = Settings::from_env()?;
    let config = Config::from_env()?;
    let clients = Clients::from_env().await;
    // Every write of a job is metered (shared::metrics): the lifecycle's EMF figures.
    let store = shared::metrics::Metered::wrap(Arc::new(DynamoJobStore::new(
        clients.dynamodb.clone(),
        &settings.jobs_table,
    )));
    let queue = Arc::new(SqsJobQueue::from_settings(clients.sqs.clone(), &settings));
    // Loaded once per cold start, then kept in memory.
    let stores = StoreMaster::from_env(&clients.s3).await?;
    tracing::info!(stores = stores.len(), "store master loaded");
    let images = ImageJobs {
        store: store.clone(),
        parts: Arc::new(DynamoPartStore::new(clients.dynamodb.clone(), &settings.jobs_table)),
        queue: queue.clone(),
        fetcher: fetch::Fetcher::new(fetch::FetchConfig::from_env()?)?,
        stores,
        gpu_delay: worker::image::parse_gpu_delay(&std::env::var("IMAGE_GPU_DELAY_MS").unwrap_or_default())?,
        payloads: Some(Arc::new(shared::payloads::S3Payloads::new(
            clients.s3.clone(),
            &settings.uploads_bucket,
        ))),
    };
    let worker = Arc::new(handler::Worker {
        store: store.clone(),
        queue,
        runner: Arc::new(handler::Processors {
            archive: archive::Archiver::new(Arc::new(shared::objects::S3Objects::new(clients.s3.clone()))),
            email: email::Emailer::new(Arc::new(SesMailer::new(clients.ses.clone(), config.email_from))),
            notify: notification::Notifier::new(Arc::new(SnsPublisher::new(
                clients.sns.clone(),
                config.notifications_topic_arn,
            ))),
            report: report::Reporter {
                store: store.clone(),
                objects: Arc::new(shared::objects::S3Objects::new(clients.s3.clone())),
                bucket: settings.uploads_bucket.clone(),
                link_ttl: config.report_link,
                max_jobs: report::REPORT_MAX_JOBS,
            },
        }),
        images: Arc::new(images),
        lease: settings.lease,
        max_receives: shared::settings::optional("MAX_RECEIVE_COUNT", 3)?,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        let remaining = event
            .context
            .deadline()
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        // The invocation's trace (X-Ray active tracing), for records that carry none of their own.
        let trace = shared::trace::TraceHeader::from_context(&event.context);
        shared::metrics::invocation(async move {
            shared::trace::scope(trace, worker.handle_within(event.payload, remaining)).await
        })
    }))
    .await
}
