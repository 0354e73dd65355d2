//! Reports sent on the Lease stream: each gets the ack its unary call
//! would have answered, refusals stay alone in their own ack, resends are
//! idempotent, and the stream and the unary calls agree on every attempt.

mod support;

use std::collections::HashMap;

use anyhow::{Context, Result, ensure};
use baton_proto::convert::timestamp_to_millis;
use baton_proto::v1 as pb;
use serde_json::json;
use support::backend::Harness;
use support::stream::{StreamWorker, accepted, ack_about, complete_report, fail_report, unary};
use support::{TestBroker, enqueue, retry, spec};

on_both_backends!(
    completions_and_failures_in_one_message_are_acked_as_the_unary_calls_answer,
    a_job_of_an_execution_reported_on_the_stream_retries_then_dies_at_its_last_attempt,
    stale_unknown_and_malformed_reports_are_refused_alone_and_the_rest_are_written,
    a_report_sent_twice_in_one_message_and_again_later_gets_one_answer_and_one_attempt,
    a_reports_message_without_reports_ends_the_stream_as_invalid,
    reports_sent_as_the_worker_closes_its_side_are_still_acked,
    a_retry_reported_on_the_stream_is_pushed_again_to_a_stream_with_spare_credits,
    a_unary_call_repeating_a_stream_report_gets_the_same_resolution,
    a_negative_worker_delay_on_the_stream_is_clamped_to_zero_not_refused,
    a_report_holding_a_nul_character_is_refused_alone_and_the_rest_are_written,
);

const PLAYBOOK: &str = r#"
apiVersion: noetl.io/v1
kind: Playbook
metadata:
  name: flaky
  path: tests/flaky
workflow:
  - step: start
    next:
      - flaky
  - step: flaky
    type: noop
    with:
      say: hi
    retry:
      max_attempts: 2
      initial_delay: 0
      jitter: false
    next:
      - end
  - step: end
"#;

/// A job nobody enqueued.
const UNKNOWN_JOB: i64 = 424_242;

// gRPC status codes as acks carry them.
const OK: i32 = 0;
const NOT_FOUND: i32 = 5;
const INVALID_ARGUMENT: i32 = 3;
const FAILED_PRECONDITION: i32 = 9;

/// A worker's decision to retry after `delay_ms` (negative allowed).
fn retry_decision(delay_ms: i64) -> pb::Decision {
    pb::Decision {
        retry: true,
        delay: Some(prost_types::Duration {
            seconds: delay_ms / 1000,
            nanos: i32::try_from(delay_ms % 1000 * 1_000_000).unwrap(),
        }),
        reason: pb::DecisionReason::Default.into(),
        ..Default::default()
    }
}

