//! `local-bridge`: provisions `template.yaml` in the emulators and plays AWS's part around the
//! functions served by `cargo lambda watch` (SQS and S3 event sources, schedules, the HTTP API
//! with its JWT authorizer, and a local issuer standing in for Cognito). Endpoints of the
//! emulators come from the environment (`AWS_ENDPOINT_URL_*`). `local-bridge token NAME` prints an
//! access token of the local issuer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use local_bridge::auth::{self, Mint};
use local_bridge::emf::EmfFollower;
use local_bridge::event_source_mappings::Mappings;
use local_bridge::gateway::Gateway;
use local_bridge::invoke::{Bounded, Invoker, LambdaApi, warm_up};
use local_bridge::issuer::Issuer;
use local_bridge::provision::{self, Clients, Options, Stack};
use local_bridge::s3_source::S3Relay;
use local_bridge::schedule::Scheduler;
use local_bridge::sqs_source::SqsPoller;
use local_bridge::stream_source::StreamPoller;
use local_bridge::template::Template;
use local_bridge::websocket::WebSocketServer;

#[derive(Parser)]
#[command(about = "Local event sources and HTTP API for the functions, from template.yaml")]
struct Cli {
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Stack name: prefix of every resource name.
    #[arg(long, default_value = "jobs-local")]
    stack: String,
    /// Template parameter values, `Key=Value` (as `sam deploy --parameter-overrides`); repeatable.
    #[arg(long = "parameter", short = 'p', value_parser = key_value)]
    parameters: Vec<(String, String)>,
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
        /// The WebSocket API (and its @connections Management API), when the template has one.
        #[arg(long, default_value = "127.0.0.1:3002")]
        ws_listen: String,
        /// Concurrent batches per SQS event source.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Added to each function's Timeout before an invocation counts as timed out (waiting
        /// for a free process of cargo lambda watch).
        #[arg(long, default_value_t = 2)]
        timeout_grace_secs: u64,
        /// Before serving, invoke each function once and wait up to this long for cargo lambda
        /// watch to build and start it (0: no warm-up).
        #[arg(long, default_value_t = 300)]
        warm_up_secs: u64,
        /// Fire every Schedule event this often instead of its rate(...) (local tests).
        #[arg(long, env = "LOCAL_SCHEDULE_SECONDS")]
        schedule_seconds: Option<u64>,
        /// Delay before an asynchronous invocation (S3 notification, schedule) is retried, times
        /// the attempt (AWS: about 1 and 2 minutes).
        #[arg(long, default_value_t = 5)]
        async_retry_secs: u64,
        /// Serve the local issuer (OIDC discovery, JWKS, /oauth2/authorize, /oauth2/token, /logout)
        /// here; its key and machine secret live in STATE_DIR/auth.
        #[arg(long)]
        issuer_listen: Option<String>,
        /// The local issuer's public URL (the `iss` of its tokens).
        #[arg(long, env = "ISSUER_URL", default_value = auth::DEFAULT_ISSUER_URL)]
        issuer_url: String,
        /// Where the local dashboard client may be sent back after sign-in and sign-out; repeatable.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long, env = "JOBS_STATE_DIR", default_value = ".local")]
        state_dir: PathBuf,
        /// Serve the Lambda API's event source mapping calls here (List, Get, Update `Enabled`:
        /// pausing a queue), the functions' `AWS_ENDPOINT_URL_LAMBDA`; the flags are kept in
        /// STATE_DIR/event-source-mappings.json.
        #[arg(long)]
        lambda_api_listen: Option<String>,
        /// The functions' output (cargo lambda watch's log): its EMF lines become CloudWatch
        /// metric data (`AWS_ENDPOINT_URL_CLOUDWATCH`), as CloudWatch Logs makes them on AWS.
        #[arg(long)]
        emf_log: Option<PathBuf>,
    },
    /// Print an access token of the local issuer (no emulators needed).
    Token {
        /// The user (`sub` and `username`).
        user: String,
        /// `cognito:groups`; repeatable.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// `scope`, space-separated.
        #[arg(long, default_value = auth::DEFAULT_USER_SCOPE)]
        scope: String,
        #[arg(long, default_value = auth::DASHBOARD_CLIENT_ID)]
        client_id: String,
        /// Seconds to `exp` (negative: expired).
        #[arg(long, default_value_t = auth::TOKEN_LIFETIME_SECS, allow_hyphen_values = true)]
        expires_in: i64,
        #[arg(long, env = "ISSUER_URL", default_value = auth::DEFAULT_ISSUER_URL)]
        issuer_url: String,
        #[arg(long, env = "JOBS_STATE_DIR", default_value = ".local")]
        state_dir: PathBuf,
    },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: expected Key=Value"))
}

/// The local issuer, when `serve` runs one.
struct IssuerArgs {
    listen: String,
    url: String,
    redirect_uris: Vec<String>,
    state_dir: PathBuf,
}

