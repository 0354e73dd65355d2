//! The reference checklist (DESIGN §10), one test per item, against real
//! processes: each runs on Postgres with `baton broker serve` and
//! `baton worker` as separate processes, and through `baton dev` on SQLite.
//! HTTP tasks call a server the test owns; backoff is read from the stored
//! `available_at` times and from that server's call times.

#[macro_use]
mod support;

use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Result, ensure};
use baton_proto::convert::{from_duration, timestamp_to_millis};
use baton_proto::v1::{self, AttemptOutcome, DecisionReason, ExecutionState, JobState};
use baton_testkit::Backend;
use baton_testkit::http::{Reply, TestServer};
use serde_json::json;

use support::Session;

fn reason(attempt: &v1::Attempt) -> DecisionReason {
    attempt
        .decision
        .as_ref()
        .map_or(DecisionReason::Unspecified, |d| d.reason())
}

fn outcomes(attempts: &[v1::Attempt]) -> Vec<AttemptOutcome> {
    attempts.iter().map(|a| a.outcome()).collect()
}

fn millis(ts: Option<&prost_types::Timestamp>) -> i64 {
    ts.map_or(0, timestamp_to_millis)
}

/// A playbook with one noop step and the given retry block.
fn noop_playbook(path: &str, fail: &str, retry: &str) -> String {
    format!(
        "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {{name: {path}, path: {path}}}\n\
         workflow:\n  - step: start\n    next: [work]\n  - step: work\n    type: noop\n    \
         fail: {fail}\n    retry: {retry}\n    next: [end]\n  - step: end\n"
    )
}

