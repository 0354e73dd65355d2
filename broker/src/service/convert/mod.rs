//! Conversions between protobuf messages and the domain types, in one
//! place so handlers only call them.

mod records;

use std::time::Duration;

use baton_dsl::{Decision, Outcome, Reason};
use baton_proto::convert::{from_value, timestamp_from_millis, to_duration};
use baton_proto::v1 as pb;

use crate::error::Error;
use crate::model::{
    AttemptOutcome, ErrorKind, EventKind, ExecutionState, JobState, Report, TaskError, Timestamp,
    WorkerDecision,
};

pub(crate) use records::*;

/// A stored time as a protobuf `Timestamp`.
pub(crate) fn timestamp(at: Timestamp) -> prost_types::Timestamp {
    timestamp_from_millis(at.timestamp_millis())
}

/// An optional stored time.
pub(crate) fn timestamp_opt(at: Option<Timestamp>) -> Option<prost_types::Timestamp> {
    at.map(timestamp)
}

/// A duration as a protobuf `Duration` field.
pub(crate) fn duration(d: Duration) -> Option<prost_types::Duration> {
    Some(to_duration(d))
}

pub(crate) fn job_state(state: JobState) -> pb::JobState {
    match state {
        JobState::Queued => pb::JobState::Queued,
        JobState::Leased => pb::JobState::Leased,
        JobState::Done => pb::JobState::Done,
        JobState::Dead => pb::JobState::Dead,
        JobState::Cancelled => pb::JobState::Cancelled,
    }
}

/// A state filter; unspecified (or unknown) matches every state.
pub(crate) fn job_state_filter(value: i32) -> Option<JobState> {
    match pb::JobState::try_from(value).ok()? {
        pb::JobState::Unspecified => None,
        pb::JobState::Queued => Some(JobState::Queued),
        pb::JobState::Leased => Some(JobState::Leased),
        pb::JobState::Done => Some(JobState::Done),
        pb::JobState::Dead => Some(JobState::Dead),
        pb::JobState::Cancelled => Some(JobState::Cancelled),
    }
}

pub(crate) fn execution_state(state: ExecutionState) -> pb::ExecutionState {
    match state {
        ExecutionState::Running => pb::ExecutionState::Running,
        ExecutionState::Completed => pb::ExecutionState::Completed,
        ExecutionState::Failed => pb::ExecutionState::Failed,
        ExecutionState::Cancelled => pb::ExecutionState::Cancelled,
    }
}

/// A state filter; unspecified (or unknown) matches every state.
pub(crate) fn execution_state_filter(value: i32) -> Option<ExecutionState> {
    match pb::ExecutionState::try_from(value).ok()? {
        pb::ExecutionState::Unspecified => None,
        pb::ExecutionState::Running => Some(ExecutionState::Running),
        pb::ExecutionState::Completed => Some(ExecutionState::Completed),
        pb::ExecutionState::Failed => Some(ExecutionState::Failed),
        pb::ExecutionState::Cancelled => Some(ExecutionState::Cancelled),
    }
}

pub(crate) fn event_kind(kind: EventKind) -> pb::EventKind {
    // The two enums list the same glossary in the same order.
    let index = EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    let value = i32::try_from(index + 1).unwrap_or(0);
    pb::EventKind::try_from(value).unwrap_or(pb::EventKind::Unspecified)
}

pub(crate) fn attempt_outcome(outcome: Option<AttemptOutcome>) -> pb::AttemptOutcome {
    match outcome {
        None => pb::AttemptOutcome::Unspecified,
        Some(AttemptOutcome::Succeeded) => pb::AttemptOutcome::Succeeded,
        Some(AttemptOutcome::Failed) => pb::AttemptOutcome::Failed,
        Some(AttemptOutcome::LeaseExpired) => pb::AttemptOutcome::LeaseExpired,
        Some(AttemptOutcome::Released) => pb::AttemptOutcome::Released,
        Some(AttemptOutcome::Cancelled) => pb::AttemptOutcome::Cancelled,
    }
}