/// The settings of `serve`.
struct ServeArgs {
    lambda_endpoint: String,
    listen: String,
    ws_listen: String,
    concurrency: usize,
    timeout_grace: Duration,
    warm_up: Duration,
    schedule_period: Option<Duration>,
    async_retry: Duration,
    issuer: Option<IssuerArgs>,
    emf_log: Option<PathBuf>,
    /// Where the Lambda API (event source mappings) listens, and the file keeping their flags.
    lambda_api: Option<(String, PathBuf)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    if let Command::Token {
        user,
        groups,
        scope,
        client_id,
        expires_in,
        issuer_url,
        state_dir,
    } = &cli.command
    {
        let token = Mint {
            scope: scope.clone(),
            client_id: client_id.clone(),
            issuer: issuer_url.trim_end_matches('/').to_string(),
            expires_in: *expires_in,
            ..Mint::user(user)
        }
        .groups(groups)
        .sign(state_dir)?;
        println!("{token}");
        return Ok(());
    }
    let template = Template::load(&cli.template)?;
    let clients = Clients::from_env().await;
    let stack = provision::provision(
        &template,
        &clients,
        &Options {
            stack_name: cli.stack.clone(),
            visibility_timeout: None,
            parameters: cli.parameters.iter().cloned().collect::<HashMap<_, _>>(),
            alarms: local_bridge::alarms::AlarmMode::Create {
                period: local_alarm_period()?,
            },
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
            ws_listen,
            concurrency,
            timeout_grace_secs,
            warm_up_secs,
            schedule_seconds,
            async_retry_secs,
            issuer_listen,
            issuer_url,
            redirect_uris,
            state_dir,
            emf_log,
            lambda_api_listen,
        } => {
            let mappings_file = state_dir.join("event-source-mappings.json");
            let args = ServeArgs {
                lambda_api: lambda_api_listen.map(|listen| (listen, mappings_file)),
                issuer: issuer_listen.map(|listen| IssuerArgs {
                    listen,
                    url: issuer_url,
                    redirect_uris,
                    state_dir,
                }),
                lambda_endpoint,
                listen,
                ws_listen,
                concurrency,
                timeout_grace: Duration::from_secs(timeout_grace_secs),
                warm_up: Duration::from_secs(warm_up_secs),
                schedule_period: schedule_seconds.filter(|s| *s > 0).map(Duration::from_secs),
                async_retry: Duration::from_secs(async_retry_secs),
                emf_log,
            };
            serve(&stack, &clients, args).await?;
        }
        Command::Token { .. } => unreachable!("handled above"),
    }
    Ok(())
}

/// Long-poll wait of the event sources. Lambda's pollers wait 20 s; shorter here so that a
/// stopping bridge (`infra/down`, or `infra/up` restarting it) finishes its receives in flight well
/// within the 10 s `infra/env.sh` gives it, instead of leaving them open at the queue.
const LONG_POLL_SECS: i32 = 5;

