//! Playbook executions driven through the real Lease stream: progression,
//! events, watching and cancelling.

mod support;

use anyhow::{Context, Result};
use baton_proto::convert::to_struct;
use baton_proto::v1 as pb;
use serde_json::json;
use support::backend::Harness;
use support::{DEADLINE, TestBroker, Worker};

on_both_backends!(
    an_execution_records_its_events_in_order_as_a_worker_drives_it,
    a_dead_step_fails_the_execution,
    a_template_that_cannot_render_fails_its_step_not_the_broker,
    an_invalid_playbook_is_refused_with_locations_and_nothing_is_stored,
    registering_the_same_text_twice_keeps_one_version,
    cancelling_an_execution_cancels_its_jobs_and_tells_the_worker,
    running_an_unknown_playbook_is_not_found,
);

const PLAYBOOK: &str = r#"
apiVersion: noetl.io/v1
kind: Playbook
metadata:
  name: relay
  path: tests/relay
workload:
  greeting: hello
workflow:
  - step: start
    next:
      - first
  - step: first
    type: noop
    with:
      say: "{{ workload.greeting }}"
    retry:
      max_attempts: 2
      initial_delay: 0
      jitter: false
    next:
      - second
  - step: second
    type: noop
    with:
      echo: "{{ first.said }}"
    next:
      - end
  - step: end
"#;

async fn register(broker: &TestBroker, yaml: &str) -> Result<pb::Playbook> {
    let request = pb::RegisterPlaybookRequest { yaml: yaml.into() };
    let reply = broker
        .playbooks()
        .await?
        .register(request)
        .await?
        .into_inner();
    reply.playbook.context("no playbook")
}

async fn run(
    broker: &TestBroker,
    path: &str,
    workload: serde_json::Value,
) -> Result<pb::Execution> {
    let request = pb::RunExecutionRequest {
        path: path.into(),
        workload: workload.as_object().map(to_struct),
        ..Default::default()
    };
    let reply = broker.executions().await?.run(request).await?.into_inner();
    reply.execution.context("no execution")
}

async fn watch(broker: &TestBroker, id: i64, after: i64) -> Result<Vec<pb::Event>> {
    let request = pb::WatchEventsRequest {
        execution_id: id,
        after_event_id: after,
        follow: None,
    };
    let mut stream = broker
        .executions()
        .await?
        .watch_events(request)
        .await?
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(DEADLINE, stream.message()).await?? {
        events.push(event);
    }
    Ok(events)
}

async fn an_execution_records_its_events_in_order_as_a_worker_drives_it(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    register(&broker, PLAYBOOK).await?;
    let execution = run(&broker, "tests/relay", json!({"greeting": "hi"})).await?;
    let mut worker = Worker::connect(&broker, "w", &["default"]).await?;
    worker.credit(3).await?;

    let first = worker.next().await?;
    assert_eq!(first.step, "first");
    assert_eq!(
        first.payload.clone().unwrap(),
        to_struct(json!({"with": {"say": "hi"}}).as_object().unwrap())
    );
    worker.fail(&first, "flaky", None).await?;
    let retried = worker.next().await?;
    assert_eq!((retried.step.as_str(), retried.attempt), ("first", 2));
    worker
        .complete(&retried, json!({"said": "hi there"}))
        .await?;
    let second = worker.next().await?;
    assert_eq!(
        second.payload.clone().unwrap(),
        to_struct(json!({"with": {"echo": "hi there"}}).as_object().unwrap())
    );
    worker.complete(&second, json!(null)).await?;

    let events = watch(&broker, execution.id, 0).await?;
    let names: Vec<(&str, &str, u32)> = events
        .iter()
        .map(|e| (e.name.as_str(), e.step.as_str(), e.attempt))
        .collect();
    assert_eq!(
        names,
        vec![
            ("execution_started", "", 0),
            ("step_started", "first", 0),
            ("action_started", "first", 1),
            ("action_error", "first", 1),
            ("action_retry", "first", 1),
            ("action_started", "first", 2),
            ("action_completed", "first", 2),
            ("step_completed", "first", 2),
            ("step_started", "second", 0),
            ("action_started", "second", 1),
            ("action_completed", "second", 1),
            ("step_completed", "second", 1),
            ("execution_completed", "", 0),
        ]
    );
    assert_eq!(events[2].max_attempts, 2);
    assert!(events[4].available_at.is_some());

    let resumed = watch(&broker, execution.id, events[9].id).await?;
    assert_eq!(
        resumed.iter().map(|e| e.id).collect::<Vec<_>>(),
        events[10..].iter().map(|e| e.id).collect::<Vec<_>>()
    );
    Ok(())
}

