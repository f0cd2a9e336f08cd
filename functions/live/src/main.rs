//! The `live` function: wiring only. The routes live in `live::routes`.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{LambdaEvent, service_fn};
use live::routes::Routes;
use shared::aws::Clients;
use shared::live::connections::DynamoConnectionStore;
use shared::live::token::SignIn;
use shared::settings::Settings;
use shared::store::DynamoJobStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let settings = Settings::from_env()?;
    let clients = Clients::from_env().await;
    let routes = Arc::new(Routes {
        connections: Arc::new(DynamoConnectionStore::new(
            clients.dynamodb.clone(),
            shared::settings::required("CONNECTIONS_TABLE")?,
        )),
        jobs: Arc::new(DynamoJobStore::new(clients.dynamodb.clone(), &settings.jobs_table)),
        sign_in: SignIn::from_env()?,
    });
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let routes = routes.clone();
            async move { Ok::<_, lambda_runtime::Error>(routes.handle(event.payload).await) }
        },
    ))
    .await
}
