//! Tracing set-up for the binaries: JSON lines in Lambda, readable text elsewhere.
//!
//! Lambda's own log settings (the template's `LoggingConfig`) come first, as the Rust runtime
//! reads them: `AWS_LAMBDA_LOG_LEVEL` (TRACE, DEBUG, INFO, WARN, ERROR, FATAL), else `RUST_LOG`,
//! else `info`; `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`), else JSON in Lambda unless
//! `LOG_FORMAT=text`. A JSON line carries the fields of the span it was written in: inside a
//! job's span ([`crate::trace::job_span`]) `span.job_id` and `span.trace_id`, elsewhere the
//! runtime's `requestId` and `xrayTraceId`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber ([`settings`] from the environment).
pub fn init() {
    let (filter, json) = settings(|name| std::env::var(name).ok());
    // A second init (tests) is harmless: its error is dropped.
    if json {
        let _ = json_subscriber(std::io::stdout, filter).try_init();
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .without_time()
            .try_init();
    }
}

/// The filter and whether lines are JSON, from these variables (`var` reads one).
pub fn settings(var: impl Fn(&str) -> Option<String>) -> (EnvFilter, bool) {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let filter = match set("AWS_LAMBDA_LOG_LEVEL") {
        Some(level) => EnvFilter::new(lambda_level(&level)),
        None => set("RUST_LOG")
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| EnvFilter::new("info")),
    };
    let json = match set("AWS_LAMBDA_LOG_FORMAT").map(|f| f.to_ascii_lowercase()) {
        Some(f) if f == "json" => true,
        Some(f) if f == "text" => false,
        _ => set("AWS_LAMBDA_FUNCTION_NAME").is_some() && set("LOG_FORMAT").map(|v| v != "text").unwrap_or(true),
    };
    (filter, json)
}

/// Lambda's level names as tracing's (Lambda's FATAL has no tracing level: errors).
fn lambda_level(level: &str) -> &'static str {
    match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => "info",
    }
}

/// The JSON subscriber the functions log with (one line per event, the current span's fields
/// in `span`), writing to `writer`: tests capture lines through it.
pub fn json_subscriber<W>(writer: W, filter: EnvFilter) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .with_writer(writer)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> (String, bool) {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (filter, json) = settings(|n| vars.get(n).cloned());
        (filter.to_string(), json)
    }

    #[test]
    fn lambdas_log_settings_come_first() {
        assert_eq!(
            with(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG"), ("RUST_LOG", "warn")]),
            ("debug".into(), false)
        );
        assert_eq!(with(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).0, "error");
        assert_eq!(with(&[("RUST_LOG", "warn,shared=debug")]).0, "shared=debug,warn");
        assert_eq!(with(&[]).0, "info");
    }

    #[test]
    fn json_in_lambda_unless_told_otherwise() {
        assert!(!with(&[]).1, "outside Lambda: text");
        assert!(with(&[("AWS_LAMBDA_FUNCTION_NAME", "worker")]).1);
        assert!(!with(&[("AWS_LAMBDA_FUNCTION_NAME", "worker"), ("LOG_FORMAT", "text")]).1);
        assert!(
            !with(&[
                ("AWS_LAMBDA_FUNCTION_NAME", "worker"),
                ("AWS_LAMBDA_LOG_FORMAT", "Text")
            ])
            .1
        );
        assert!(with(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).1);
    }
}
