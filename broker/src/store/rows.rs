//! Rows as both backends return them, and their conversion into domain
//! types. The columns are the same in both schemas; only how a backend
//! stores a time or a list differs, so each row is generic over that
//! (the time `T`, the list `L`) and each backend says, through
//! [`Restore`], how its stored form turns back into the domain's.

use std::str::FromStr;
use std::time::Duration;

use baton_dsl::{Decision, RetryPolicy};
use serde_json::Value;

use super::events::decision_from_json;
use crate::error::Error;
use crate::model::{
    Attempt, DecisionRecord, Event, Execution, Job, PlaybookRecord, TaskError, Timestamp,
};

/// A column value as a backend stores it, turned back into the domain's
/// `D` (a Postgres `timestamptz` is already a [`Timestamp`]; SQLite's
/// millisecond count is not).
pub(super) trait Restore<D> {
    /// The domain value; `Corrupt` when the stored one cannot be one.
    fn restore(self) -> Result<D, Error>;
}

/// A column stored as the domain's own type (as Postgres stores times and
/// lists) is already restored.
impl<D> Restore<D> for D {
    fn restore(self) -> Result<D, Error> {
        Ok(self)
    }
}

/// Restores an optional column.
fn restore<S: Restore<D>, D>(stored: Option<S>) -> Result<Option<D>, Error> {
    stored.map(Restore::restore).transpose()
}

/// A `jobs` row (`SELECT *`).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct JobRow<T> {
    id: i64,
    execution_id: Option<i64>,
    step: String,
    queue: String,
    kind: String,
    state: String,
    priority: i32,
    attempts: i32,
    max_attempts: i32,
    available_at: T,
    created_at: T,
    finished_at: Option<T>,
    payload: Value,
    result: Option<Value>,
    last_error: Option<Value>,
    last_reason: Option<String>,
    retry: Value,
    idempotency_key: Option<String>,
    lease_token: Option<i64>,
    lease_expires_at: Option<T>,
    traceparent: String,
}

impl<T: Restore<Timestamp>> TryFrom<JobRow<T>> for Job {
    type Error = Error;

    fn try_from(row: JobRow<T>) -> Result<Job, Error> {
        Ok(Job {
            id: row.id,
            execution_id: row.execution_id,
            step: row.step,
            queue: row.queue,
            kind: row.kind,
            state: parse(&row.state)?,
            priority: row.priority,
            attempts: count(row.attempts)?,
            max_attempts: count(row.max_attempts)?,
            available_at: row.available_at.restore()?,
            created_at: row.created_at.restore()?,
            finished_at: restore(row.finished_at)?,
            payload: row.payload,
            result: row.result,
            last_error: row.last_error.map(task_error).transpose()?,
            last_reason: row.last_reason.as_deref().map(parse).transpose()?,
            retry: policy(&row.retry)?,
            idempotency_key: row.idempotency_key,
            lease_token: row.lease_token,
            lease_expires_at: restore(row.lease_expires_at)?,
            traceparent: row.traceparent,
        })
    }
}

/// An `attempts` row.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct AttemptRow<T> {
    number: i32,
    lease_token: i64,
    worker: String,
    started_at: T,
    finished_at: Option<T>,
    outcome: Option<String>,
    error: Option<Value>,
    status_code: Option<i32>,
    result: Option<Value>,
    retry: Option<bool>,
    reason: Option<String>,
    raw_delay_ms: Option<i64>,
    jitter_factor: Option<f64>,
    delay_ms: Option<i64>,
    decided_by: Option<String>,
    rescheduled_at: Option<T>,
    message: Option<String>,
}

impl<T: Restore<Timestamp>> TryFrom<AttemptRow<T>> for Attempt {
    type Error = Error;

    fn try_from(row: AttemptRow<T>) -> Result<Attempt, Error> {
        let decision = decision_record(&row)?;
        Ok(Attempt {
            number: count(row.number)?,
            worker: row.worker,
            lease_token: row.lease_token,
            started_at: row.started_at.restore()?,
            finished_at: restore(row.finished_at)?,
            outcome: row.outcome.as_deref().map(parse).transpose()?,
            error: row.error.map(task_error).transpose()?,
            status_code: row.status_code.and_then(|code| u16::try_from(code).ok()),
            result: row.result,
            decision,
            rescheduled_at: restore(row.rescheduled_at)?,
        })
    }
}