/// 1. A python task that raises is retried up to its `max_attempts` (5).
async fn a_raising_python_task_is_retried_up_to_its_max_attempts(backend: Backend) -> Result<()> {
    let mut s = Session::start(backend).await?;
    let path = s
        .register_fixture("retry_test/python_retry_exception.yaml")
        .await?;

    let ended = s.run(&path, json!({"failure_rate": 1.0})).await?;
    let (job, attempts) = s.job(ended.execution.id, "flaky_python").await?;

    ensure!(
        job.max_attempts == 5,
        "max_attempts {} from the playbook",
        job.max_attempts
    );
    ensure!(attempts.len() == 5, "{} attempts", attempts.len());
    ensure!(outcomes(&attempts) == vec![AttemptOutcome::Failed; 5]);
    let error = attempts[0].error.clone().unwrap_or_default();
    ensure!(error.r#type == "RuntimeError", "{error:?}");
    ensure!(error.message.contains("simulated failure"), "{error:?}");
    ensure!(
        ended.named("action_started").len() == 5,
        "{:?}",
        ended.names()
    );
    Ok(())
}
on_both_backends!(a_raising_python_task_is_retried_up_to_its_max_attempts);

/// 2. An HTTP task is retried on 5xx when `retry_when` says so.
async fn an_http_task_is_retried_on_5xx_when_retry_when_says_so(backend: Backend) -> Result<()> {
    let server = TestServer::start().await;
    let replies = vec![
        Reply::text(503, "busy"),
        Reply::text(502, "bad"),
        Reply::json(200, "{}"),
    ];
    server.script("/flaky", replies);
    let mut s = Session::start(backend).await?;
    let path = s
        .register_fixture("retry_test/http_retry_status_code.yaml")
        .await?;

    let ended = s.run(&path, json!({"base_url": server.url("")})).await?;
    let (job, attempts) = s.job(ended.execution.id, "fetch").await?;

    ensure!(
        server.calls("/flaky").len() == 3,
        "{} calls",
        server.calls("/flaky").len()
    );
    ensure!(job.state() == JobState::Done, "{:?}", job.state());
    // The third run is the last one allowed: the decision order checks that
    // first, so even its success is decided as `attempts_exhausted`.
    let reasons: Vec<_> = attempts.iter().map(reason).collect();
    let expected = [
        DecisionReason::RetryWhen,
        DecisionReason::RetryWhen,
        DecisionReason::AttemptsExhausted,
    ];
    ensure!(reasons == expected, "{reasons:?}");
    ensure!(outcomes(&attempts)[2] == AttemptOutcome::Succeeded);
    ensure!(attempts[0].status_code == Some(503) && attempts[1].status_code == Some(502));
    ensure!(ended.execution.state() == ExecutionState::Completed);
    Ok(())
}
on_both_backends!(an_http_task_is_retried_on_5xx_when_retry_when_says_so);

/// 3. `stop_when` stops an HTTP task on 200.
async fn stop_when_stops_an_http_task_on_200(backend: Backend) -> Result<()> {
    let server = TestServer::start().await;
    let replies = vec![
        Reply::text(503, "warming up"),
        Reply::json(200, r#"{"ready": true}"#),
    ];
    server.script("/status", replies);
    let mut s = Session::start(backend).await?;
    let path = s
        .register_fixture("retry_test/http_retry_with_stop.yaml")
        .await?;

    let ended = s.run(&path, json!({"base_url": server.url("")})).await?;
    let (job, attempts) = s.job(ended.execution.id, "poll").await?;

    ensure!(
        server.calls("/status").len() == 2,
        "{} calls",
        server.calls("/status").len()
    );
    ensure!(server.calls("/status")[0].query == "check=ready");
    ensure!(job.state() == JobState::Done && job.attempts == 2);
    ensure!(
        reason(&attempts[1]) == DecisionReason::StopWhen,
        "{attempts:?}"
    );
    let result = baton_proto::convert::from_value(job.result.as_ref().unwrap());
    ensure!(result["data"]["ready"] == true, "{result}");
    Ok(())
}
on_both_backends!(stop_when_stops_an_http_task_on_200);

/// 4. Exponential backoff shows in the successive `available_at` times.
async fn exponential_backoff_shows_in_successive_available_at_times(
    backend: Backend,
) -> Result<()> {
    let server = TestServer::start().await;
    let mut replies = vec![Reply::text(503, "busy"); 3];
    replies.push(Reply::json(200, "{}"));
    server.script("/slow", replies);
    let mut s = Session::start(backend).await?;
    let yaml = format!(
        "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {{name: b, path: e2e/backoff}}\n\
         workflow:\n  - step: start\n    type: http\n    url: \"{}\"\n    retry:\n      \
         max_attempts: 4\n      initial_delay: 0.1\n      backoff_multiplier: 2\n      \
         jitter: false\n      retry_when: \"{{{{ status_code >= 500 }}}}\"\n    next: [end]\n  \
         - step: end\n",
        server.url("/slow")
    );
    let path = s.register(&yaml).await?;

    let ended = s.run(&path, json!({})).await?;
    let (_, attempts) = s.job(ended.execution.id, "start").await?;

    ensure!(attempts.len() == 4, "{} attempts", attempts.len());
    let calls = server.calls("/slow");
    for (n, expected_ms) in [(0, 100), (1, 200), (2, 400)] {
        let done = &attempts[n];
        let due = millis(next_due(done));
        let waited = due - millis(done.finished_at.as_ref());
        ensure!(
            (waited - expected_ms).abs() <= 2,
            "after attempt {}: due {waited} ms after it ended, expected {expected_ms}",
            n + 1
        );
        let called = wall_millis(&calls[n + 1]);
        ensure!(
            called >= due - 1,
            "call {} came {} ms before it was due",
            n + 2,
            due - called
        );
    }
    Ok(())
}
on_both_backends!(exponential_backoff_shows_in_successive_available_at_times);

fn next_due(attempt: &v1::Attempt) -> Option<&prost_types::Timestamp> {
    attempt.rescheduled_at.as_ref()
}

fn wall_millis(call: &baton_testkit::http::Call) -> i64 {
    let since = call.wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// 5. The job's `attempts` counter increments in the store.
async fn the_attempts_counter_increments_in_the_store(backend: Backend) -> Result<()> {
    let mut s = Session::start(backend).await?;
    let yaml = noop_playbook("e2e/counter", "2", "{max_attempts: 4, initial_delay: 0.05}");
    let path = s.register(&yaml).await?;

    let ended = s.run(&path, json!({})).await?;
    let started: Vec<u32> = ended
        .named("action_started")
        .iter()
        .map(|e| e.attempt)
        .collect();
    ensure!(
        started == vec![1, 2, 3],
        "action_started attempts {started:?}"
    );
    let job_id = ended.named("action_started")[0].job_id;
    ensure!(
        s.cluster.stored_attempts(job_id).await? == 3,
        "stored attempts"
    );
    Ok(())
}
on_both_backends!(the_attempts_counter_increments_in_the_store);

/// 6. Every failed attempt logs an `action_error` event.
async fn every_failed_attempt_logs_an_action_error_event(backend: Backend) -> Result<()> {
    let mut s = Session::start(backend).await?;
    let yaml = noop_playbook("e2e/errors", "3", "{max_attempts: 5, initial_delay: 0.05}");
    let path = s.register(&yaml).await?;

    let ended = s.run(&path, json!({})).await?;
    let errors = ended.named("action_error");
    let numbers: Vec<u32> = errors.iter().map(|e| e.attempt).collect();
    ensure!(
        numbers == vec![1, 2, 3],
        "action_error attempts {numbers:?}"
    );
    ensure!(
        errors
            .iter()
            .all(|e| e.error.as_ref().is_some_and(|x| !x.message.is_empty()))
    );
    ensure!(
        ended.named("action_retry").len() == 3,
        "{:?}",
        ended.names()
    );
    Ok(())
}
on_both_backends!(every_failed_attempt_logs_an_action_error_event);

/// 7. A final success after N retries is recorded as such.
async fn a_final_success_after_retries_is_recorded_as_such(backend: Backend) -> Result<()> {
    let mut s = Session::start(backend).await?;
    let yaml = noop_playbook("e2e/success", "2", "{max_attempts: 5, initial_delay: 0.05}");
    let path = s.register(&yaml).await?;

    let ended = s.run(&path, json!({})).await?;
    let (job, attempts) = s.job(ended.execution.id, "work").await?;

    ensure!(
        job.state() == JobState::Done && job.attempts == 3,
        "{job:?}"
    );
    let expected = [
        AttemptOutcome::Failed,
        AttemptOutcome::Failed,
        AttemptOutcome::Succeeded,
    ];
    ensure!(outcomes(&attempts) == expected, "{attempts:?}");
    ensure!(ended.execution.state() == ExecutionState::Completed);
    let completed = ended.named("action_completed");
    ensure!(
        completed.len() == 1 && completed[0].attempt == 3,
        "{:?}",
        ended.names()
    );
    ensure!(
        ended.names().last() == Some(&"execution_completed"),
        "{:?}",
        ended.names()
    );
    Ok(())
}
on_both_backends!(a_final_success_after_retries_is_recorded_as_such);

/// 8. Reaching `max_attempts` makes the job `dead`.
async fn reaching_max_attempts_makes_the_job_dead(backend: Backend) -> Result<()> {
    let mut s = Session::start(backend).await?;
    let yaml = noop_playbook("e2e/dead", "true", "{max_attempts: 3, initial_delay: 0.05}");
    let path = s.register(&yaml).await?;

    let ended = s.run(&path, json!({})).await?;
    let (job, attempts) = s.job(ended.execution.id, "work").await?;

    ensure!(job.state() == JobState::Dead, "{:?}", job.state());
    ensure!(job.attempts == 3 && attempts.len() == 3, "{job:?}");
    ensure!(
        reason(&attempts[2]) == DecisionReason::AttemptsExhausted,
        "{attempts:?}"
    );
    ensure!(job.last_reason() == DecisionReason::AttemptsExhausted);
    ensure!(ended.execution.state() == ExecutionState::Failed);
    ensure!(
        ended
            .names()
            .ends_with(&["step_failed", "execution_failed"]),
        "{:?}",
        ended.names()
    );
    Ok(())
}
on_both_backends!(reaching_max_attempts_makes_the_job_dead);

/// 9. `stop_when` is honoured even when `retry_when` is true.
async fn stop_when_is_honoured_even_when_retry_when_is_true(backend: Backend) -> Result<()> {
    let server = TestServer::start().await;
    server.script("/done", vec![Reply::json(200, r#"{"state": "done"}"#)]);
    let mut s = Session::start(backend).await?;
    let yaml = format!(
        "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {{name: s, path: e2e/stop}}\n\
         workflow:\n  - step: start\n    type: http\n    url: \"{}\"\n    retry:\n      \
         max_attempts: 5\n      initial_delay: 0.05\n      \
         retry_when: \"{{{{ status_code >= 200 }}}}\"\n      \
         stop_when: \"{{{{ status_code == 200 }}}}\"\n    next: [end]\n  - step: end\n",
        server.url("/done")
    );
    let path = s.register(&yaml).await?;

    let ended = s.run(&path, json!({})).await?;
    let (job, attempts) = s.job(ended.execution.id, "start").await?;

    ensure!(
        server.calls("/done").len() == 1,
        "{} calls",
        server.calls("/done").len()
    );
    ensure!(
        job.state() == JobState::Done && attempts.len() == 1,
        "{job:?}"
    );
    let decision = attempts[0].decision.clone().unwrap_or_default();
    ensure!(
        decision.reason() == DecisionReason::StopWhen && !decision.retry,
        "{decision:?}"
    );
    ensure!(from_duration(&decision.delay.unwrap_or_default()) == Duration::ZERO);
    Ok(())
}
on_both_backends!(stop_when_is_honoured_even_when_retry_when_is_true);

/// Beyond the list: a `retry_when` that holds on a successful result polls
/// until it no longer does.
async fn retry_when_on_a_successful_result_polls_until_it_no_longer_holds(
    backend: Backend,
) -> Result<()> {
    let server = TestServer::start().await;
    let pending = Reply::json(200, r#"{"state": "pending"}"#);
    let done = Reply::json(200, r#"{"state": "done"}"#);
    server.script("/job", vec![pending.clone(), pending, done]);
    let mut s = Session::start(backend).await?;
    let yaml = format!(
        "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {{name: p, path: e2e/poll}}\n\
         workflow:\n  - step: start\n    type: http\n    url: \"{}\"\n    retry:\n      \
         max_attempts: 10\n      initial_delay: 0.05\n      jitter: false\n      \
         retry_when: \"{{{{ data.state != 'done' }}}}\"\n    next: [end]\n  - step: end\n",
        server.url("/job")
    );
    let path = s.register(&yaml).await?;

    let ended = s.run(&path, json!({})).await?;
    let (job, attempts) = s.job(ended.execution.id, "start").await?;

    ensure!(
        server.calls("/job").len() == 3,
        "{} calls",
        server.calls("/job").len()
    );
    ensure!(
        outcomes(&attempts) == [AttemptOutcome::Succeeded; 3],
        "{attempts:?}"
    );
    let reasons: Vec<_> = attempts.iter().map(reason).collect();
    let expected = [
        DecisionReason::RetryWhen,
        DecisionReason::RetryWhen,
        DecisionReason::RetryWhenFalse,
    ];
    ensure!(reasons == expected, "{reasons:?}");
    ensure!(job.state() == JobState::Done && ended.named("action_error").is_empty());
    Ok(())
}
on_both_backends!(retry_when_on_a_successful_result_polls_until_it_no_longer_holds);
