//! One trace id through every function: the X-Ray trace header (`Root=1-<hex8>-<hex24>;...`)
//! of the API request travels with each job message as SQS's `AWSTraceHeader` system attribute,
//! and every log line of a job's handling carries it as `trace_id`, with `job_id`.
//!
//! The header of the work at hand is task-local ([`scope`], [`current`]): the api sets it per
//! request (the invocation's `Lambda-Runtime-Trace-Id`, else the request's `X-Amzn-Trace-Id`),
//! the worker and the ingest per SQS record (the record's `AWSTraceHeader`), and
//! [`crate::queue::SqsJobQueue`] sends it with every message it sends meanwhile: continuations,
//! retries, re-delays and the parts of an image job carry the trace of the work that sent them.

use std::future::Future;

use aws_lambda_events::event::sqs::SqsMessage;

/// The SQS message system attribute that carries the trace header (the only one SQS accepts).
pub const SQS_ATTRIBUTE: &str = "AWSTraceHeader";
/// The HTTP header API Gateway adds and Lambda reads.
pub const HTTP_HEADER: &str = "x-amzn-trace-id";

/// An X-Ray trace header, e.g. `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    header: String,
    root: String,
}

impl TraceHeader {
    /// Reads a header; `None` unless it has a well-formed `Root` (`1-` + 8 hex digits, the epoch
    /// seconds, + `-` + 24 hex digits). At most 1,024 characters (more than any real header).
    pub fn parse(header: &str) -> Option<TraceHeader> {
        let header = header.trim();
        if header.is_empty() || header.len() > 1024 {
            return None;
        }
        let root = header
            .split(';')
            .filter_map(|part| part.trim().split_once('='))
            .find(|(k, _)| k.trim() == "Root")
            .map(|(_, v)| v.trim())?;
        well_formed_root(root).then(|| TraceHeader {
            header: header.to_string(),
            root: root.to_string(),
        })
    }

    /// A new trace, as API Gateway starts one for a request without a header:
    /// `Root=1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>`.
    pub fn mint(now: time::OffsetDateTime) -> TraceHeader {
        let seconds = now.unix_timestamp().clamp(0, u32::MAX as i64) as u32;
        let random: [u8; 12] = rand::random();
        let root = format!("1-{seconds:08x}-{}", hex::encode(random));
        TraceHeader {
            header: format!("Root={root}"),
            root,
        }
    }

    /// The whole header, as sent on (`AWSTraceHeader`, `X-Amzn-Trace-Id`).
    pub fn as_str(&self) -> &str {
        &self.header
    }

    /// The trace id (`1-5759e988-bd862e3fe1be46a994272793`): what log lines carry as `trace_id`
    /// and what X-Ray's console and Logs Insights find a trace by.
    pub fn trace_id(&self) -> &str {
        &self.root
    }

    /// The `AWSTraceHeader` of an SQS record (Lambda puts it among the record's `attributes`).
    pub fn from_record(record: &SqsMessage) -> Option<TraceHeader> {
        record.attributes.get(SQS_ATTRIBUTE).and_then(|h| TraceHeader::parse(h))
    }

    /// The invocation's trace (Lambda's `Lambda-Runtime-Trace-Id`, which X-Ray active tracing sets).
    pub fn from_context(context: &lambda_runtime::Context) -> Option<TraceHeader> {
        context.xray_trace_id.as_deref().and_then(TraceHeader::parse)
    }
}

fn well_formed_root(root: &str) -> bool {
    let mut parts = root.split('-');
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("1"), Some(time), Some(id), None) if hex(time, 8) && hex(id, 24)
    )
}

tokio::task_local! {
    static CURRENT: Option<TraceHeader>;
}

/// Runs `work` with `header` as the trace of the work at hand ([`current`]).
pub async fn scope<F: Future>(header: Option<TraceHeader>, work: F) -> F::Output {
    CURRENT.scope(header, work).await
}

/// The trace of the work at hand, if [`scope`] set one.
pub fn current() -> Option<TraceHeader> {
    CURRENT.try_with(Clone::clone).ok().flatten()
}

/// The span of one job's handling: every log line inside it carries `job_id` and `trace_id`
/// (JSON logs print the current span's fields, [`crate::telemetry`]). `job_id` (and an SQS
/// record's `message_id`) are recorded once known: `span.record("job_id", ...)`.
pub fn job_span(trace: Option<&TraceHeader>) -> tracing::Span {
    let span = tracing::info_span!(
        "job",
        job_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        message_id = tracing::field::Empty
    );
    if let Some(t) = trace {
        span.record("trace_id", t.trace_id());
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_with_their_parts_in_any_order() {
        let h =
            TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1").unwrap();
        assert_eq!(h.trace_id(), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(
            h.as_str(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        );
        let h = TraceHeader::parse("Sampled=0; Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert_eq!(h.trace_id(), "1-5759e988-bd862e3fe1be46a994272793");
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "Root=",
            "Parent=53995c3f42cd8ad8",
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Root=1-5759e98-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd862e3fe1be46a99427279",
            "Root=1-5759e988-bd862e3fe1be46a99427279z",
            "Root=1-5759e988-bd862e3fe1be46a994272793-00",
        ] {
            assert_eq!(TraceHeader::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            TraceHeader::parse(&format!(
                "Root=1-5759e988-bd862e3fe1be46a994272793;{}",
                "x".repeat(1100)
            )),
            None
        );
    }

    #[test]
    fn minted_headers_parse_and_carry_the_time() {
        let now = time::OffsetDateTime::from_unix_timestamp(0x5759e988).unwrap();
        let a = TraceHeader::mint(now);
        let b = TraceHeader::mint(now);
        assert_ne!(a, b, "96 random bits each");
        assert!(a.trace_id().starts_with("1-5759e988-"), "{}", a.trace_id());
        assert_eq!(TraceHeader::parse(a.as_str()), Some(a));
    }

    #[test]
    fn records_give_their_aws_trace_header() {
        let mut record = SqsMessage::default();
        assert_eq!(TraceHeader::from_record(&record), None);
        record.attributes.insert(
            SQS_ATTRIBUTE.into(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into(),
        );
        assert_eq!(
            TraceHeader::from_record(&record).unwrap().trace_id(),
            "1-5759e988-bd862e3fe1be46a994272793"
        );
    }

    #[tokio::test]
    async fn the_current_trace_is_the_scopes_own() {
        assert_eq!(current(), None);
        let a = TraceHeader::parse("Root=1-00000001-000000000000000000000001").unwrap();
        let b = TraceHeader::parse("Root=1-00000002-000000000000000000000002").unwrap();
        let (x, y) = futures::join!(
            scope(Some(a.clone()), async {
                tokio::task::yield_now().await;
                current()
            }),
            scope(Some(b.clone()), async {
                tokio::task::yield_now().await;
                current()
            })
        );
        assert_eq!(
            (x, y),
            (Some(a), Some(b)),
            "two records in one batch keep their own traces"
        );
        assert_eq!(current(), None);
    }
}
