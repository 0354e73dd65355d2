//! The worker runtime against the real broker, in-process on its own
//! database: credits, the decisions reports carry, cancellation, shutdown
//! and worker pools, checked through what the broker stored.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use baton_proto::convert;
use baton_proto::v1::{AttemptOutcome, DecisionReason, ErrorKind, JobState};
use serde_json::json;
use support::api::{NOOP_STEP, names, playbook};
use support::broker::TestBroker;
use support::gate::Gate;
use support::logs::Logs;
use support::worker::{TestWorker, config};

const NO_RETRY: &str = "false";

#[tokio::test]
async fn a_worker_leases_one_job_per_free_slot_then_one_per_finished_attempt() {
    let broker = TestBroker::start().await;
    let gate = Gate::open().await;
    let path = broker
        .register(&Gate::playbook("tests/credits", NO_RETRY))
        .await;
    for _ in 0..5 {
        broker.run(&path, gate.workload()).await;
    }
    let worker = TestWorker::start(config(&broker, 2));

    let mut first = gate.accept().await;
    let mut second = gate.accept().await;
    let states = [(JobState::Leased, 2), (JobState::Queued, 3)];
    assert_eq!(broker.job_states().await, BTreeMap::from(states));

    first.release().await;
    let mut events = broker.watch(first.execution_id).await;
    events.next_named("execution_completed").await;
    let mut third = gate.accept().await;
    let states = [
        (JobState::Queued, 2),
        (JobState::Leased, 2),
        (JobState::Done, 1),
    ];
    assert_eq!(broker.job_states().await, BTreeMap::from(states));

    second.release().await;
    third.release().await;
    for _ in 0..2 {
        gate.accept().await.release().await;
    }
    worker.stop().await;
    assert_eq!(
        broker.job_states().await,
        BTreeMap::from([(JobState::Done, 5)])
    );
}

#[tokio::test]
async fn each_attempt_is_reported_with_the_worker_decision() {
    let broker = TestBroker::start().await;
    let step = "    type: noop\n    fail: 1\n    result: {n: 7}\n    \
                retry: {max_attempts: 3, initial_delay: 0.25, jitter: false}\n";
    let path = broker.register(&playbook("tests/decisions", step)).await;
    let worker = TestWorker::start(config(&broker, 1));

    let execution = broker.run(&path, json!({})).await;
    let mut events = broker.watch(execution.id).await;
    let error = events.next_named("action_error").await;
    events.next_named("execution_completed").await;
    worker.stop().await;

    let (job, attempts) = broker.job(error.job_id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Done, 2));
    let failed = &attempts[0];
    assert_eq!(failed.outcome(), AttemptOutcome::Failed);
    assert_eq!(failed.error.as_ref().unwrap().kind(), ErrorKind::Exception);
    assert_eq!(failed.decided_by, "worker");
    let decision = failed.decision.as_ref().unwrap();
    assert_eq!(
        (decision.retry, decision.reason()),
        (true, DecisionReason::Default)
    );
    let delay = convert::from_duration(decision.delay.as_ref().unwrap());
    assert_eq!(delay, Duration::from_millis(250));

    let succeeded = &attempts[1];
    assert_eq!(succeeded.outcome(), AttemptOutcome::Succeeded);
    assert_eq!(succeeded.decided_by, "worker");
    let decision = succeeded.decision.as_ref().unwrap();
    assert_eq!(
        (decision.retry, decision.reason()),
        (false, DecisionReason::Default)
    );
    let result = convert::from_value(job.result.as_ref().unwrap());
    assert_eq!(result, json!({"data": {"n": 7}}));
}

#[tokio::test]
async fn a_cancelled_job_has_its_process_killed_and_nothing_reported() {
    let (logs, _recording) = Logs::record();
    let broker = TestBroker::start().await;
    let gate = Gate::open().await;
    let path = broker
        .register(&Gate::playbook("tests/cancel", NO_RETRY))
        .await;
    let noop = broker.register(&playbook("tests/noop", NOOP_STEP)).await;
    let execution = broker.run(&path, gate.workload()).await;
    let worker = TestWorker::start(config(&broker, 1));
    let mut held = gate.accept().await;

    broker.cancel_job(held.job_id).await;
    held.exited().await;
    // The one slot is free again; the outbox delivers in order, so once
    // this job's result is in, a report of the cancelled attempt would be.
    broker.run_to_completion(&noop).await;
    worker.stop().await;
    // The broker answers a late report on a cancelled job with the
    // cancellation and stores nothing, so only the worker can tell.
    assert_eq!(logs.count("Attempt stopped; nothing is reported"), 1);
    assert_eq!(logs.count("Result delivered"), 1, "only the noop job's");

    let (job, attempts) = broker.job(held.job_id).await;
    assert_eq!(job.state(), JobState::Cancelled);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome(), AttemptOutcome::Cancelled);
    assert_eq!((&attempts[0].error, &attempts[0].decision), (&None, &None));
    assert_eq!(attempts[0].decided_by, "");
    let history = broker.history(execution.id).await;
    let reported = ["action_error", "action_completed"];
    assert!(
        !names(&history).iter().any(|n| reported.contains(n)),
        "{history:?}"
    );
}

#[tokio::test]
async fn shutdown_lets_a_running_attempt_finish_within_grace() {
    let broker = TestBroker::start().await;
    let gate = Gate::open().await;
    let path = broker
        .register(&Gate::playbook("tests/grace", NO_RETRY))
        .await;
    broker.run(&path, gate.workload()).await;
    let mut worker = TestWorker::start(config(&broker, 1));
    let mut held = gate.accept().await;

    worker.shut_down();
    held.release().await;
    worker.stop().await;

    let (job, attempts) = broker.job(held.job_id).await;
    assert_eq!(job.state(), JobState::Done);
    let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome()).collect();
    assert_eq!(outcomes, [AttemptOutcome::Succeeded]);
}

#[tokio::test]
async fn shutdown_hands_back_attempts_still_running_after_grace_uncharged() {
    let broker = TestBroker::start().await;
    let gate = Gate::open().await;
    let retry = "{max_attempts: 3}";
    let path = broker
        .register(&Gate::playbook("tests/release", retry))
        .await;
    broker.run(&path, gate.workload()).await;
    let config = baton_worker::WorkerConfig {
        grace: Duration::from_millis(200),
        ..config(&broker, 1)
    };
    let worker = TestWorker::start(config);
    let mut held = gate.accept().await;

    worker.stop().await;
    held.exited().await;

    let (job, attempts) = broker.job(held.job_id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Queued, 0));
    let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome()).collect();
    assert_eq!(outcomes, [AttemptOutcome::Released]);
}

#[tokio::test]
async fn a_pool_runs_workers_named_after_the_pool() {
    let broker = TestBroker::start().await;
    let gate = Gate::open().await;
    let path = broker
        .register(&Gate::playbook("tests/pool", NO_RETRY))
        .await;
    for _ in 0..2 {
        broker.run(&path, gate.workload()).await;
    }
    let pool = TestWorker::pool(config(&broker, 1), 2);

    // Each worker has one slot, so two tasks held at once run on both.
    let mut held = [gate.accept().await, gate.accept().await];
    let mut workers = Vec::new();
    for held in &mut held {
        held.release().await;
        let mut events = broker.watch(held.execution_id).await;
        events.next_named("execution_completed").await;
        workers.push(broker.job(held.job_id).await.1[0].worker.clone());
    }
    pool.stop().await;
    workers.sort();
    assert_eq!(workers, ["test-worker-1", "test-worker-2"]);
}