/// A bare job on queue `q` under `block`.
fn job_with(block: serde_json::Value) -> pb::JobSpec {
    pb::JobSpec {
        retry: retry(block),
        ..spec("q", "noop")
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn get(broker: &TestBroker, id: i64) -> Result<pb::GetJobResponse> {
    let request = pb::GetJobRequest { id };
    Ok(broker.jobs().await?.get(request).await?.into_inner())
}

/// Registers [`PLAYBOOK`] and runs it `n` times.
async fn run_flaky(broker: &TestBroker, n: usize) -> Result<Vec<i64>> {
    let yaml = PLAYBOOK.to_owned();
    let request = pb::RegisterPlaybookRequest { yaml };
    broker.playbooks().await?.register(request).await?;
    let mut ids = Vec::new();
    for _ in 0..n {
        let request = pb::RunExecutionRequest {
            path: "tests/flaky".into(),
            ..Default::default()
        };
        let reply = broker.executions().await?.run(request).await?.into_inner();
        ids.push(reply.execution.context("no execution")?.id);
    }
    Ok(ids)
}

async fn execution_state(broker: &TestBroker, id: i64) -> Result<pb::ExecutionState> {
    let request = pb::GetExecutionRequest { id };
    let reply = broker.executions().await?.get(request).await?.into_inner();
    let state = reply.execution.context("no execution")?.state;
    Ok(pb::ExecutionState::try_from(state)?)
}

/// What one kind of report must resolve to.
struct Case {
    block: serde_json::Value,
    report: fn(&pb::LeasedJob) -> pb::Report,
    state: pb::JobState,
    reason: pb::DecisionReason,
    delay_ms: Option<i64>,
    decided_by: &'static str,
    message: &'static str,
}

fn cases() -> Vec<Case> {
    let backoff = json!({"max_attempts": 3, "initial_delay": 2, "jitter": false});
    vec![
        Case {
            block: json!({}),
            report: |job| complete_report(job, json!({"n": job.id})),
            state: pb::JobState::Done,
            reason: pb::DecisionReason::Default,
            delay_ms: None,
            decided_by: "broker",
            message: "attempt 1 succeeded; job done (default)",
        },
        Case {
            block: backoff.clone(),
            report: |job| fail_report(job, "transient", None),
            state: pb::JobState::Queued,
            reason: pb::DecisionReason::Default,
            delay_ms: Some(2_000),
            decided_by: "broker",
            message: "attempt 1 ended; attempt 2 due in 2000ms (default)",
        },
        Case {
            block: backoff,
            report: |job| fail_report(job, "slow down", Some(retry_decision(1_500))),
            state: pb::JobState::Queued,
            reason: pb::DecisionReason::Default,
            delay_ms: Some(1_500),
            decided_by: "worker",
            message: "attempt 1 ended; attempt 2 due in 1500ms (default)",
        },
        Case {
            block: json!({"max_attempts": 1}),
            report: |job| fail_report(job, "fatal", None),
            state: pb::JobState::Dead,
            reason: pb::DecisionReason::AttemptsExhausted,
            delay_ms: None,
            decided_by: "broker",
            message: "attempt 1 failed; job dead (attempts_exhausted)",
        },
    ]
}

/// Checks a resolution of attempt 1 against `case`; a queued job must be
/// due `delay_ms` after a moment between `sent` and `acked`.
fn check_resolution(case: &Case, got: &pb::Resolution, sent: i64, acked: i64) -> Result<()> {
    let expected = (case.state, case.reason, case.delay_ms, case.message);
    let delay_ms = got
        .delay
        .map(|d| d.seconds * 1000 + i64::from(d.nanos) / 1_000_000);
    ensure!(
        (got.state, got.reason, delay_ms, got.message.as_str())
            == (
                i32::from(expected.0),
                i32::from(expected.1),
                expected.2,
                expected.3
            ),
        "expected {expected:?}, got {got:?}"
    );
    ensure!(got.attempt == 1, "{got:?}");
    let due = got.available_at.as_ref().map(timestamp_to_millis);
    match (due, case.delay_ms) {
        (Some(due), Some(delay)) => ensure!(
            (sent + delay..=acked + delay).contains(&due),
            "due at {due}, reported between {sent} and {acked} with {delay}ms"
        ),
        (None, None) => {}
        _ => anyhow::bail!("available_at and delay disagree: {got:?}"),
    }
    Ok(())
}

/// Checks the one attempt `job` records against `case` and its ack.
async fn check_stored(broker: &TestBroker, case: &Case, ack: &pb::Ack) -> Result<()> {
    let got = get(broker, ack.job_id).await?;
    let job = got.job.context("no job")?;
    let resolution = ack.resolution.clone().unwrap_or_default();
    ensure!(job.state == i32::from(case.state), "{job:?}");
    ensure!(job.last_reason == i32::from(case.reason), "{job:?}");
    ensure!(got.attempts.len() == 1, "{:#?}", got.attempts);
    let attempt = &got.attempts[0];
    ensure!(attempt.number == 1 && attempt.lease_token == ack.lease_token);
    ensure!(attempt.finished_at.is_some() && attempt.decided_by == case.decided_by);
    ensure!(
        attempt.rescheduled_at == resolution.available_at,
        "{attempt:?}"
    );
    let reason = attempt.decision.as_ref().map(|d| d.reason);
    ensure!(reason == Some(i32::from(case.reason)), "{attempt:?}");
    let outcome = match case.state {
        pb::JobState::Done => pb::AttemptOutcome::Succeeded,
        _ => pb::AttemptOutcome::Failed,
    };
    ensure!(attempt.outcome == i32::from(outcome), "{attempt:?}");
    if case.state == pb::JobState::Done {
        let result = baton_proto::convert::to_value(&json!({"n": ack.job_id}));
        ensure!(job.result == Some(result), "{job:?}");
    }
    Ok(())
}

async fn completions_and_failures_in_one_message_are_acked_as_the_unary_calls_answer(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    let cases = cases();
    let specs: Vec<pb::JobSpec> = cases.iter().map(|c| job_with(c.block.clone())).collect();
    let streamed = enqueue(&broker, specs.clone()).await?;
    let twins = enqueue(&broker, specs).await?;
    let mut worker = StreamWorker::connect(&broker, "w", &["q"]).await?;
    worker.credit(8).await?;
    let leased: HashMap<i64, pb::LeasedJob> = worker
        .take(8)
        .await?
        .into_iter()
        .map(|j| (j.id, j))
        .collect();

    let sent = now_ms();
    let reports = cases.iter().zip(&streamed);
    worker
        .report(reports.map(|(c, j)| (c.report)(&leased[&j.id])).collect())
        .await?;
    let acks = worker.acks(cases.len()).await?;
    let acked = now_ms();

    for ((case, job), twin) in cases.iter().zip(&streamed).zip(&twins) {
        let ack = ack_about(&acks, job.id)?;
        ensure!(ack.lease_token == leased[&job.id].lease_token, "{ack:?}");
        let streamed = accepted(ack)?;
        check_resolution(case, &streamed, sent, acked)?;
        let by_unary = unary(&mut worker, (case.report)(&leased[&twin.id])).await?;
        let without_time = |r: &pb::Resolution| pb::Resolution {
            available_at: None,
            ..r.clone()
        };
        ensure!(
            without_time(&streamed) == without_time(&by_unary),
            "the stream answered {streamed:?}, the unary call {by_unary:?}"
        );
        check_stored(&broker, case, ack).await?;
    }
    Ok(())
}

async fn a_job_of_an_execution_reported_on_the_stream_retries_then_dies_at_its_last_attempt(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    let executions = run_flaky(&broker, 2).await?;
    let bare = enqueue(&broker, vec![spec("default", "noop")])
        .await?
        .remove(0);
    let mut worker = StreamWorker::connect(&broker, "w", &["default"]).await?;
    worker.credit(3).await?;
    let leased = worker.take(3).await?;
    let of = |execution: i64| leased.iter().find(|j| j.execution_id == execution);
    let first = of(executions[0]).context("no job of the first execution")?;
    let twin = of(executions[1]).context("no job of the second execution")?;
    let done = leased
        .iter()
        .find(|j| j.id == bare.id)
        .context("no bare job")?;
    ensure!((first.step.as_str(), first.attempt, first.max_attempts) == ("flaky", 1, 2));

    let reports = vec![
        fail_report(first, "flaky", None),
        complete_report(done, json!(null)),
    ];
    worker.report(reports).await?;
    let acks = worker.acks(2).await?;
    let retried = accepted(ack_about(&acks, first.id)?)?;
    let unary_retried = unary(&mut worker, fail_report(twin, "flaky", None)).await?;
    ensure!(
        retried.state == i32::from(pb::JobState::Queued),
        "{retried:?}"
    );
    ensure!(retried.reason == i32::from(pb::DecisionReason::Default));
    ensure!(retried.attempt == 1 && retried.delay == Some(Default::default()));
    ensure!(
        retried.message == unary_retried.message,
        "{unary_retried:?}"
    );
    let done = accepted(ack_about(&acks, done.id)?)?;
    ensure!(done.state == i32::from(pb::JobState::Done), "{done:?}");

    worker.credit(2).await?;
    let again = worker.take(2).await?;
    let second = again
        .iter()
        .find(|j| j.id == first.id)
        .context("no retry")?;
    ensure!(second.attempt == 2 && second.lease_token != first.lease_token);
    worker
        .report(vec![fail_report(second, "flaky again", None)])
        .await?;
    let dead = accepted(&worker.acks(1).await?[0])?;
    ensure!(dead.state == i32::from(pb::JobState::Dead), "{dead:?}");
    ensure!(dead.reason == i32::from(pb::DecisionReason::AttemptsExhausted));
    ensure!(dead.attempt == 2, "{dead:?}");
    ensure!(dead.message == "attempt 2 failed; job dead (attempts_exhausted)");

    check_two_failed_attempts(&broker, first, second, &retried).await?;
    let state = execution_state(&broker, executions[0]).await?;
    ensure!(state == pb::ExecutionState::Failed, "{state:?}");
    Ok(())
}

/// `first` and `second` are the two failed attempts of their job, dead
/// now; the first was rescheduled as `retried` said.
async fn check_two_failed_attempts(
    broker: &TestBroker,
    first: &pb::LeasedJob,
    second: &pb::LeasedJob,
    retried: &pb::Resolution,
) -> Result<()> {
    let got = get(broker, first.id).await?;
    let job = got.job.context("no job")?;
    ensure!(job.state == i32::from(pb::JobState::Dead) && job.attempts == 2);
    ensure!(job.last_reason == i32::from(pb::DecisionReason::AttemptsExhausted));
    let tokens: Vec<i64> = got.attempts.iter().map(|a| a.lease_token).collect();
    ensure!(tokens == vec![first.lease_token, second.lease_token]);
    ensure!(got.attempts[0].rescheduled_at == retried.available_at);
    ensure!(got.attempts[1].rescheduled_at.is_none());
    let failed = i32::from(pb::AttemptOutcome::Failed);
    ensure!(got.attempts.iter().all(|a| a.outcome == failed));
    let error = got.attempts[1].error.clone().unwrap_or_default();
    ensure!(error.message == "flaky again", "{error:?}");
    Ok(())
}

async fn stale_unknown_and_malformed_reports_are_refused_alone_and_the_rest_are_written(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    let retrying = job_with(json!({"max_attempts": 3, "initial_delay": 0, "jitter": false}));
    let once = job_with(json!({"max_attempts": 1}));
    let jobs = enqueue(
        &broker,
        vec![retrying, spec("q", "noop"), once, spec("q", "noop")],
    )
    .await?;
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let mut worker = StreamWorker::connect(&broker, "w", &["q"]).await?;
    worker.credit(4).await?;
    let mut leased = worker.take(4).await?;
    leased.sort_by_key(|j| j.id);
    let [lost, completing, dying, malformed] = &leased[..] else {
        anyhow::bail!("expected four jobs")
    };
    unary(&mut worker, fail_report(lost, "lost", None)).await?;
    worker.credit(1).await?;
    let current = worker.next().await?;
    ensure!(current.id == lost.id && current.lease_token != lost.lease_token);

    worker
        .report(mixed_reports(lost, completing, dying, malformed))
        .await?;
    let acks = worker.acks(8).await?;

    check_stale_unknown_and_empty(&acks, lost)?;
    check_malformed(&acks, malformed)?;
    let done = accepted(ack_about(&acks, completing.id)?)?;
    ensure!(done.state == i32::from(pb::JobState::Done), "{done:?}");
    let dead = accepted(ack_about(&acks, dying.id)?)?;
    ensure!(dead.state == i32::from(pb::JobState::Dead), "{dead:?}");
    ensure!(dead.reason == i32::from(pb::DecisionReason::AttemptsExhausted));

    check_refused_changed_nothing(&broker, &ids, &current, lost.lease_token).await
}

/// One message of every kind: a stale token (`lost`'s first lease), an
/// unknown job, an empty report, three malformed reports about
/// `malformed`, and two good ones.
fn mixed_reports(
    lost: &pb::LeasedJob,
    completing: &pb::LeasedJob,
    dying: &pb::LeasedJob,
    malformed: &pb::LeasedJob,
) -> Vec<pb::Report> {
    let mut unknown = complete_report(completing, json!(null));
    if let Some(pb::report::Report::Complete(r)) = &mut unknown.report {
        r.job_id = UNKNOWN_JOB;
    }
    let mut without_error = fail_report(malformed, "x", None);
    if let Some(pb::report::Report::Fail(r)) = &mut without_error.report {
        r.outcome = None;
    }
    let mut huge_status = complete_report(malformed, json!(null));
    if let Some(pb::report::Report::Complete(r)) = &mut huge_status.report {
        r.outcome.get_or_insert_default().status_code = Some(65_536);
    }
    let nan_jitter = pb::Decision {
        jitter_factor: f64::NAN,
        ..retry_decision(0)
    };
    vec![
        complete_report(lost, json!("late")),
        unknown,
        pb::Report { report: None },
        without_error,
        huge_status,
        fail_report(malformed, "boom", Some(nan_jitter)),
        complete_report(completing, json!({"n": completing.id})),
        fail_report(dying, "fatal", None),
    ]
}

/// The stale, unknown and empty reports each got their own refusal.
fn check_stale_unknown_and_empty(acks: &[pb::Ack], lost: &pb::LeasedJob) -> Result<()> {
    let stale = ack_about(acks, lost.id)?;
    ensure!(stale.code == FAILED_PRECONDITION, "{stale:?}");
    ensure!(stale.resolution.is_none() && stale.lease_token == lost.lease_token);
    let expected = format!(
        "lease token {} is not the current lease of job {}",
        lost.lease_token, lost.id
    );
    ensure!(stale.message == expected, "{stale:?}");
    let missing = ack_about(acks, UNKNOWN_JOB)?;
    ensure!(missing.code == NOT_FOUND, "{missing:?}");
    ensure!(missing.message == format!("job {UNKNOWN_JOB} not found"));
    let empty = ack_about(acks, 0)?;
    ensure!(
        (empty.code, empty.lease_token) == (INVALID_ARGUMENT, 0),
        "{empty:?}"
    );
    ensure!(
        empty.message == "report: complete or fail is required",
        "{empty:?}"
    );
    Ok(())
}

/// Every malformed report about `job` is refused, each with its field.
fn check_malformed(acks: &[pb::Ack], job: &pb::LeasedJob) -> Result<()> {
    let mut messages: Vec<(i32, i64, &str)> = acks
        .iter()
        .filter(|a| a.job_id == job.id)
        .map(|a| (a.code, a.lease_token, a.message.as_str()))
        .collect();
    messages.sort();
    let token = job.lease_token;
    let expected = vec![
        (
            INVALID_ARGUMENT,
            token,
            "decision.jitter_factor: must be a finite number of at least 0, found NaN",
        ),
        (INVALID_ARGUMENT, token, "outcome.error is required by Fail"),
        (
            INVALID_ARGUMENT,
            token,
            "outcome.status_code is above 65535",
        ),
    ];
    ensure!(messages == expected, "{messages:#?}");
    ensure!(
        acks.iter()
            .filter(|a| a.job_id == job.id)
            .all(|a| a.resolution.is_none())
    );
    Ok(())
}

/// The stale report was fenced and left the job under its current lease;
/// the malformed ones left their job's attempt running.
async fn check_refused_changed_nothing(
    broker: &TestBroker,
    ids: &[i64],
    current: &pb::LeasedJob,
    stale_token: i64,
) -> Result<()> {
    let db = broker.db().await?;
    let fenced: Vec<(i64, String, i64)> = db
        .fetch_all("SELECT job_id, call, lease_token FROM fenced_calls ORDER BY id")
        .await?;
    ensure!(
        fenced == vec![(ids[0], "complete".into(), stale_token)],
        "{fenced:?}"
    );
    let states: Vec<(i64, String)> = db
        .fetch_all("SELECT id, state FROM jobs ORDER BY id")
        .await?;
    let expected = [
        (ids[0], "leased"),
        (ids[1], "done"),
        (ids[2], "dead"),
        (ids[3], "leased"),
    ];
    let expected: Vec<(i64, String)> = expected.iter().map(|(i, s)| (*i, (*s).into())).collect();
    ensure!(states == expected, "{states:?}");

    let lost = get(broker, ids[0]).await?;
    ensure!(lost.job.map(|j| j.attempts) == Some(2));
    let running = &lost.attempts[1];
    ensure!(running.lease_token == current.lease_token && running.finished_at.is_none());
    let malformed = get(broker, ids[3]).await?;
    ensure!(malformed.attempts.len() == 1, "{:#?}", malformed.attempts);
    let attempt = &malformed.attempts[0];
    ensure!(
        attempt.finished_at.is_none() && attempt.decision.is_none(),
        "{attempt:?}"
    );
    Ok(())
}

async fn a_report_sent_twice_in_one_message_and_again_later_gets_one_answer_and_one_attempt(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    let executions = run_flaky(&broker, 1).await?;
    let backoff = job_with(json!({"max_attempts": 3, "initial_delay": 1, "jitter": false}));
    let bare = enqueue(&broker, vec![backoff, spec("q", "noop")]).await?;
    let mut worker = StreamWorker::connect(&broker, "w", &["q", "default"]).await?;
    worker.credit(3).await?;
    let leased = worker.take(3).await?;
    let find = |id: i64| leased.iter().find(|j| j.id == id).context("not leased");
    let (failing, completing) = (find(bare[0].id)?, find(bare[1].id)?);
    let step = leased.iter().find(|j| j.execution_id == executions[0]);
    let step = step.context("no job of the execution")?;
    let reports = vec![
        fail_report(failing, "boom", None),
        complete_report(completing, json!({"n": 1})),
        fail_report(step, "flaky", None),
    ];
    let twice: Vec<pb::Report> = reports.iter().chain(&reports).cloned().collect();

    worker.report(twice.clone()).await?;
    let first = answers(worker.acks(6).await?)?;
    for job in [failing, completing, step] {
        let both = &first[&job.id];
        ensure!(
            both.len() == 2 && both[0] == both[1],
            "job {}: {both:#?}",
            job.id
        );
    }
    ensure!(first[&failing.id][0].state == i32::from(pb::JobState::Queued));
    ensure!(first[&completing.id][0].state == i32::from(pb::JobState::Done));
    ensure!(first[&step.id][0].state == i32::from(pb::JobState::Queued));

    // The step's retry is due at once: leased again before the resend.
    worker.credit(1).await?;
    let retried = worker.next().await?;
    ensure!(retried.id == step.id && retried.attempt == 2);
    worker.report(twice).await?;
    let later = answers(worker.acks(6).await?)?;
    ensure!(later == first, "first {first:#?}, later {later:#?}");

    for job in [failing, completing] {
        let attempts = get(&broker, job.id).await?.attempts;
        ensure!(attempts.len() == 1, "job {}: {attempts:#?}", job.id);
    }
    let got = get(&broker, step.id).await?;
    ensure!(got.job.map(|j| j.state) == Some(i32::from(pb::JobState::Leased)));
    let tokens: Vec<(i64, bool)> = got
        .attempts
        .iter()
        .map(|a| (a.lease_token, a.finished_at.is_some()))
        .collect();
    ensure!(
        tokens == vec![(step.lease_token, true), (retried.lease_token, false)],
        "{tokens:?}"
    );
    let db = broker.db().await?;
    let (fenced,): (i64,) = db.fetch_one("SELECT count(*) FROM fenced_calls").await?;
    ensure!(fenced == 0, "{fenced} resends were fenced as stale");
    Ok(())
}

/// Each job's resolutions, in the order its acks came; every ack must be
/// an acceptance.
fn answers(acks: Vec<pb::Ack>) -> Result<HashMap<i64, Vec<pb::Resolution>>> {
    let mut by_job: HashMap<i64, Vec<pb::Resolution>> = HashMap::new();
    for ack in &acks {
        by_job.entry(ack.job_id).or_default().push(accepted(ack)?);
    }
    Ok(by_job)
}

async fn a_reports_message_without_reports_ends_the_stream_as_invalid(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    enqueue(&broker, vec![spec("q", "noop")]).await?;
    let mut worker = StreamWorker::connect(&broker, "w", &["q"]).await?;
    worker.credit(1).await?;
    let job = worker.next().await?;

    worker.report(vec![]).await?;
    let status = worker.end().await?.context("the stream ended cleanly")?;
    ensure!(status.code() == tonic::Code::InvalidArgument, "{status:?}");
    ensure!(
        status.message() == "reports: must hold 1 to 10000 reports, found 0",
        "{status:?}"
    );
    let mut flood = StreamWorker::connect(&broker, "w", &["q"]).await?;
    let too_many = vec![complete_report(&job, json!(null)); 10_001];
    flood.report(too_many).await?;
    let status = flood.end().await?.context("the stream ended cleanly")?;
    ensure!(status.code() == tonic::Code::InvalidArgument, "{status:?}");
    ensure!(status.message().ends_with("found 10001"), "{status:?}");

    let db = broker.db().await?;
    let (state,): (String,) = db.fetch_one("SELECT state FROM jobs").await?;
    ensure!(state == "leased", "{state}");
    let mut again = StreamWorker::connect(&broker, "w", &["q"]).await?;
    again
        .report(vec![complete_report(&job, json!(null))])
        .await?;
    let done = accepted(&again.acks(1).await?[0])?;
    ensure!(done.state == i32::from(pb::JobState::Done), "{done:?}");
    Ok(())
}

async fn reports_sent_as_the_worker_closes_its_side_are_still_acked(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    enqueue(&broker, vec![spec("q", "noop"), spec("q", "noop")]).await?;
    let mut worker = StreamWorker::connect(&broker, "w", &["q"]).await?;
    worker.credit(2).await?;
    let leased = worker.take(2).await?;

    let reports = leased.iter().map(|j| complete_report(j, json!(null)));
    worker.report(reports.collect()).await?;
    worker.close_requests();
    let acks = worker.acks(2).await?;
    for job in &leased {
        let done = accepted(ack_about(&acks, job.id)?)?;
        ensure!(done.state == i32::from(pb::JobState::Done), "{done:?}");
    }
    let end = worker.end().await?;
    ensure!(end.is_none(), "the stream ended with {end:?}");
    Ok(())
}

async fn a_retry_reported_on_the_stream_is_pushed_again_to_a_stream_with_spare_credits(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    let block = json!({"max_attempts": 2, "initial_delay": 0, "jitter": false});
    let job = enqueue(&broker, vec![job_with(block)]).await?.remove(0);
    let mut worker = StreamWorker::connect(&broker, "w", &["q"]).await?;
    worker.credit(2).await?;
    let first = worker.next().await?;

    worker
        .report(vec![fail_report(&first, "flaky", None)])
        .await?;
    let retried = accepted(&worker.acks(1).await?[0])?;
    ensure!(
        retried.state == i32::from(pb::JobState::Queued),
        "{retried:?}"
    );
    let second = worker.next().await?;
    ensure!((second.id, second.attempt) == (job.id, 2), "{second:?}");
    ensure!(second.lease_token != first.lease_token);
    Ok(())
}

async fn a_unary_call_repeating_a_stream_report_gets_the_same_resolution(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let backoff = job_with(json!({"max_attempts": 3, "initial_delay": 5, "jitter": false}));
    let jobs = vec![spec("q", "noop"), backoff, spec("q", "noop")];
    let ids: Vec<i64> = enqueue(&broker, jobs).await?.iter().map(|j| j.id).collect();
    let mut worker = StreamWorker::connect(&broker, "w", &["q"]).await?;
    worker.credit(3).await?;
    let mut leased = worker.take(3).await?;
    leased.sort_by_key(|j| j.id);
    let [completing, failing, unary_first] = &leased[..] else {
        anyhow::bail!("expected three jobs")
    };

    let reports = vec![
        complete_report(completing, json!({"n": 1})),
        fail_report(failing, "boom", None),
    ];
    worker.report(reports.clone()).await?;
    let acks = worker.acks(2).await?;
    for report in reports {
        let job_id = match &report.report {
            Some(pb::report::Report::Complete(r)) => r.job_id,
            Some(pb::report::Report::Fail(r)) => r.job_id,
            None => unreachable!("built above"),
        };
        let streamed = accepted(ack_about(&acks, job_id)?)?;
        let repeated = unary(&mut worker, report).await?;
        ensure!(
            streamed == repeated,
            "stream {streamed:?}, unary {repeated:?}"
        );
    }
    let queued = accepted(ack_about(&acks, failing.id)?)?;
    ensure!(queued.state == i32::from(pb::JobState::Queued) && queued.available_at.is_some());

    let report = complete_report(unary_first, json!({"n": 3}));
    let answered = unary(&mut worker, report.clone()).await?;
    worker.report(vec![report]).await?;
    let resent = accepted(&worker.acks(1).await?[0])?;
    ensure!(resent == answered, "unary {answered:?}, stream {resent:?}");

    for id in ids {
        let attempts = get(&broker, id).await?.attempts;
        ensure!(attempts.len() == 1, "job {id}: {attempts:#?}");
    }
    Ok(())
}

async fn a_negative_worker_delay_on_the_stream_is_clamped_to_zero_not_refused(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    let block = json!({"max_attempts": 3, "max_delay": 10});
    let jobs = enqueue(&broker, vec![job_with(block.clone()), job_with(block)]).await?;
    let mut worker = StreamWorker::connect(&broker, "w", &["q"]).await?;
    worker.credit(2).await?;
    let mut leased = worker.take(2).await?;
    leased.sort_by_key(|j| j.id);

    let decision = Some(retry_decision(-500));
    worker
        .report(vec![fail_report(&leased[0], "boom", decision.clone())])
        .await?;
    let streamed = accepted(&worker.acks(1).await?[0])?;
    let by_unary = unary(&mut worker, fail_report(&leased[1], "boom", decision)).await?;
    ensure!(
        streamed.state == i32::from(pb::JobState::Queued),
        "{streamed:?}"
    );
    ensure!(streamed.delay == Some(prost_types::Duration::default()));
    let expected = "attempt 1 ended; attempt 2 due in 0ms (default): delay -500ms clamped to 0ms";
    ensure!(streamed.message == expected, "{streamed:?}");
    ensure!((streamed.state, &streamed.message) == (by_unary.state, &by_unary.message));

    let attempt = get(&broker, jobs[0].id).await?.attempts.remove(0);
    let message = attempt.decision.map(|d| d.message).unwrap_or_default();
    ensure!(message == "delay -500ms clamped to 0ms", "{message}");
    Ok(())
}

/// A result no store may hold: Postgres's jsonb refuses the NUL
/// character, so both stores refuse it alike.
fn nul_result() -> serde_json::Value {
    json!({"text": "before \u{0} after"})
}

async fn a_report_holding_a_nul_character_is_refused_alone_and_the_rest_are_written(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    enqueue(&broker, vec![spec("q", "noop"), spec("q", "noop")]).await?;
    let mut worker = StreamWorker::connect(&broker, "w", &["q"]).await?;
    worker.credit(2).await?;
    let mut leased = worker.take(2).await?;
    leased.sort_by_key(|j| j.id);
    let (good, odd) = (&leased[0], &leased[1]);

    let reports = vec![
        complete_report(good, json!({"n": 1})),
        complete_report(odd, nul_result()),
    ];
    worker.report(reports).await?;
    let acks = worker.acks(2).await?;
    let written = ack_about(&acks, good.id)?;
    ensure!(written.code == OK, "{written:?}");
    ensure!(accepted(written)?.state == i32::from(pb::JobState::Done));
    let refused = ack_about(&acks, odd.id)?;
    ensure!(
        refused.code == INVALID_ARGUMENT && refused.message.contains("NUL character"),
        "{refused:?}"
    );

    let db = broker.db().await?;
    let states: Vec<(String,)> = db.fetch_all("SELECT state FROM jobs ORDER BY id").await?;
    ensure!(
        states == vec![("done".into(),), ("leased".into(),)],
        "{states:?}"
    );
    Ok(())
}
