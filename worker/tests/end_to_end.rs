//! Retry policies end to end, through the real broker, the real worker,
//! CPython and a real HTTP server: an HTTP step retried on 5xx until it
//! gets a 200, and a python step that raises until it is dead.

mod support;

use std::time::{Duration, UNIX_EPOCH};

use baton_proto::convert;
use baton_proto::v1 as pb;
use baton_proto::v1::{AttemptOutcome, DecisionReason, JobState};
use baton_testkit::http::{Call, Reply, TestServer};
use serde_json::json;
use support::api::{names, playbook};
use support::broker::TestBroker;
use support::within;
use support::worker::{TestWorker, config};

const HTTP_STEP: &str = r#"    type: http
    url: "{{ workload.base_url }}/flaky"
    timeout: 5
    retry:
      max_attempts: 5
      initial_delay: 0.2
      backoff_multiplier: 2.0
      jitter: false
      retry_when: "{{ status_code >= 500 }}"
"#;

const PYTHON_STEP: &str = r#"    type: python
    code: |
      def main(attempt):
          raise RuntimeError(f"attempt {attempt}")
    retry: {max_attempts: 3, initial_delay: 0.05, jitter: false}
"#;

fn wall_ms(call: &Call) -> i64 {
    let since_epoch = call.wall.duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

#[tokio::test]
async fn an_http_step_is_retried_on_5xx_after_the_policy_delays_until_a_200() {
    let server = TestServer::start().await;
    let replies = vec![
        Reply::text(503, "busy"),
        Reply::text(502, "bad gateway"),
        Reply::json(200, r#"{"up": true}"#),
    ];
    server.script("/flaky", replies);
    let broker = TestBroker::start().await;
    let path = broker
        .register(&playbook("tests/http_retry", HTTP_STEP))
        .await;
    let worker = TestWorker::start(config(&broker, 1));

    let workload = json!({"base_url": server.url("")});
    let execution = broker.run(&path, workload).await;
    let mut events = broker.watch(execution.id).await;
    let started = events.next_named("action_started").await;
    events.next_named("execution_completed").await;
    worker.stop().await;

    // The job is done, so no call can follow the three.
    let calls = within("three calls", server.wait_for_calls("/flaky", 3)).await;
    assert_eq!(calls.len(), 3);
    let (job, attempts) = broker.job(started.job_id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Done, 3));
    let statuses: Vec<_> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(statuses, [Some(503), Some(502), Some(200)]);
    let delays = [Duration::from_millis(200), Duration::from_millis(400)];
    for (n, delay) in delays.into_iter().enumerate() {
        assert_retried_after(&attempts[n], delay, &calls[n], &calls[n + 1]);
    }
    let last = attempts[2].decision.as_ref().unwrap();
    assert_eq!(
        (last.retry, last.reason()),
        (false, DecisionReason::RetryWhenFalse)
    );
}

/// `attempt` was retried by `retry_when` after `delay`, and the call of
/// the next attempt came no sooner than the job was rescheduled to.
fn assert_retried_after(attempt: &pb::Attempt, delay: Duration, call: &Call, next: &Call) {
    let decision = attempt.decision.as_ref().unwrap();
    assert_eq!(
        (decision.retry, decision.reason()),
        (true, DecisionReason::RetryWhen)
    );
    assert_eq!(
        convert::from_duration(decision.delay.as_ref().unwrap()),
        delay
    );
    assert_eq!(attempt.decided_by, "worker");

    let rescheduled = convert::timestamp_to_millis(attempt.rescheduled_at.as_ref().unwrap());
    let finished = convert::timestamp_to_millis(attempt.finished_at.as_ref().unwrap());
    let delay_ms = i64::try_from(delay.as_millis()).unwrap();
    assert!(
        rescheduled >= finished + delay_ms - 1,
        "rescheduled too early"
    );
    assert!(
        wall_ms(next) >= rescheduled,
        "attempt {} ran early",
        attempt.number + 1
    );
    assert!(
        wall_ms(next) - wall_ms(call) >= delay_ms,
        "calls closer than {delay:?}"
    );
}

#[tokio::test]
async fn a_python_step_raising_every_time_is_dead_after_max_attempts() {
    let broker = TestBroker::start().await;
    let path = broker
        .register(&playbook("tests/python_dead", PYTHON_STEP))
        .await;
    let worker = TestWorker::start(config(&broker, 1));

    let execution = broker.run(&path, json!({})).await;
    let events = broker.watch(execution.id).await.rest().await;
    worker.stop().await;

    assert_eq!(names(&events).last(), Some(&"execution_failed"));
    let errors: Vec<_> = events.iter().filter(|e| e.name == "action_error").collect();
    let numbers: Vec<_> = errors.iter().map(|e| e.attempt).collect();
    assert_eq!(numbers, [1, 2, 3]);
    let (job, attempts) = broker.job(errors[0].job_id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Dead, 3));
    assert_eq!(job.last_reason(), DecisionReason::AttemptsExhausted);
    for (n, attempt) in attempts.iter().enumerate() {
        let error = attempt.error.as_ref().unwrap();
        assert_eq!(error.r#type, "RuntimeError");
        assert_eq!(error.message, format!("attempt {}", n + 1));
        assert_eq!(attempt.outcome(), AttemptOutcome::Failed);
        assert_eq!(attempt.decided_by, "worker");
    }
    let retries: Vec<_> = attempts
        .iter()
        .map(|a| a.decision.as_ref().unwrap().retry)
        .collect();
    assert_eq!(retries, [true, true, false]);
}
