//! Tracing set-up for the binaries: JSON lines in Lambda, readable text elsewhere.

/// Installs the global subscriber. `RUST_LOG` filters (default `info`); `LOG_FORMAT=text` forces text.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = in_lambda && std::env::var("LOG_FORMAT").map(|v| v != "text").unwrap_or(true);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = if json {
        builder.json().with_current_span(false).without_time().try_init()
    } else {
        builder.without_time().try_init()
    };
    // A second init (tests) is harmless.
    let _ = result;
}
