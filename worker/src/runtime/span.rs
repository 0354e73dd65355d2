//! The `baton.attempt` span: one per attempt, child of the job's trace.

use std::collections::HashMap;

use baton_dsl::Decision;
use baton_proto::v1::LeasedJob;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::executor::TaskOutput;

/// A span for `job`'s attempt, its parent taken from the job's W3C
/// `traceparent` when it carries a valid one.
///
/// Integers are recorded as `i64`: the OpenTelemetry layer exports `u64`
/// fields as strings.
pub(super) fn attempt(job: &LeasedJob) -> Span {
    let span = tracing::info_span!(
        "baton.attempt",
        baton.execution_id = job.execution_id,
        baton.step = job.step.as_str(),
        baton.job_id = job.id,
        baton.kind = job.kind.as_str(),
        baton.attempt = i64::from(job.attempt),
        baton.max_attempts = i64::from(job.max_attempts),
        baton.outcome = Empty,
        baton.decision.retry = Empty,
        baton.decision.reason = Empty,
        baton.decision.delay_ms = Empty,
        otel.status_code = Empty,
    );
    if let Some(parent) = parent(&job.traceparent)
        && let Err(err) = span.set_parent(parent)
    {
        tracing::debug!(error = %err, "Attempt span kept without its trace");
    }
    span
}

fn parent(traceparent: &str) -> Option<opentelemetry::Context> {
    if traceparent.is_empty() {
        return None;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// Records how the attempt ended and what the policy decided.
pub(super) fn record_end(span: &Span, output: &TaskOutput, decision: Option<&Decision>) {
    let (outcome, status) = if output.succeeded() {
        ("succeeded", "ok")
    } else {
        ("failed", "error")
    };
    span.record("baton.outcome", outcome);
    span.record("otel.status_code", status);
    if let Some(decision) = decision {
        let delay_ms = i64::try_from(decision.delay.as_millis()).unwrap_or(i64::MAX);
        span.record("baton.decision.retry", decision.retry);
        span.record("baton.decision.reason", decision.reason.as_str());
        span.record("baton.decision.delay_ms", delay_ms);
    }
}