/// Warms the functions up, then runs the event sources, the schedules and the HTTP API until
/// SIGINT or SIGTERM.
async fn serve(stack: &Stack, clients: &Clients, args: ServeArgs) -> anyhow::Result<()> {
    // Lambda's maximum Timeout (15 min) plus a margin: the backstop under each function's own bound.
    let lambda_api = LambdaApi::new(&args.lambda_endpoint, Duration::from_secs(960));
    if !args.warm_up.is_zero() {
        warm_up_all(&lambda_api, stack, args.warm_up).await;
    }
    let invoker: Arc<dyn Invoker> = Arc::new(Bounded::new(Arc::new(lambda_api), stack.timeouts(), args.timeout_grace));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(path) = &args.emf_log {
        let follower = EmfFollower {
            path: path.clone(),
            cloudwatch: clients.cloudwatch.clone(),
            every: Duration::from_millis(500),
        };
        tasks.push(tokio::spawn(follower.run(stopped.clone())));
    }
    // The issuer first: the gateway fetches its keys on the first protected request.
    if let Some(i) = &args.issuer {
        let issuer = Arc::new(Issuer::new(&i.state_dir, &i.url, i.redirect_uris.clone())?);
        let listener = tokio::net::TcpListener::bind(&i.listen)
            .await
            .with_context(|| format!("binding the issuer to {}", i.listen))?;
        tracing::info!(listen = %i.listen, issuer = %i.url, "local issuer ready");
        tasks.push(tokio::spawn(issuer.serve(listener, stopped.clone())));
    }
    // The SQS event source mappings, each with its Enabled flag (kept only with the Lambda API).
    let mappings = Mappings::new(
        &stack.name,
        &stack.sqs_sources,
        args.lambda_api.as_ref().map(|(_, file)| file.clone()),
    );
    if let Some((listen, _)) = &args.lambda_api {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the Lambda API to {listen}"))?;
        tracing::info!(%listen, mappings = mappings.all().len(), "Lambda API (event source mappings) ready");
        tasks.push(tokio::spawn(mappings.clone().serve(listener, stopped.clone())));
    }
    for source in &stack.sqs_sources {
        let flag = mappings.of(source).map(|m| m.enabled());
        for _ in 0..args.concurrency.max(1) {
            let poller = SqsPoller {
                sqs: clients.sqs.clone(),
                source: source.clone(),
                invoker: invoker.clone(),
                wait_secs: LONG_POLL_SECS,
            };
            tasks.push(tokio::spawn(poller.run_while_enabled(stopped.clone(), flag.clone())));
        }
    }
    if let Some(url) = &stack.s3_events_queue_url {
        let relay = S3Relay {
            sqs: clients.sqs.clone(),
            queue_url: url.clone(),
            routes: stack.s3_routes.clone(),
            invoker: invoker.clone(),
            wait_secs: LONG_POLL_SECS,
            retry_delay: args.async_retry,
        };
        tasks.push(tokio::spawn(relay.run(stopped.clone())));
    }
    for schedule in &stack.schedules {
        let scheduler = Arc::new(Scheduler {
            schedule: schedule.clone(),
            invoker: invoker.clone(),
            sqs: clients.sqs.clone(),
            period: args.schedule_period.unwrap_or(schedule.period),
            retry_delay: args.async_retry,
        });
        tasks.push(tokio::spawn(scheduler.run(stopped.clone())));
    }
    for source in &stack.stream_sources {
        let poller = StreamPoller {
            streams: clients.streams.clone(),
            sqs: clients.sqs.clone(),
            source: source.clone(),
            invoker: invoker.clone(),
            idle: Duration::from_millis(250),
        };
        tracing::info!(function = %source.function, stream = %source.stream_arn, batch_size = source.batch_size, "DynamoDB stream event source");
        tasks.push(tokio::spawn(poller.run(stopped.clone())));
    }
    if let Some(ws) = &stack.websocket_api {
        let listener = tokio::net::TcpListener::bind(&args.ws_listen)
            .await
            .with_context(|| format!("binding the WebSocket API to {}", args.ws_listen))?;
        let routes: Vec<&str> = ws.routes.iter().map(|r| r.key.as_str()).collect();
        tracing::info!(listen = %args.ws_listen, api = %ws.logical_id, ?routes, stage = %ws.stage, "WebSocket API ready");
        let server = Arc::new(WebSocketServer::new(
            ws.clone(),
            invoker.clone(),
            args.ws_listen.clone(),
        ));
        tasks.push(tokio::spawn(server.serve(listener, stopped.clone())));
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let api = &stack.http_api;
    for (name, a) in &api.authorizers {
        tracing::info!(authorizer = %name, issuer = %a.issuer, audience = ?a.audience, "JWT authorizer");
    }
    let public: Vec<String> = api
        .routes
        .iter()
        .filter(|r| r.authorizer.is_none())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    tracing::info!(?public, throttle = ?api.throttle, cors = api.cors.is_some(), "HTTP API routes without authorizer");
    let gateway = Arc::new(Gateway::new(
        api.clone(),
        invoker.clone(),
        stack.reference("HttpApi").unwrap_or("local"),
    ));
    tasks.push(tokio::spawn(gateway.serve(listener, stopped.clone())));
    tracing::info!(
        listen = %args.listen,
        sqs_sources = stack.sqs_sources.len(),
        s3_routes = stack.s3_routes.len(),
        schedules = stack.schedules.len(),
        "local bridge ready"
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = stop.send(true);
    // The pollers finish their receive in flight (at most one long poll) and release what it got.
    let finished = tokio::time::timeout(
        Duration::from_secs(LONG_POLL_SECS as u64 + 3),
        futures::future::join_all(tasks),
    )
    .await;
    if finished.is_err() {
        tracing::warn!("stopping: some event sources did not finish their receive in time");
    }
    Ok(())
}

/// Invokes every function once, all at a time, each bounded by `limit`; says what did not start.
async fn warm_up_all(lambda_api: &LambdaApi, stack: &Stack, limit: Duration) {
    let names: Vec<&str> = stack.functions.values().map(|f| f.name.as_str()).collect();
    let results = futures::future::join_all(names.iter().map(|name| warm_up(lambda_api, name, limit))).await;
    for (name, result) in names.iter().zip(results) {
        match result {
            Ok(took) => tracing::info!(function = name, took_ms = took.as_millis() as u64, "function warm"),
            Err(e) => tracing::error!(
                function = name,
                error = %e,
                "warm-up failed: cargo lambda watch did not start the function (see its log); serving anyway"
            ),
        }
    }
}

/// `LOCAL_ALARM_PERIOD_SECONDS`: every alarm's period locally instead of the template's (unset or
/// empty: the template's).
fn local_alarm_period() -> anyhow::Result<Option<u32>> {
    match std::env::var("LOCAL_ALARM_PERIOD_SECONDS") {
        Ok(v) if !v.trim().is_empty() => {
            let secs: u32 = v
                .trim()
                .parse()
                .with_context(|| format!("LOCAL_ALARM_PERIOD_SECONDS={v:?}"))?;
            anyhow::ensure!(secs > 0, "LOCAL_ALARM_PERIOD_SECONDS must be above 0");
            Ok(Some(secs))
        }
        _ => Ok(None),
    }
}
