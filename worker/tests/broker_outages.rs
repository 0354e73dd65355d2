//! The worker runtime while the real broker goes away and comes back:
//! results wait in the outbox, and a lease that expired meanwhile stops
//! its attempt and keeps its late result out of the job's history.
//!
//! A lease is lost the way it is in production: the broker the worker
//! talks to stops, another broker on the same database (which the worker
//! cannot reach) reaps the lease once it expires, and the worker's broker
//! comes back on its old port.

mod support;

use baton_proto::convert;
use baton_proto::v1::{AttemptOutcome, ErrorKind, JobState};
use serde_json::json;
use support::api::{NOOP_STEP, playbook};
use support::broker::{Leases, TestBroker};
use support::gate::Gate;
use support::logs::Logs;
use support::worker::{TestWorker, config};

const RETRY_ONCE: &str = "{max_attempts: 2, initial_delay: 0.1, jitter: false}";

/// Lets a broker the worker cannot reach expire the lease of the running
/// attempt of `execution_id`, and waits until it has.
async fn expire_lease_elsewhere(broker: &TestBroker, execution_id: i64) {
    let reaper = broker.elsewhere().await;
    let mut events = reaper.watch(execution_id).await;
    let expired = events.next_named("lease_expired").await;
    assert_eq!(expired.attempt, 1);
    events.next_named("action_retry").await;
}

/// Checks that attempt 1 ended as the reaper recorded it and attempt 2,
/// run by the worker, finished the job.
async fn assert_expired_then_done(broker: &TestBroker, job_id: i64) {
    let (job, attempts) = broker.job(job_id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Done, 2));
    let expired = &attempts[0];
    assert_eq!(expired.outcome(), AttemptOutcome::LeaseExpired);
    assert_eq!(
        expired.error.as_ref().unwrap().kind(),
        ErrorKind::LeaseExpired
    );
    assert_eq!(expired.decided_by, "broker");
    assert_eq!(expired.result, None);
    let retried = &attempts[1];
    assert_eq!(retried.outcome(), AttemptOutcome::Succeeded);
    assert_eq!(retried.decided_by, "worker");
    assert_eq!(attempts.len(), 2);
}

#[tokio::test]
async fn a_lost_lease_stops_its_attempt_and_the_retry_runs() {
    let mut broker = TestBroker::start_with(Leases::SHORT).await;
    let gate = Gate::open().await;
    let path = broker
        .register(&Gate::playbook("tests/lost", RETRY_ONCE))
        .await;
    let execution = broker.run(&path, gate.workload()).await;
    let worker = TestWorker::start(config(&broker, 1));
    let mut first = gate.accept().await;

    broker.stop().await;
    expire_lease_elsewhere(&broker, execution.id).await;
    broker.restart().await;
    // The next heartbeat is refused: the attempt is stopped, its process
    // killed, and its slot goes to the retry.
    first.exited().await;
    let mut retry = gate.accept().await;
    assert_eq!((retry.job_id, retry.attempt), (first.job_id, 2));
    retry.release().await;

    let mut events = broker.watch(execution.id).await;
    events.next_named("execution_completed").await;
    worker.stop().await;
    assert_expired_then_done(&broker, first.job_id).await;
}

#[tokio::test]
async fn a_result_finished_after_its_lease_expired_is_refused() {
    let (logs, _recording) = Logs::record();
    let mut broker = TestBroker::start_with(Leases::SHORT).await;
    let gate = Gate::open().await;
    let path = broker
        .register(&Gate::playbook("tests/stale", RETRY_ONCE))
        .await;
    let execution = broker.run(&path, gate.workload()).await;
    let worker = TestWorker::start(config(&broker, 1));
    let mut first = gate.accept().await;

    broker.stop().await;
    expire_lease_elsewhere(&broker, execution.id).await;
    first.release().await;
    // The result is in the outbox before the broker returns; otherwise a
    // refused heartbeat could stop the attempt before it has one.
    logs.logged("Result held until the broker is back").await;
    broker.restart().await;
    // The stale result reaches the broker before the retry's: one outbox
    // delivers both, in order.
    let mut retry = gate.accept().await;
    assert_eq!(retry.attempt, 2);
    retry.release().await;

    let mut events = broker.watch(execution.id).await;
    events.next_named("execution_completed").await;
    worker.stop().await;
    assert_expired_then_done(&broker, first.job_id).await;
}

#[tokio::test]
async fn results_finished_while_the_broker_is_down_are_delivered_when_it_returns() {
    let (logs, _recording) = Logs::record();
    let mut broker = TestBroker::start().await;
    let gate = Gate::open().await;
    let path = broker
        .register(&Gate::playbook("tests/outbox", "false"))
        .await;
    let noop = broker.register(&playbook("tests/noop", NOOP_STEP)).await;
    let execution = broker.run(&path, gate.workload()).await;
    let worker = TestWorker::start(config(&broker, 1));
    let mut held = gate.accept().await;

    broker.stop().await;
    held.release().await;
    held.exited().await;
    logs.logged("Result held until the broker is back").await;
    broker.restart().await;

    let mut events = broker.watch(execution.id).await;
    events.next_named("execution_completed").await;
    let (job, attempts) = broker.job(held.job_id).await;
    assert_eq!((job.state(), attempts.len()), (JobState::Done, 1));
    assert_eq!(attempts[0].decided_by, "worker");
    let result = convert::from_value(job.result.as_ref().unwrap());
    assert_eq!(result["data"], json!("released"));

    // The worker leases from the broker that came back, too.
    broker.run_to_completion(&noop).await;
    worker.stop().await;
}
