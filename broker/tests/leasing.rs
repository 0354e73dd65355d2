//! Leasing over the real Lease stream: order, credits, exclusivity across
//! brokers, and push without polling.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use baton_proto::v1 as pb;
use support::backend::Harness;
use support::{DEADLINE, Worker, config, enqueue, spec, start, start_on};

on_both_backends!(
    jobs_are_leased_by_priority_then_available_at_then_id,
    a_stream_gets_as_many_jobs_as_credits_and_never_more,
    a_delayed_job_is_pushed_when_it_comes_due,
    a_stream_must_open_with_hello,
);

async fn jobs_are_leased_by_priority_then_available_at_then_id(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let past = |secs: i64| {
        Some(prost_types::Timestamp {
            seconds: 1_600_000_000 + secs,
            nanos: 0,
        })
    };
    let jobs = enqueue(
        &broker,
        vec![
            pb::JobSpec {
                priority: 5,
                ..spec("q", "noop")
            },
            pb::JobSpec {
                priority: 1,
                run_at: past(20),
                ..spec("q", "noop")
            },
            pb::JobSpec {
                priority: 1,
                run_at: past(10),
                ..spec("q", "noop")
            },
            pb::JobSpec {
                priority: 1,
                run_at: past(10),
                ..spec("q", "noop")
            },
        ],
    )
    .await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(4).await?;
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(worker.next().await?.id);
    }
    assert_eq!(order, vec![jobs[2].id, jobs[3].id, jobs[1].id, jobs[0].id]);
    Ok(())
}

async fn a_stream_gets_as_many_jobs_as_credits_and_never_more(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    enqueue(&broker, (0..5).map(|_| spec("q", "noop")).collect()).await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(3).await?;
    for _ in 0..3 {
        worker.next().await?;
    }
    assert!(
        worker.idle_for(Duration::from_millis(300)).await,
        "a fourth job arrived"
    );
    worker.credit(1).await?;
    worker.next().await?;
    Ok(())
}

#[tokio::test]
async fn a_job_enqueued_on_another_broker_is_pushed_to_a_waiting_stream_on_postgres() -> Result<()>
{
    let first = start().await?;
    let second = start_on(config(&first.url)).await?;
    let mut worker = Worker::connect(&first, "w", &["q"]).await?;
    worker.credit(1).await?;
    assert!(worker.idle_for(Duration::from_millis(200)).await);
    let job = enqueue(&second, vec![spec("q", "noop")]).await?.remove(0);
    let leased = worker.next_within(Duration::from_secs(2)).await?;
    assert_eq!(leased.id, job.id);
    Ok(())
}

async fn a_delayed_job_is_pushed_when_it_comes_due(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(1).await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let due_ms = i64::try_from(now.as_millis())? + 700;
    let run_at = Some(baton_proto::convert::timestamp_from_millis(due_ms));
    let job = enqueue(
        &broker,
        vec![pb::JobSpec {
            run_at,
            ..spec("q", "noop")
        }],
    )
    .await?;
    assert!(
        worker.idle_for(Duration::from_millis(400)).await,
        "leased before it was due"
    );
    let leased = worker.next_within(Duration::from_secs(3)).await?;
    assert_eq!(leased.id, job[0].id);
    let leased_at =
        baton_proto::convert::timestamp_to_millis(&leased.lease_expires_at.unwrap()) - 30_000;
    assert!(
        leased_at >= due_ms - 5,
        "leased at {leased_at}, due at {due_ms}"
    );
    Ok(())
}

#[tokio::test]
async fn two_brokers_on_one_database_never_lease_a_job_twice_on_postgres() -> Result<()> {
    const JOBS: usize = 2_000;
    let first = start().await?;
    let second = start_on(config(&first.url)).await?;
    enqueue(&first, (0..JOBS).map(|_| spec("q", "noop")).collect()).await?;
    let mut tasks = Vec::new();
    for n in 0..8 {
        let broker = if n % 2 == 0 { &first } else { &second };
        let mut worker = Worker::connect(broker, &format!("w{n}"), &["q"]).await?;
        tasks.push(tokio::spawn(async move {
            worker.credit(10_000).await?;
            let mut ids = Vec::new();
            while let Ok(job) = worker.next_within(Duration::from_millis(1_500)).await {
                ids.push(job.id);
            }
            anyhow::Ok(ids)
        }));
    }
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for task in tasks {
        for id in tokio::time::timeout(DEADLINE * 6, task).await??? {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), JOBS);
    assert!(seen.values().all(|count| *count == 1));
    let db = first.db().await?;
    let (attempts, distinct): (i64, i64) = db
        .fetch_one("SELECT count(*), count(DISTINCT job_id) FROM attempts")
        .await?;
    assert_eq!(
        (attempts, distinct),
        (i64::try_from(JOBS)?, i64::try_from(JOBS)?)
    );
    Ok(())
}

async fn a_stream_must_open_with_hello(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let mut client = broker.worker_client().await?;
    let credits = pb::LeaseRequest {
        msg: Some(pb::lease_request::Msg::Credits(pb::Credits { credits: 1 })),
    };
    let mut replies = client
        .lease(tokio_stream::iter(vec![credits]))
        .await?
        .into_inner();
    let status = tokio::time::timeout(DEADLINE, replies.message())
        .await?
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    Ok(())
}
