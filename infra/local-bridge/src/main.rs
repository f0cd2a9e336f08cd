//! `local-bridge`: provisions `template.yaml` in the emulators and plays AWS's part around the
//! functions served by `cargo lambda watch` (SQS and S3 event sources, the HTTP API).
//! Endpoints of the emulators come from the environment (`AWS_ENDPOINT_URL_*`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use local_bridge::gateway::Gateway;
use local_bridge::invoke::{Invoker, LambdaApi};
use local_bridge::provision::{self, Clients, Options};
use local_bridge::s3_source::S3Relay;
use local_bridge::sqs_source::SqsPoller;
use local_bridge::template::Template;

#[derive(Parser)]
#[command(about = "Local event sources and HTTP API for the functions, from template.yaml")]
struct Cli {
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Stack name: prefix of every resource name.
    #[arg(long, default_value = "jobs-local")]
    stack: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the template's resources (idempotent) and write the functions' environment.
    Provision {
        /// Write the merged function environment here (KEY=VALUE lines).
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
    /// Provision, then run the event sources and the HTTP API until stopped.
    Serve {
        /// The Lambda Invoke API (cargo lambda watch).
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        lambda_endpoint: String,
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: String,
        /// Concurrent batches per SQS event source.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let template = Template::load(&cli.template)?;
    let clients = Clients::from_env().await;
    let stack = provision::provision(
        &template,
        &clients,
        &Options {
            stack_name: cli.stack.clone(),
            visibility_timeout: None,
        },
    )
    .await
    .context("provisioning the template")?;
    match cli.command {
        Command::Provision { env_file } => {
            let env = stack.merged_env()?;
            let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            match env_file {
                Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
            for (id, p) in &stack.resources {
                eprintln!("  {id:<24} {:<28} {}", p.kind, p.reference);
            }
        }
        Command::Serve {
            lambda_endpoint,
            listen,
            concurrency,
        } => {
            // Long enough for cargo lambda watch to compile a function on its first invocation.
            let invoker: Arc<dyn Invoker> = Arc::new(LambdaApi::new(lambda_endpoint, Duration::from_secs(900)));
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let mut tasks = Vec::new();
            for source in &stack.sqs_sources {
                for _ in 0..concurrency.max(1) {
                    let poller = SqsPoller {
                        sqs: clients.sqs.clone(),
                        source: source.clone(),
                        invoker: invoker.clone(),
                        wait_secs: 20,
                    };
                    tasks.push(tokio::spawn(poller.run(stopped.clone())));
                }
            }
            if let Some(url) = &stack.s3_events_queue_url {
                let relay = S3Relay {
                    sqs: clients.sqs.clone(),
                    queue_url: url.clone(),
                    routes: stack.s3_routes.clone(),
                    invoker: invoker.clone(),
                    wait_secs: 20,
                    retry_delay: Duration::from_secs(5),
                };
                tasks.push(tokio::spawn(relay.run(stopped.clone())));
            }
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let gateway = Arc::new(Gateway {
                routes: stack.http_routes.clone(),
                cors: stack.cors.clone(),
                invoker: invoker.clone(),
                api_id: stack.reference("HttpApi").unwrap_or("local").to_string(),
            });
            tasks.push(tokio::spawn(gateway.serve(listener, stopped.clone())));
            tracing::info!(%listen, sqs_sources = stack.sqs_sources.len(), s3_routes = stack.s3_routes.len(), "local bridge ready");
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            let _ = stop.send(true);
            for t in tasks {
                let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
            }
        }
    }
    Ok(())
}
