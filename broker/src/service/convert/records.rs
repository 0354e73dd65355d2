//! Domain records as protobuf messages, and bare job specs from them.

use baton_dsl::RetryPolicy;
use baton_proto::convert::{
    from_struct, from_value, timestamp_to_millis, to_struct_value, to_value,
};
use baton_proto::v1 as pb;

use super::{
    attempt_outcome, decision, duration, event_kind, execution_state, job_state, reason,
    task_error, timestamp, timestamp_opt,
};
use crate::error::Error;
use crate::model::{
    Attempt, Event, Execution, Job, LeasedJob, NewJob, PlaybookRecord, Resolution, Timestamp,
};

pub(crate) fn job(job: &Job) -> pb::Job {
    pb::Job {
        id: job.id,
        execution_id: job.execution_id.unwrap_or(0),
        step: job.step.clone(),
        queue: job.queue.clone(),
        kind: job.kind.clone(),
        state: job_state(job.state).into(),
        priority: job.priority,
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        available_at: Some(timestamp(job.available_at)),
        created_at: Some(timestamp(job.created_at)),
        finished_at: timestamp_opt(job.finished_at),
        payload: Some(to_struct_value(&job.payload)),
        result: job.result.as_ref().map(to_value),
        last_error: job.last_error.as_ref().map(task_error),
        last_reason: reason(job.last_reason).into(),
        retry: Some(retry_policy(&job.retry)),
        idempotency_key: job.idempotency_key.clone().unwrap_or_default(),
        lease_expires_at: timestamp_opt(job.lease_expires_at),
    }
}

pub(crate) fn retry_policy(policy: &RetryPolicy) -> pb::RetryPolicy {
    let source = |e: &Option<baton_dsl::Expression>| {
        e.as_ref()
            .map(|e| e.source().to_owned())
            .unwrap_or_default()
    };
    pb::RetryPolicy {
        max_attempts: policy.max_attempts,
        initial_delay: duration(policy.initial_delay),
        backoff_multiplier: policy.backoff_multiplier,
        max_delay: duration(policy.max_delay),
        jitter: policy.jitter,
        retry_when: source(&policy.retry_when),
        stop_when: source(&policy.stop_when),
    }
}

pub(crate) fn leased_job(leased: &LeasedJob) -> pb::LeasedJob {
    let job = &leased.job;
    pb::LeasedJob {
        id: job.id,
        lease_token: leased.lease_token,
        lease_expires_at: timestamp_opt(job.lease_expires_at),
        execution_id: job.execution_id.unwrap_or(0),
        step: job.step.clone(),
        queue: job.queue.clone(),
        kind: job.kind.clone(),
        attempt: job.attempts,
        max_attempts: job.max_attempts,
        payload: Some(to_struct_value(&job.payload)),
        context: Some(to_struct_value(&leased.context)),
        retry: Some(retry_policy(&job.retry)),
        traceparent: job.traceparent.clone(),
    }
}

pub(crate) fn attempt(attempt: &Attempt) -> pb::Attempt {
    let record = attempt.decision.as_ref();
    pb::Attempt {
        number: attempt.number,
        worker: attempt.worker.clone(),
        lease_token: attempt.lease_token,
        started_at: Some(timestamp(attempt.started_at)),
        finished_at: timestamp_opt(attempt.finished_at),
        outcome: attempt_outcome(attempt.outcome).into(),
        error: attempt.error.as_ref().map(task_error),
        status_code: attempt.status_code.map(u32::from),
        decision: record.map(|r| decision(&r.decision)),
        decided_by: record
            .map(|r| r.decided_by.as_str().to_owned())
            .unwrap_or_default(),
        rescheduled_at: timestamp_opt(attempt.rescheduled_at),
        result: attempt.result.as_ref().map(to_value),
    }
}

pub(crate) fn resolution(resolution: &Resolution) -> pb::Resolution {
    pb::Resolution {
        state: job_state(resolution.state).into(),
        reason: reason(resolution.reason).into(),
        attempt: resolution.attempt,
        available_at: timestamp_opt(resolution.available_at),
        delay: resolution.delay.and_then(duration),
        message: resolution.message.clone(),
    }
}

/// A playbook; lists leave the YAML text out.
pub(crate) fn playbook(record: &PlaybookRecord, with_yaml: bool) -> pb::Playbook {
    pb::Playbook {
        id: record.id,
        path: record.path.clone(),
        name: record.name.clone(),
        version: record.version,
        yaml: if with_yaml {
            record.yaml.clone()
        } else {
            String::new()
        },
        created_at: Some(timestamp(record.created_at)),
        steps: record.steps.clone(),
    }
}

pub(crate) fn execution(execution: &Execution) -> pb::Execution {
    pb::Execution {
        id: execution.id,
        playbook_path: execution.playbook_path.clone(),
        playbook_version: execution.playbook_version,
        state: execution_state(execution.state).into(),
        workload: Some(to_struct_value(&execution.workload)),
        created_at: Some(timestamp(execution.created_at)),
        finished_at: timestamp_opt(execution.finished_at),
        error: execution.error.clone().unwrap_or_default(),
        traceparent: execution.traceparent.clone(),
    }
}

pub(crate) fn event(event: &Event) -> pb::Event {
    pb::Event {
        id: event.id,
        execution_id: event.execution_id,
        kind: event_kind(event.kind).into(),
        name: event.kind.as_str().to_owned(),
        at: Some(timestamp(event.at)),
        step: event.step.clone(),
        job_id: event.job_id.unwrap_or(0),
        attempt: event.attempt.unwrap_or(0),
        max_attempts: event.max_attempts.unwrap_or(0),
        error: event.error.as_ref().map(task_error),
        decision: event.decision.as_ref().map(decision),
        available_at: timestamp_opt(event.available_at),
    }
}

/// Job `index` of an Enqueue request, validated.
pub(crate) fn new_job(index: usize, spec: &pb::JobSpec) -> Result<NewJob, Error> {
    let invalid =
        |field: &str, why: String| Error::InvalidArgument(format!("jobs[{index}].{field}: {why}"));
    if spec.kind.trim().is_empty() {
        return Err(invalid("kind", "is required".into()));
    }
    let retry = spec.retry.as_ref().map(from_value).unwrap_or_default();
    let retry = RetryPolicy::from_json(&retry)
        .map_err(|err| invalid("retry", err.to_string().replace('\n', "; ")))?;
    let run_at = spec.run_at.as_ref().map(timestamp_to_millis);
    let run_at = run_at
        .map(|ms| {
            Timestamp::from_timestamp_millis(ms)
                .ok_or_else(|| invalid("run_at", "out of range".into()))
        })
        .transpose()?;
    Ok(NewJob {
        queue: Some(spec.queue.clone())
            .filter(|q| !q.is_empty())
            .unwrap_or_else(|| "default".into()),
        kind: spec.kind.clone(),
        payload: serde_json::Value::Object(
            spec.payload.as_ref().map(from_struct).unwrap_or_default(),
        ),
        priority: spec.priority,
        run_at,
        retry,
        idempotency_key: Some(spec.idempotency_key.clone()).filter(|k| !k.is_empty()),
    })
}
