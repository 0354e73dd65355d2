//! Lease-token rules both backends apply: whether a token is still the
//! job's, how a stale one is refused, and what a fresh lease hands out.

use serde_json::Value;

use crate::error::Error;
use crate::model::{Job, JobState, LeasedJob};

/// The job's state when `token` is its latest lease (leased, or cancelled
/// under that lease); `None` when the token is stale.
pub(super) fn current(job: &Job, token: i64) -> Option<JobState> {
    (job.lease_token == Some(token)).then_some(job.state)
}

/// The error a call with stale `token` gets.
pub(super) fn stale(job: &Job, token: i64) -> Error {
    Error::StaleToken {
        job_id: job.id,
        token,
    }
}

/// Logs a refused call; the backend records it in `fenced_calls` too, so
/// that refusals outlive the log.
pub(super) fn warn_fenced(job: &Job, token: i64, call: &str) {
    tracing::warn!(
        job_id = job.id,
        lease_token = token,
        current_token = job.lease_token,
        call,
        "Refused a call with a stale lease token"
    );
}

/// A job just leased, with its execution's template context.
pub(super) fn leased_job(job: Job, context: Value) -> Result<LeasedJob, Error> {
    let lease_token = job
        .lease_token
        .ok_or_else(|| Error::Corrupt(format!("leased job {} has no token", job.id)))?;
    Ok(LeasedJob {
        job,
        lease_token,
        context,
    })
}
