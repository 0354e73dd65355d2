//! What the end of an attempt means, whichever backend stores it: the
//! retry policy's verdict, the job's next state, the answer the caller
//! gets, and the events that tell the execution's history. The backends
//! only write what is decided here.

use baton_dsl::{Decision, Outcome};
use serde_json::Value;

use super::Call;
use super::events::NewEvent;
use crate::error::Error;
use crate::model::{
    Attempt, AttemptOutcome, DecisionRecord, ErrorKind, EventKind, Job, JobState, Report,
    Resolution, TaskError, Timestamp,
};
use crate::policy;

/// One expired lease and what the policy made of it.
#[derive(Debug, Clone)]
pub struct Reaped {
    /// The job whose lease expired.
    pub job_id: i64,
    /// What the broker did with it.
    pub resolution: Resolution,
}

impl Call {
    /// How an attempt this call reports ended.
    pub(super) fn outcome(self) -> AttemptOutcome {
        match self {
            Call::Complete => AttemptOutcome::Succeeded,
            Call::Fail => AttemptOutcome::Failed,
        }
    }

    /// The call's name as `fenced_calls.call` stores it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Call::Complete => "complete",
            Call::Fail => "fail",
        }
    }
}

/// How an attempt ended, whoever reports it.
#[derive(Debug)]
pub(super) struct Ending {
    pub(super) outcome: AttemptOutcome,
    pub(super) report: Report,
}

impl Ending {
    /// The ending a worker's `call` reports.
    pub(super) fn reported(call: Call, report: Report) -> Ending {
        Ending {
            outcome: call.outcome(),
            report,
        }
    }

    /// The ending the reaper gives an attempt whose worker went silent.
    pub(super) fn expired(job: &Job) -> Ending {
        let message = format!(
            "lease of attempt {} expired without a heartbeat",
            job.attempts
        );
        Ending {
            outcome: AttemptOutcome::LeaseExpired,
            report: Report {
                outcome: Outcome::failure(message.clone()),
                error: Some(TaskError::new(ErrorKind::LeaseExpired, message)),
                decision: None,
            },
        }
    }

    /// The result worth storing: a null result stores as none.
    pub(super) fn result(&self) -> Option<&Value> {
        Some(&self.report.outcome.result).filter(|value| !value.is_null())
    }

    /// The failure as the job and attempt rows store it.
    pub(super) fn error_json(&self) -> Result<Option<Value>, Error> {
        let error = self.report.error.as_ref().map(serde_json::to_value);
        let error = error.transpose();
        error.map_err(|err| Error::Corrupt(format!("task error: {err}")))
    }
}

/// The policy's verdict on an ending: its decision and the job's next state.
#[derive(Debug)]
pub(super) struct Verdict {
    pub(super) record: DecisionRecord,
    pub(super) state: JobState,
}

/// Applies `job`'s retry policy to the attempt it just ended.
pub(super) fn decide(job: &Job, ending: &Ending) -> Verdict {
    let report = &ending.report;
    let record = policy::resolve(
        &job.retry,
        job.attempts,
        job.max_attempts,
        &report.outcome,
        report.decision.as_ref(),
    );
    let state = next_state(&record.decision, ending.outcome);
    Verdict { record, state }
}

fn next_state(decision: &Decision, outcome: AttemptOutcome) -> JobState {
    if decision.retry {
        JobState::Queued
    } else if outcome == AttemptOutcome::Succeeded {
        JobState::Done
    } else {
        JobState::Dead
    }
}

/// The resolution of `attempt`, built only from what is stored so that a
/// repeated call gets an identical answer.
pub(super) fn resolution(
    attempt: u32,
    state: JobState,
    decision: &Decision,
    available_at: Option<Timestamp>,
) -> Resolution {
    let reason = decision.reason;
    let mut message = match state {
        JobState::Queued => format!(
            "attempt {attempt} ended; attempt {} due in {}ms ({reason})",
            attempt + 1,
            decision.delay.as_millis()
        ),
        JobState::Done => format!("attempt {attempt} succeeded; job done ({reason})"),
        _ => format!("attempt {attempt} failed; job dead ({reason})"),
    };
    if let Some(detail) = &decision.message {
        message = format!("{message}: {detail}");
    }
    Resolution {
        state,
        reason: Some(reason),
        attempt,
        available_at,
        delay: available_at.map(|_| decision.delay),
        message,
    }
}

/// The answer a same-token `call` already got for `attempt`, if that call
/// is what finished it.
pub(super) fn repeated(attempt: Attempt, call: Call) -> Option<Resolution> {
    let record = attempt
        .decision
        .filter(|_| attempt.outcome == Some(call.outcome()))?;
    let state = next_state(&record.decision, call.outcome());
    Some(resolution(
        attempt.number,
        state,
        &record.decision,
        attempt.rescheduled_at,
    ))
}

/// The answer to a report on a job cancelled during its attempt.
pub(super) fn cancelled(job: &Job) -> Resolution {
    Resolution {
        state: JobState::Cancelled,
        reason: None,
        attempt: job.attempts,
        available_at: None,
        delay: None,
        message: format!(
            "job {} was cancelled during attempt {}",
            job.id, job.attempts
        ),
    }
}

/// The event that records how `job`'s attempt ended; `None` for a bare
/// job.
pub(super) fn ending_event(job: &Job, ending: &Ending, decision: &Decision) -> Option<NewEvent> {
    let kind = match ending.outcome {
        AttemptOutcome::Succeeded => EventKind::ActionCompleted,
        AttemptOutcome::LeaseExpired => EventKind::LeaseExpired,
        _ => EventKind::ActionError,
    };
    let error = ending.report.error.as_ref();
    NewEvent::job(job, kind).map(|event| event.decision(decision).maybe_error(error))
}

/// What follows an ending for the job's step.
#[derive(Debug)]
pub(super) enum StepNext<'a> {
    /// The job runs again: record this `action_retry` event.
    Retry(Option<NewEvent>),
    /// The step completed with this result.
    Done(&'a Value),
    /// The step failed, and with it the execution, for `why`.
    Dead {
        error: Option<&'a TaskError>,
        why: String,
    },
}

/// What `resolution` means for the step `job` runs.
pub(super) fn step_next<'a>(
    job: &Job,
    ending: &'a Ending,
    decision: &Decision,
    resolution: &Resolution,
) -> StepNext<'a> {
    let error = ending.report.error.as_ref();
    match (resolution.state, resolution.available_at) {
        (JobState::Queued, Some(at)) => {
            let retry = NewEvent::job(job, EventKind::ActionRetry);
            StepNext::Retry(retry.map(|e| e.decision(decision).available_at(at)))
        }
        (JobState::Done, _) => StepNext::Done(&ending.report.outcome.result),
        _ => {
            let why = match error {
                Some(error) => error.message.clone(),
                None => format!("its retry policy stopped it ({})", decision.reason),
            };
            StepNext::Dead { error, why }
        }
    }
}