async fn a_dead_step_fails_the_execution(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    register(&broker, PLAYBOOK).await?;
    let execution = run(&broker, "tests/relay", json!({})).await?;
    let mut worker = Worker::connect(&broker, "w", &["default"]).await?;
    worker.credit(2).await?;
    for _ in 0..2 {
        let job = worker.next().await?;
        worker.fail(&job, "broken", None).await?;
    }
    let names: Vec<String> = watch(&broker, execution.id, 0)
        .await?
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        &names[names.len() - 3..],
        ["action_error", "step_failed", "execution_failed"]
    );
    let got = broker
        .executions()
        .await?
        .get(pb::GetExecutionRequest { id: execution.id })
        .await?;
    let got = got.into_inner().execution.unwrap();
    assert_eq!(got.state, i32::from(pb::ExecutionState::Failed));
    assert!(got.error.contains("broken"), "{}", got.error);
    Ok(())
}

async fn a_template_that_cannot_render_fails_its_step_not_the_broker(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    register(&broker, PLAYBOOK).await?;
    let execution = run(&broker, "tests/relay", json!({})).await?;
    let mut worker = Worker::connect(&broker, "w", &["default"]).await?;
    worker.credit(1).await?;
    let first = worker.next().await?;
    worker.complete(&first, json!({"not_said": 1})).await?;
    let events = watch(&broker, execution.id, 0).await?;
    let failed = events
        .iter()
        .find(|e| e.name == "step_failed")
        .context("no step_failed")?;
    assert_eq!(failed.step, "second");
    assert!(
        failed.error.as_ref().unwrap().message.contains("echo"),
        "{failed:?}"
    );
    assert_eq!(events.last().unwrap().name, "execution_failed");
    Ok(())
}

async fn an_invalid_playbook_is_refused_with_locations_and_nothing_is_stored(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    let broken = PLAYBOOK
        .replace("max_attempts: 2", "max_attempts: -2")
        .replace("jitter: false", "jiter: 1");
    let request = pb::RegisterPlaybookRequest { yaml: broken };
    let status = broker
        .playbooks()
        .await?
        .register(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let lines: Vec<&str> = status.message().lines().collect();
    assert!(lines.len() >= 2, "{}", status.message());
    assert!(
        lines.iter().any(|l| l.contains("max_attempts")),
        "{}",
        status.message()
    );
    assert!(
        lines
            .iter()
            .all(|l| l.split(':').next().unwrap().parse::<u32>().is_ok())
    );
    let list = broker
        .playbooks()
        .await?
        .list(pb::ListPlaybooksRequest::default())
        .await?;
    assert!(list.into_inner().playbooks.is_empty());
    Ok(())
}

async fn registering_the_same_text_twice_keeps_one_version(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let first = register(&broker, PLAYBOOK).await?;
    let again = register(&broker, PLAYBOOK).await?;
    let changed = register(&broker, &PLAYBOOK.replace("hello", "howdy")).await?;
    assert_eq!((first.version, again.version, changed.version), (1, 1, 2));
    assert_eq!(first.steps, vec!["start", "first", "second", "end"]);
    Ok(())
}

async fn cancelling_an_execution_cancels_its_jobs_and_tells_the_worker(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    register(&broker, PLAYBOOK).await?;
    let execution = run(&broker, "tests/relay", json!({})).await?;
    let mut worker = Worker::connect(&broker, "w", &["default"]).await?;
    worker.credit(1).await?;
    let job = worker.next().await?;
    let cancelled = broker
        .executions()
        .await?
        .cancel(pb::CancelExecutionRequest { id: execution.id })
        .await?;
    let cancelled = cancelled.into_inner().execution.unwrap();
    assert_eq!(cancelled.state, i32::from(pb::ExecutionState::Cancelled));

    let heartbeat = pb::HeartbeatRequest {
        job_id: job.id,
        lease_token: job.lease_token,
    };
    let beat = worker.client.heartbeat(heartbeat).await?.into_inner();
    assert_eq!(beat.directive, i32::from(pb::Directive::Cancelled));
    let got = broker
        .jobs()
        .await?
        .get(pb::GetJobRequest { id: job.id })
        .await?
        .into_inner();
    assert_eq!(got.job.unwrap().state, i32::from(pb::JobState::Cancelled));
    assert_eq!(
        got.attempts[0].outcome,
        i32::from(pb::AttemptOutcome::Cancelled)
    );
    let events = watch(&broker, execution.id, 0).await?;
    assert_eq!(events.last().unwrap().name, "execution_cancelled");
    Ok(())
}

async fn running_an_unknown_playbook_is_not_found(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let request = pb::RunExecutionRequest {
        path: "nope".into(),
        ..Default::default()
    };
    let status = broker.executions().await?.run(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    Ok(())
}
