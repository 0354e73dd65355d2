//! Workflow rules both backends apply the same way: what a run starts
//! with, what a failed step tells its execution, and when a job may be
//! requeued or cancelled.

use serde_json::{Map, Value};

use crate::error::Error;
use crate::flow::Planned;
use crate::model::{ErrorKind, ExecutionState, Job, JobState, TaskError};

/// Playbook jobs wait in this queue.
pub(super) const PLAYBOOK_QUEUE: &str = "default";

/// The playbook's workload with the run's top-level keys replacing its own.
pub(super) fn merge(base: &Value, overrides: Option<Map<String, Value>>) -> Value {
    let mut workload = base.as_object().cloned().unwrap_or_default();
    workload.extend(overrides.unwrap_or_default());
    Value::Object(workload)
}

/// INVALID_ARGUMENT when a step the run would start with cannot be planned:
/// the run is refused before anything is stored.
pub(super) fn check_start(planned: &[Planned]) -> Result<(), Error> {
    match planned.iter().find(|p| matches!(p, Planned::Failed { .. })) {
        Some(Planned::Failed { step, message }) => {
            Err(Error::InvalidArgument(format!("step `{step}`: {message}")))
        }
        _ => Ok(()),
    }
}

/// Why an execution failed, when its step `step` failed for `why`.
pub(super) fn step_failure(step: &str, why: &str) -> String {
    format!("step `{step}` failed: {why}")
}

/// The failure recorded for a step that could not be planned.
pub(super) fn planning_error(message: &str) -> TaskError {
    TaskError::new(ErrorKind::InvalidTask, message.to_owned())
}

/// The failure recorded for a job a user cancelled.
pub(super) fn cancellation(job_id: i64) -> TaskError {
    TaskError::new(ErrorKind::Internal, format!("job {job_id} was cancelled"))
}

/// FAILED_PRECONDITION unless `job` is dead or cancelled: only those
/// requeue.
pub(super) fn check_requeue(job: &Job) -> Result<(), Error> {
    if matches!(job.state, JobState::Dead | JobState::Cancelled) {
        return Ok(());
    }
    let message = format!(
        "job {} is {}; only dead or cancelled jobs requeue",
        job.id, job.state
    );
    Err(Error::FailedPrecondition(message))
}

/// FAILED_PRECONDITION when a requeued job's execution, in stored `state`,
/// was cancelled: a cancelled execution stays cancelled.
pub(super) fn check_reopen(execution_id: i64, state: &str) -> Result<(), Error> {
    if state != ExecutionState::Cancelled.as_str() {
        return Ok(());
    }
    let message = format!("execution {execution_id} is cancelled; its jobs cannot requeue");
    Err(Error::FailedPrecondition(message))
}