pub(crate) fn reason(reason: Option<Reason>) -> pb::DecisionReason {
    match reason {
        None => pb::DecisionReason::Unspecified,
        Some(Reason::AttemptsExhausted) => pb::DecisionReason::AttemptsExhausted,
        Some(Reason::StopWhen) => pb::DecisionReason::StopWhen,
        Some(Reason::RetryWhen) => pb::DecisionReason::RetryWhen,
        Some(Reason::RetryWhenFalse) => pb::DecisionReason::RetryWhenFalse,
        Some(Reason::Default) => pb::DecisionReason::Default,
        Some(Reason::ExpressionError) => pb::DecisionReason::ExpressionError,
    }
}

fn reason_from(value: i32) -> Option<Reason> {
    match pb::DecisionReason::try_from(value).ok()? {
        pb::DecisionReason::Unspecified => None,
        pb::DecisionReason::AttemptsExhausted => Some(Reason::AttemptsExhausted),
        pb::DecisionReason::StopWhen => Some(Reason::StopWhen),
        pb::DecisionReason::RetryWhen => Some(Reason::RetryWhen),
        pb::DecisionReason::RetryWhenFalse => Some(Reason::RetryWhenFalse),
        pb::DecisionReason::Default => Some(Reason::Default),
        pb::DecisionReason::ExpressionError => Some(Reason::ExpressionError),
    }
}

fn error_kind(value: i32) -> ErrorKind {
    let kind = pb::ErrorKind::try_from(value).unwrap_or(pb::ErrorKind::Unspecified);
    let index = usize::try_from(i32::from(kind)).unwrap_or(0);
    ErrorKind::ALL
        .get(index)
        .copied()
        .unwrap_or(ErrorKind::Unspecified)
}

pub(crate) fn task_error(error: &TaskError) -> pb::TaskError {
    let index = ErrorKind::ALL
        .iter()
        .position(|k| *k == error.kind)
        .unwrap_or(0);
    pb::TaskError {
        kind: i32::try_from(index).unwrap_or(0),
        r#type: error.error_type.clone(),
        message: error.message.clone(),
        traceback: error.traceback.clone(),
    }
}

fn task_error_from(error: &pb::TaskError) -> TaskError {
    TaskError {
        kind: error_kind(error.kind),
        error_type: error.r#type.clone(),
        message: error.message.clone(),
        traceback: error.traceback.clone(),
    }
}

pub(crate) fn decision(decision: &Decision) -> pb::Decision {
    pb::Decision {
        retry: decision.retry,
        delay: duration(decision.delay),
        reason: reason(Some(decision.reason)).into(),
        raw_delay: duration(decision.raw_delay),
        jitter_factor: decision.jitter_factor,
        message: decision.message.clone().unwrap_or_default(),
    }
}

fn signed_ms(d: Option<&prost_types::Duration>) -> i64 {
    d.map_or(0, |d| {
        d.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(d.nanos) / 1_000_000)
    })
}

/// A worker's decision; an unspecified reason reads as `default`.
fn worker_decision(decision: &pb::Decision) -> WorkerDecision {
    WorkerDecision {
        retry: decision.retry,
        reason: reason_from(decision.reason).unwrap_or(Reason::Default),
        delay_ms: signed_ms(decision.delay.as_ref()),
        raw_delay_ms: signed_ms(decision.raw_delay.as_ref()),
        jitter_factor: decision.jitter_factor,
        message: Some(decision.message.clone()).filter(|m| !m.is_empty()),
    }
}

/// The report of a `Complete` (`success`) or `Fail` call. A failure must
/// carry its error.
pub(crate) fn report(
    success: bool,
    outcome: Option<&pb::Outcome>,
    decision: Option<&pb::Decision>,
) -> Result<Report, Error> {
    let outcome = outcome.cloned().unwrap_or_default();
    let error = outcome.error.as_ref().map(task_error_from);
    if !success && error.is_none() {
        return Err(Error::InvalidArgument(
            "outcome.error is required by Fail".into(),
        ));
    }
    let status_code = outcome.status_code.map(u16::try_from).transpose();
    let status_code = status_code
        .map_err(|_| Error::InvalidArgument("outcome.status_code is above 65535".into()))?;
    Ok(Report {
        outcome: Outcome {
            success,
            result: outcome.result.as_ref().map(from_value).unwrap_or_default(),
            status_code,
            error: error.as_ref().map(|e| e.message.clone()),
        },
        error,
        decision: decision.map(worker_decision),
    })
}