fn decision_record<T>(row: &AttemptRow<T>) -> Result<Option<DecisionRecord>, Error> {
    let (Some(retry), Some(reason), Some(decided_by)) = (row.retry, &row.reason, &row.decided_by)
    else {
        return Ok(None);
    };
    let decision = Decision {
        retry,
        reason: parse(reason)?,
        raw_delay: millis(row.raw_delay_ms.unwrap_or(0)),
        jitter_factor: row.jitter_factor.unwrap_or(1.0),
        delay: millis(row.delay_ms.unwrap_or(0)),
        message: row.message.clone(),
    };
    Ok(Some(DecisionRecord {
        decision,
        decided_by: parse(decided_by)?,
    }))
}

/// A `playbooks` row.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct PlaybookRow<T, L> {
    id: i64,
    path: String,
    name: String,
    version: i32,
    yaml: String,
    created_at: T,
    steps: L,
}

impl<T, L> TryFrom<PlaybookRow<T, L>> for PlaybookRecord
where
    T: Restore<Timestamp>,
    L: Restore<Vec<String>>,
{
    type Error = Error;

    fn try_from(row: PlaybookRow<T, L>) -> Result<PlaybookRecord, Error> {
        Ok(PlaybookRecord {
            id: row.id,
            path: row.path,
            name: row.name,
            version: count(row.version)?,
            yaml: row.yaml,
            created_at: row.created_at.restore()?,
            steps: row.steps.restore()?,
        })
    }
}

/// An `executions` row.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ExecutionRow<T> {
    id: i64,
    playbook_id: i64,
    playbook_path: String,
    playbook_version: i32,
    state: String,
    workload: Value,
    created_at: T,
    finished_at: Option<T>,
    error: Option<String>,
    traceparent: String,
}

impl<T: Restore<Timestamp>> TryFrom<ExecutionRow<T>> for Execution {
    type Error = Error;

    fn try_from(row: ExecutionRow<T>) -> Result<Execution, Error> {
        Ok(Execution {
            id: row.id,
            playbook_id: row.playbook_id,
            playbook_path: row.playbook_path,
            playbook_version: count(row.playbook_version)?,
            state: parse(&row.state)?,
            workload: row.workload,
            created_at: row.created_at.restore()?,
            finished_at: restore(row.finished_at)?,
            error: row.error,
            traceparent: row.traceparent,
        })
    }
}

/// An `events` row.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct EventRow<T> {
    id: i64,
    execution_id: i64,
    job_id: Option<i64>,
    step: String,
    kind: String,
    attempt: Option<i32>,
    max_attempts: Option<i32>,
    at: T,
    details: Value,
}

impl<T: Restore<Timestamp>> TryFrom<EventRow<T>> for Event {
    type Error = Error;

    fn try_from(row: EventRow<T>) -> Result<Event, Error> {
        let details = &row.details;
        Ok(Event {
            id: row.id,
            execution_id: row.execution_id,
            kind: parse(&row.kind)?,
            at: row.at.restore()?,
            step: row.step,
            job_id: row.job_id,
            attempt: row.attempt.map(count).transpose()?,
            max_attempts: row.max_attempts.map(count).transpose()?,
            error: details.get("error").cloned().map(task_error).transpose()?,
            decision: details
                .get("decision")
                .map(decision_from_json)
                .transpose()?,
            available_at: details
                .get("available_at_ms")
                .and_then(Value::as_i64)
                .and_then(Timestamp::from_timestamp_millis),
        })
    }
}

/// A duration in whole milliseconds, as stored.
pub(super) fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A stored millisecond count as a duration; a negative one reads as zero.
pub(super) fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A stored name (state, kind, reason) as its domain enum.
pub(super) fn parse<T: FromStr<Err = String>>(text: &str) -> Result<T, Error> {
    text.parse().map_err(Error::Corrupt)
}

/// A stored count, which no constraint lets go negative.
fn count(value: i32) -> Result<u32, Error> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("negative count {value}")))
}

fn task_error(json: Value) -> Result<TaskError, Error> {
    serde_json::from_value(json).map_err(|err| Error::Corrupt(format!("task error: {err}")))
}

fn policy(json: &Value) -> Result<RetryPolicy, Error> {
    RetryPolicy::from_json(json).map_err(|err| Error::Corrupt(format!("retry policy: {err}")))
}

/// A count as stored; the dsl caps counts far below `i32::MAX`.
pub(super) fn stored_count(count: u32) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}
