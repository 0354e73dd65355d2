//! Retry decisions taken on real executor outputs, through the wire
//! policy conversion, as the runtime takes them.

mod support;

use baton_dsl::Reason;
use baton_testkit::http::{Reply, TestServer};
use baton_worker::executor::{Task, TaskOutput};
use baton_worker::policy;
use serde_json::json;
use support::{executors, task, wire_policy};

async fn attempt(task: &mut Task, n: u32) -> TaskOutput {
    task.job.attempt = n;
    executors().execute(task).await
}

#[tokio::test]
async fn retry_when_retries_a_503_and_completes_on_the_200() {
    let server = TestServer::start().await;
    server.script(
        "/api",
        vec![Reply::text(503, "busy"), Reply::json(200, "{}")],
    );
    let policy = policy::from_proto(Some(&wire_policy(5, "status_code >= 500", ""))).unwrap();
    let mut task = task("http", json!({"url": server.url("/api")}));

    let first = policy::decide(&policy, &attempt(&mut task, 1).await, 1);
    assert!(first.retry);
    assert_eq!(first.reason, Reason::RetryWhen);
    assert_eq!(first.delay.as_millis(), 100);

    let second = policy::decide(&policy, &attempt(&mut task, 2).await, 2);
    assert!(!second.retry);
    assert_eq!(second.reason, Reason::RetryWhenFalse);
}

#[tokio::test]
async fn stop_when_vetoes_a_retry_when_that_holds() {
    let server = TestServer::start().await;
    let replies = vec![
        Reply::json(200, r#"{"done": false}"#),
        Reply::json(200, r#"{"done": true}"#),
    ];
    server.script("/poll", replies);
    let wire = wire_policy(10, "status_code == 200", "{{ data.done }}");
    let policy = policy::from_proto(Some(&wire)).unwrap();
    let mut task = task("http", json!({"url": server.url("/poll")}));

    let polling = policy::decide(&policy, &attempt(&mut task, 1).await, 1);
    assert_eq!((polling.retry, polling.reason), (true, Reason::RetryWhen));

    let done = policy::decide(&policy, &attempt(&mut task, 2).await, 2);
    assert_eq!((done.retry, done.reason), (false, Reason::StopWhen));
}

#[tokio::test]
async fn noop_failing_twice_is_retried_twice_then_completes() {
    let policy = policy::from_proto(Some(&wire_policy(5, "", ""))).unwrap();
    let mut task = task("noop", json!({"fail": 2, "result": "ok"}));
    let mut decisions = Vec::new();
    for n in 1..=3 {
        let output = attempt(&mut task, n).await;
        decisions.push((
            output.succeeded(),
            policy::decide(&policy, &output, n).retry,
        ));
    }
    assert_eq!(decisions, [(false, true), (false, true), (true, false)]);
    assert_eq!(attempt(&mut task, 3).await.result, json!({"data": "ok"}));
}

#[tokio::test]
async fn a_python_task_raising_every_time_is_final_at_max_attempts() {
    let policy = policy::from_proto(Some(&wire_policy(3, "", ""))).unwrap();
    let code = "def main(attempt):\n    raise RuntimeError(f'attempt {attempt}')\n";
    let mut task = task("python", json!({"code": code}));
    let mut reasons = Vec::new();
    for n in 1..=3 {
        let output = attempt(&mut task, n).await;
        assert_eq!(
            output.error.as_ref().unwrap().message,
            format!("attempt {n}")
        );
        reasons.push(policy::decide(&policy, &output, n).reason);
    }
    assert_eq!(
        reasons,
        [Reason::Default, Reason::Default, Reason::AttemptsExhausted]
    );
}

#[tokio::test]
async fn noop_told_to_fail_always_fails_every_attempt() {
    let mut task = task("noop", json!({"fail": true}));
    for n in [1, 5, 50] {
        assert!(!attempt(&mut task, n).await.succeeded());
    }
}
