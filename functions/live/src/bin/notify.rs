//! The `notify` function: wiring only. The stream handler lives in `live::stream`.

use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use live::stream::Notify;
use shared::live::connections::DynamoConnectionStore;
use shared::live::fanout::Fanout;
use shared::live::management::ApiGatewayManagement;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = shared::aws::sdk_config().await;
    let management = ApiGatewayManagement::new(&config, &shared::settings::required("LIVE_MANAGEMENT_URL")?);
    tracing::info!(endpoint = management.endpoint(), "posting to connections");
    let notify = Arc::new(Notify {
        fanout: Fanout {
            connections: Arc::new(DynamoConnectionStore::new(
                shared::aws::Clients::from_config(&config).dynamodb,
                shared::settings::required("CONNECTIONS_TABLE")?,
            )),
            management: Arc::new(management),
        },
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let notify = notify.clone();
        async move { Ok::<_, lambda_runtime::Error>(notify.handle(event.payload).await) }
    }))
    .await
}
