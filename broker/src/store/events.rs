//! Events about to be recorded, and the JSON `details` they carry: what
//! each backend inserts, and how a stored decision reads back.

use baton_dsl::Decision;
use serde_json::{Map, Value};

use super::rows::{millis, ms, parse};
use crate::error::Error;
use crate::model::{EventKind, Job, TaskError, Timestamp};

/// An event about to be recorded; each backend inserts its fields as they
/// are.
#[derive(Debug)]
pub(super) struct NewEvent {
    pub(super) execution_id: i64,
    pub(super) kind: EventKind,
    pub(super) job_id: Option<i64>,
    pub(super) step: String,
    pub(super) attempt: Option<i32>,
    pub(super) max_attempts: Option<i32>,
    pub(super) details: Map<String, Value>,
}

impl NewEvent {
    /// An event about the execution as a whole.
    pub(super) fn execution(execution_id: i64, kind: EventKind) -> Self {
        NewEvent {
            execution_id,
            kind,
            job_id: None,
            step: String::new(),
            attempt: None,
            max_attempts: None,
            details: Map::new(),
        }
    }

    /// An event about `job`'s current attempt; `None` for a bare job,
    /// which has no history of events.
    pub(super) fn job(job: &Job, kind: EventKind) -> Option<Self> {
        let mut event = NewEvent::execution(job.execution_id?, kind);
        event.job_id = Some(job.id);
        event.step.clone_from(&job.step);
        event.attempt = i32::try_from(job.attempts).ok().filter(|n| *n > 0);
        event.max_attempts = i32::try_from(job.max_attempts).ok();
        Some(event)
    }

    /// The `step_started` event of a job just inserted.
    pub(super) fn started(job: &Job) -> Option<Self> {
        NewEvent::job(job, EventKind::StepStarted)
    }

    /// An event about a step that has no job.
    pub(super) fn step(execution_id: i64, step: &str, kind: EventKind) -> Self {
        let mut event = NewEvent::execution(execution_id, kind);
        event.step = step.to_owned();
        event
    }

    /// Attaches the failure.
    pub(super) fn error(mut self, error: &TaskError) -> Self {
        let json = serde_json::to_value(error).unwrap_or(Value::Null);
        self.details.insert("error".into(), json);
        self
    }

    /// Attaches the failure, if there is one.
    pub(super) fn maybe_error(self, error: Option<&TaskError>) -> Self {
        match error {
            Some(error) => self.error(error),
            None => self,
        }
    }

    /// Attaches the retry decision.
    pub(super) fn decision(mut self, decision: &Decision) -> Self {
        self.details
            .insert("decision".into(), decision_json(decision));
        self
    }

    /// Attaches the time the job is due again.
    pub(super) fn available_at(mut self, at: Timestamp) -> Self {
        let ms = Value::from(at.timestamp_millis());
        self.details.insert("available_at_ms".into(), ms);
        self
    }
}

/// The JSON form of a decision kept in event details.
fn decision_json(decision: &Decision) -> Value {
    serde_json::json!({
        "retry": decision.retry,
        "reason": decision.reason.as_str(),
        "raw_delay_ms": ms(decision.raw_delay),
        "jitter_factor": decision.jitter_factor,
        "delay_ms": ms(decision.delay),
        "message": decision.message,
    })
}

/// A decision read back from event details; missing numbers read as no
/// delay and no jitter.
pub(super) fn decision_from_json(json: &Value) -> Result<Decision, Error> {
    let reason = json
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let number = |key: &str| json.get(key).and_then(Value::as_i64).unwrap_or(0);
    Ok(Decision {
        retry: json.get("retry").and_then(Value::as_bool).unwrap_or(false),
        reason: parse(reason)?,
        raw_delay: millis(number("raw_delay_ms")),
        jitter_factor: json
            .get("jitter_factor")
            .and_then(Value::as_f64)
            .unwrap_or(1.0),
        delay: millis(number("delay_ms")),
        message: json
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}
