//! Every request runs in a trace ([`shared::trace`]): the jobs it creates or retries are sent
//! with its `AWSTraceHeader`, and its log lines carry its `trace_id`.
//!
//! Which trace: the invocation's (`Lambda-Runtime-Trace-Id`, set by X-Ray active tracing, in the
//! request's `lambda_http::Context`), else the request's `X-Amzn-Trace-Id` (API Gateway adds one;
//! HTTP APIs have no X-Ray tracing of their own), else a new one.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use shared::trace::{HTTP_HEADER, TraceHeader};
use tracing::Instrument;

/// The trace of `req` (see the module's doc); a new one when it names none.
pub fn of(req: &Request) -> TraceHeader {
    req.extensions()
        .get::<lambda_http::Context>()
        .and_then(TraceHeader::from_context)
        .or_else(|| {
            req.headers()
                .get(HTTP_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(TraceHeader::parse)
        })
        .unwrap_or_else(|| TraceHeader::mint(shared::clock::now()))
}

/// Middleware: runs the request in its trace and in a span carrying `trace_id`.
pub async fn in_trace(req: Request, next: Next) -> Response {
    let trace = of(&req);
    let span = tracing::info_span!("request", trace_id = trace.trace_id());
    shared::trace::scope(Some(trace), next.run(req).instrument(span)).await
}
