//! The reaper: expired leases go through the retry policy.

mod support;

use std::time::Duration;

use anyhow::Result;
use baton_broker::ReapCounts;
use baton_proto::v1 as pb;
use serde_json::json;
use support::backend::Harness;
use support::{Worker, enqueue, retry, spec, start_on};

on_both_backends!(
    an_expired_lease_is_retried_then_dead_when_attempts_run_out,
    a_heartbeated_lease_is_not_reaped,
    a_dead_job_requeues_with_its_history_kept,
);

async fn short_lease_broker(h: &Harness) -> Result<support::TestBroker> {
    let mut config = h.config();
    config.lease_timeout = Duration::from_millis(300);
    start_on(config).await
}

async fn an_expired_lease_is_retried_then_dead_when_attempts_run_out(h: Harness) -> Result<()> {
    let broker = short_lease_broker(&h).await?;
    let block = json!({"max_attempts": 2, "initial_delay": 0, "jitter": false});
    let job = enqueue(
        &broker,
        vec![pb::JobSpec {
            retry: retry(block),
            ..spec("q", "noop")
        }],
    )
    .await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    let db = broker.db().await?;
    let reaper = broker.broker.reaper();

    worker.credit(1).await?;
    worker.next().await?;
    db.expire_leases().await?;
    assert_eq!(
        reaper.run_once().await?,
        ReapCounts {
            retried: 1,
            dead: 0
        }
    );

    worker.credit(1).await?;
    let second = worker.next().await?;
    assert_eq!(second.attempt, 2);
    db.expire_leases().await?;
    assert_eq!(
        reaper.run_once().await?,
        ReapCounts {
            retried: 0,
            dead: 1
        }
    );

    let got = broker
        .jobs()
        .await?
        .get(pb::GetJobRequest { id: job[0].id })
        .await?
        .into_inner();
    let stored = got.job.unwrap();
    assert_eq!(stored.state, i32::from(pb::JobState::Dead));
    assert_eq!(
        stored.last_error.unwrap().kind,
        i32::from(pb::ErrorKind::LeaseExpired)
    );
    assert!(
        got.attempts
            .iter()
            .all(|a| a.outcome == i32::from(pb::AttemptOutcome::LeaseExpired))
    );
    assert!(got.attempts.iter().all(|a| a.decided_by == "broker"));
    Ok(())
}

async fn a_heartbeated_lease_is_not_reaped(h: Harness) -> Result<()> {
    let broker = short_lease_broker(&h).await?;
    enqueue(&broker, vec![spec("q", "noop")]).await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(1).await?;
    let leased = worker.next().await?;
    let heartbeat = pb::HeartbeatRequest {
        job_id: leased.id,
        lease_token: leased.lease_token,
    };
    worker.client.heartbeat(heartbeat).await?;
    assert_eq!(
        broker.broker.reaper().run_once().await?,
        ReapCounts::default()
    );
    Ok(())
}

async fn a_dead_job_requeues_with_its_history_kept(h: Harness) -> Result<()> {
    let broker = short_lease_broker(&h).await?;
    let job = enqueue(&broker, vec![spec("q", "noop")]).await?.remove(0);
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(1).await?;
    let leased = worker.next().await?;
    worker.fail(&leased, "boom", None).await?;

    let mut jobs = broker.jobs().await?;
    let requeued = jobs
        .requeue(pb::RequeueJobRequest { id: job.id })
        .await?
        .into_inner()
        .job
        .unwrap();
    assert_eq!(
        (requeued.state, requeued.attempts),
        (i32::from(pb::JobState::Queued), 0)
    );
    let status = jobs
        .requeue(pb::RequeueJobRequest { id: job.id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);

    worker.credit(1).await?;
    let again = worker.next().await?;
    assert_eq!((again.id, again.attempt), (job.id, 1));
    let got = jobs
        .get(pb::GetJobRequest { id: job.id })
        .await?
        .into_inner();
    assert_eq!(got.attempts.len(), 2);
    Ok(())
}
