//! Turns contract messages into JSON records that use the glossary's words
//! (`queued`, `action_error`, `attempts_exhausted`), for `--output json` and
//! for the readable tables built from them.

use baton_proto::convert::{from_duration, from_value, timestamp_to_millis};
use baton_proto::v1;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The glossary word for a protobuf enum value name: `JOB_STATE_DEAD` with
/// prefix `JOB_STATE_` is `dead`.
pub(crate) fn word(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// The glossary word of a job state.
pub(crate) fn job_state(state: i32) -> String {
    let state = v1::JobState::try_from(state).unwrap_or_default();
    word(state.as_str_name(), "JOB_STATE_")
}

/// The glossary word of an execution state.
pub(crate) fn execution_state(state: i32) -> String {
    let state = v1::ExecutionState::try_from(state).unwrap_or_default();
    word(state.as_str_name(), "EXECUTION_STATE_")
}

/// The glossary word of a decision reason; empty when unspecified.
pub(crate) fn reason(reason: i32) -> String {
    match v1::DecisionReason::try_from(reason).unwrap_or_default() {
        v1::DecisionReason::Unspecified => String::new(),
        r => word(r.as_str_name(), "DECISION_REASON_"),
    }
}

/// A timestamp as RFC 3339 with milliseconds, or null.
pub(crate) fn time(ts: Option<&prost_types::Timestamp>) -> Value {
    ts.and_then(|t| DateTime::<Utc>::from_timestamp_millis(timestamp_to_millis(t)))
        .map_or(Value::Null, |t| {
            Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
        })
}

/// A duration in milliseconds, or null.
pub(crate) fn millis(d: Option<&prost_types::Duration>) -> Value {
    d.map_or(Value::Null, |d| {
        json!(u64::try_from(from_duration(d).as_millis()).unwrap_or(u64::MAX))
    })
}

/// A task error as JSON, or null when there is none.
pub(crate) fn error(e: Option<&v1::TaskError>) -> Value {
    match e {
        Some(e) if !e.message.is_empty() || e.kind != 0 => json!({
            "kind": word(e.kind().as_str_name(), "ERROR_KIND_"),
            "type": e.r#type,
            "message": e.message,
        }),
        _ => Value::Null,
    }
}

/// A decision as JSON, or null when none was taken.
pub(crate) fn decision(d: Option<&v1::Decision>) -> Value {
    d.map_or(Value::Null, |d| {
        json!({
            "retry": d.retry,
            "reason": reason(d.reason),
            "delay_ms": millis(d.delay.as_ref()),
            "raw_delay_ms": millis(d.raw_delay.as_ref()),
            "jitter_factor": d.jitter_factor,
            "message": d.message,
        })
    })
}

/// A job record.
pub(crate) fn job(j: &v1::Job) -> Value {
    json!({
        "id": j.id,
        "execution_id": j.execution_id,
        "step": j.step,
        "queue": j.queue,
        "kind": j.kind,
        "state": job_state(j.state),
        "priority": j.priority,
        "attempts": j.attempts,
        "max_attempts": j.max_attempts,
        "available_at": time(j.available_at.as_ref()),
        "created_at": time(j.created_at.as_ref()),
        "finished_at": time(j.finished_at.as_ref()),
        "last_error": error(j.last_error.as_ref()),
        "last_reason": reason(j.last_reason),
        "result": j.result.as_ref().map_or(Value::Null, from_value),
    })
}

/// An attempt record.
pub(crate) fn attempt(a: &v1::Attempt) -> Value {
    let outcome = a.outcome().as_str_name();
    json!({
        "number": a.number,
        "worker": a.worker,
        "started_at": time(a.started_at.as_ref()),
        "finished_at": time(a.finished_at.as_ref()),
        "outcome": word(outcome, "ATTEMPT_OUTCOME_"),
        "error": error(a.error.as_ref()),
        "status_code": a.status_code,
        "decision": decision(a.decision.as_ref()),
        "decided_by": a.decided_by,
        "rescheduled_at": time(a.rescheduled_at.as_ref()),
    })
}

/// An execution record.
pub(crate) fn execution(e: &v1::Execution) -> Value {
    json!({
        "id": e.id,
        "playbook_path": e.playbook_path,
        "playbook_version": e.playbook_version,
        "state": execution_state(e.state),
        "created_at": time(e.created_at.as_ref()),
        "finished_at": time(e.finished_at.as_ref()),
        "error": e.error,
    })
}

/// An event record.
pub(crate) fn event(e: &v1::Event) -> Value {
    json!({
        "id": e.id,
        "execution_id": e.execution_id,
        "name": e.name,
        "at": time(e.at.as_ref()),
        "step": e.step,
        "job_id": e.job_id,
        "attempt": e.attempt,
        "max_attempts": e.max_attempts,
        "error": error(e.error.as_ref()),
        "decision": decision(e.decision.as_ref()),
        "available_at": time(e.available_at.as_ref()),
    })
}

/// A playbook record.
pub(crate) fn playbook(p: &v1::Playbook) -> Value {
    json!({
        "id": p.id,
        "path": p.path,
        "name": p.name,
        "version": p.version,
        "steps": p.steps,
        "created_at": time(p.created_at.as_ref()),
    })
}
