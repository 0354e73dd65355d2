//! One attempt of a leased job: run it, heartbeat it, decide, report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_proto::convert;
use baton_proto::v1::{CompleteRequest, FailRequest, LeasedJob};
use serde_json::Map;
use tracing::{Instrument, Span};

use super::Client;
use super::heartbeat::{self, Stop};
use super::outbox::Report;
use super::span;
use crate::executor::{Executors, JobInfo, Task, TaskOutput};
use crate::metrics::Metrics;
use crate::policy;

/// What every attempt of a worker shares.
#[derive(Debug)]
pub(super) struct Env {
    pub(super) client: Client,
    pub(super) executors: Executors,
    pub(super) metrics: Arc<Metrics>,
}

/// Runs `job` to its end and returns its report; returns none when a
/// heartbeat says the attempt must stop (cancelled, lease lost).
pub(super) async fn run(
    env: Arc<Env>,
    job: LeasedJob,
    heartbeat_every: Duration,
) -> Option<Report> {
    let span = span::attempt(&job);
    attempt(env, job, heartbeat_every).instrument(span).await
}

async fn attempt(env: Arc<Env>, job: LeasedJob, heartbeat_every: Duration) -> Option<Report> {
    tracing::debug!(kind = job.kind.as_str(), "Attempt started");
    let mut meter = env.metrics.start(&job.kind);
    let task = task_of(&job);
    let heartbeats = heartbeat::until_stopped(env.client.clone(), &job, heartbeat_every);
    let began = Instant::now();
    let output = tokio::select! {
        output = env.executors.execute(&task) => output,
        stop = heartbeats => {
            meter.ended(stop.as_str());
            stopped(stop);
            return None;
        }
    };
    meter.ran(began.elapsed());
    meter.ended(if output.succeeded() {
        "succeeded"
    } else {
        "failed"
    });

    let decision = match policy::from_proto(job.retry.as_ref()) {
        Ok(policy) => Some(policy::decide(&policy, &output, job.attempt)),
        Err(message) => {
            // The broker holds the same policy and will say so itself.
            tracing::warn!(error = message, "Retry policy unusable; the broker decides");
            None
        }
    };
    span::record_end(&Span::current(), &output, decision.as_ref());
    log_end(&output);

    Some(report(&job, &output, decision.as_ref()))
}

fn stopped(stop: Stop) {
    Span::current().record("baton.outcome", stop.as_str());
    tracing::info!(
        reason = stop.as_str(),
        "Attempt stopped; nothing is reported"
    );
}

fn log_end(output: &TaskOutput) {
    match &output.error {
        None => tracing::debug!("Attempt succeeded"),
        Some(error) => tracing::info!(error = error.message.as_str(), "Attempt failed"),
    }
}

/// The executor's view of a leased job.
pub(super) fn task_of(job: &LeasedJob) -> Task {
    let object = |s: Option<&prost_types::Struct>| s.map(convert::from_struct).unwrap_or_default();
    Task {
        kind: job.kind.clone(),
        payload: object(job.payload.as_ref()),
        context: object(job.context.as_ref())
            .into_iter()
            .collect::<Map<_, _>>(),
        job: JobInfo {
            job_id: job.id,
            execution_id: job.execution_id,
            step: job.step.clone(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
        },
    }
}

fn report(job: &LeasedJob, output: &TaskOutput, decision: Option<&baton_dsl::Decision>) -> Report {
    let outcome = Some(policy::outcome_to_proto(output));
    let decision = decision.map(policy::decision_to_proto);
    if output.succeeded() {
        Report::Complete(CompleteRequest {
            job_id: job.id,
            lease_token: job.lease_token,
            outcome,
            decision,
        })
    } else {
        Report::Fail(FailRequest {
            job_id: job.id,
            lease_token: job.lease_token,
            outcome,
            decision,
        })
    }
}
