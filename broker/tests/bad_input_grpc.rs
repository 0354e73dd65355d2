//! Bad gRPC input: each gets a precise status, changes nothing, and the
//! broker keeps serving afterwards.

mod support;

use anyhow::{Result, ensure};
use baton_proto::v1 as pb;
use serde_json::json;
use support::backend::Harness;
use support::{TestBroker, Worker, enqueue, fail_request, retry, spec};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

on_both_backends!(
    a_register_over_the_message_limit_is_refused_and_the_broker_stays_up,
    unknown_ids_are_not_found_everywhere,
    stale_tokens_on_heartbeat_and_release_are_failed_preconditions,
    absurd_worker_delays_are_clamped_and_the_clamp_recorded,
    reports_on_a_finished_job_repeat_their_answer_or_are_refused,
    bad_credits_end_the_stream_and_zero_credits_change_nothing,
    bad_enqueues_name_the_index_and_field_and_store_nothing,
    run_without_a_playbook_and_a_non_finite_jitter_are_invalid,
);

const TEN_YEARS_MS: i64 = 10 * 365 * 86_400 * 1000;

/// Whether the broker's health check still says it is serving.
async fn serving(broker: &TestBroker) -> Result<bool> {
    let channel = tonic::transport::Channel::from_shared(broker.endpoint.clone())?
        .connect()
        .await?;
    let request = HealthCheckRequest {
        service: String::new(),
    };
    let status = HealthClient::new(channel).check(request).await?;
    Ok(status.into_inner().status == i32::from(ServingStatus::Serving))
}

fn code<T: std::fmt::Debug>(reply: Result<T, tonic::Status>) -> (Code, String) {
    let status = reply.expect_err("the call was accepted");
    (status.code(), status.message().to_owned())
}

fn retry_decision(delay_ms: i64) -> pb::Decision {
    pb::Decision {
        retry: true,
        delay: Some(prost_types::Duration {
            seconds: delay_ms.div_euclid(1000),
            nanos: 0,
        }),
        reason: pb::DecisionReason::Default.into(),
        ..Default::default()
    }
}

async fn a_register_over_the_message_limit_is_refused_and_the_broker_stays_up(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    let yaml = "x".repeat(h.config().max_message_size + 1);
    let request = pb::RegisterPlaybookRequest { yaml };
    let (code, message) = code(broker.playbooks().await?.register(request).await);
    ensure!(
        matches!(code, Code::OutOfRange | Code::ResourceExhausted),
        "{code:?}: {message}"
    );
    let list = broker
        .playbooks()
        .await?
        .list(pb::ListPlaybooksRequest::default())
        .await?;
    ensure!(list.into_inner().playbooks.is_empty());
    ensure!(serving(&broker).await?);
    Ok(())
}

async fn unknown_ids_are_not_found_everywhere(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let mut jobs = broker.jobs().await?;
    let mut executions = broker.executions().await?;
    for id in [0, -1, 424_242, i64::MAX] {
        let found = [
            code(jobs.get(pb::GetJobRequest { id }).await).0,
            code(jobs.cancel(pb::CancelJobRequest { id }).await).0,
            code(jobs.requeue(pb::RequeueJobRequest { id }).await).0,
            code(executions.get(pb::GetExecutionRequest { id }).await).0,
            code(executions.cancel(pb::CancelExecutionRequest { id }).await).0,
        ];
        ensure!(
            found.iter().all(|c| *c == Code::NotFound),
            "{id}: {found:?}"
        );
        let watch = pb::WatchEventsRequest {
            execution_id: id,
            ..Default::default()
        };
        let (watched, message) = code(executions.watch_events(watch).await);
        ensure!(watched == Code::NotFound, "{id}: {watched:?} {message}");
    }
    let get = pb::GetPlaybookRequest {
        path: "no/such".into(),
        version: 0,
    };
    let (got, _) = code(broker.playbooks().await?.get(get).await);
    ensure!(got == Code::NotFound, "{got:?}");
    ensure!(serving(&broker).await?);
    Ok(())
}

async fn stale_tokens_on_heartbeat_and_release_are_failed_preconditions(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let job = enqueue(&broker, vec![spec("q", "noop")]).await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(1).await?;
    let leased = worker.next().await?;
    let stale = leased.lease_token + 1_000;
    let beat = pb::HeartbeatRequest {
        job_id: job[0].id,
        lease_token: stale,
    };
    let release = pb::ReleaseRequest {
        job_id: job[0].id,
        lease_token: stale,
    };
    let unknown = pb::ReleaseRequest {
        job_id: 424_242,
        lease_token: 1,
    };
    ensure!(code(worker.client.heartbeat(beat).await).0 == Code::FailedPrecondition);
    ensure!(code(worker.client.release(release).await).0 == Code::FailedPrecondition);
    ensure!(code(worker.client.release(unknown).await).0 == Code::NotFound);

    let db = broker.db().await?;
    let stored: (String, i64) = db.fetch_one("SELECT state, lease_token FROM jobs").await?;
    ensure!(
        stored == ("leased".into(), leased.lease_token),
        "{stored:?}"
    );
    Ok(())
}

async fn absurd_worker_delays_are_clamped_and_the_clamp_recorded(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let block = json!({"max_attempts": 5, "max_delay": 7});
    let job = enqueue(
        &broker,
        vec![pb::JobSpec {
            retry: retry(block),
            ..spec("q", "noop")
        }],
    )
    .await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(2).await?;
    let first = worker.next().await?;
    let minus_ten_years = Some(retry_decision(-TEN_YEARS_MS));
    let resolution = worker.fail(&first, "boom", minus_ten_years).await?;
    ensure!(resolution.delay.unwrap_or_default() == prost_types::Duration::default());
    let second = worker.next().await?;
    let ten_years = Some(retry_decision(TEN_YEARS_MS));
    let resolution = worker.fail(&second, "boom", ten_years).await?;
    ensure!(resolution.delay.unwrap_or_default().seconds == 7);

    let got = broker
        .jobs()
        .await?
        .get(pb::GetJobRequest { id: job[0].id })
        .await?
        .into_inner();
    let messages: Vec<String> = got
        .attempts
        .iter()
        .map(|a| a.decision.clone().unwrap_or_default().message)
        .collect();
    ensure!(messages[0].contains("clamped to 0ms"), "{messages:?}");
    ensure!(
        messages[1].contains("clamped to max_delay 7000ms"),
        "{messages:?}"
    );
    Ok(())
}

async fn reports_on_a_finished_job_repeat_their_answer_or_are_refused(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let block = json!({"max_attempts": 1});
    let spec = pb::JobSpec {
        retry: retry(block),
        ..spec("q", "noop")
    };
    enqueue(&broker, vec![spec.clone(), spec]).await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(2).await?;
    let done = worker.next().await?;
    let dead = worker.next().await?;

    let first = worker.complete(&done, json!({"n": 1})).await?;
    ensure!(worker.complete(&done, json!({"n": 1})).await? == first);
    let failed = worker.fail(&dead, "boom", None).await?;
    ensure!(worker.fail(&dead, "boom", None).await? == failed);
    ensure!(failed.state == i32::from(pb::JobState::Dead));

    let other = done.lease_token + dead.lease_token + 1;
    let complete = pb::CompleteRequest {
        job_id: done.id,
        lease_token: other,
        ..Default::default()
    };
    let fail = fail_request(dead.id, other, "again", None);
    ensure!(code(worker.client.complete(complete).await).0 == Code::FailedPrecondition);
    ensure!(code(worker.client.fail(fail).await).0 == Code::FailedPrecondition);
    let cross = fail_request(done.id, done.lease_token, "late", None);
    ensure!(code(worker.client.fail(cross).await).0 == Code::FailedPrecondition);

    let db = broker.db().await?;
    let (attempts,): (i64,) = db.fetch_one("SELECT count(*) FROM attempts").await?;
    ensure!(attempts == 2);
    Ok(())
}

async fn bad_credits_end_the_stream_and_zero_credits_change_nothing(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    enqueue(&broker, vec![spec("q", "noop")]).await?;
    let mut idle = Worker::connect(&broker, "idle", &["q"]).await?;
    idle.credit(0).await?;
    ensure!(idle.idle_for(std::time::Duration::from_millis(200)).await);

    for credits in [-1, i32::MIN, 10_001, i32::MAX] {
        let mut worker = Worker::connect(&broker, "bad", &["q"]).await?;
        worker.credit(credits).await?;
        let err = worker.next().await.expect_err("a job after bad credits");
        let status = err.downcast::<tonic::Status>()?;
        ensure!(status.code() == Code::InvalidArgument, "{status:?}");
        ensure!(status.message().contains("credits"), "{status:?}");
    }
    let db = broker.db().await?;
    let (state,): (String,) = db.fetch_one("SELECT state FROM jobs").await?;
    ensure!(state == "queued", "{state}");
    idle.credit(1).await?;
    idle.next().await?;
    Ok(())
}

async fn bad_enqueues_name_the_index_and_field_and_store_nothing(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let mut jobs = broker.jobs().await?;
    let good = spec("q", "noop");
    let bad_retry = pb::JobSpec {
        retry: retry(json!({"max_attempts": 0})),
        ..good.clone()
    };
    let cases = [
        (vec![], "jobs: at least one job"),
        (
            vec![good.clone(); 10_001],
            "jobs: 10001 jobs is more than the limit",
        ),
        (
            vec![good.clone(), spec("q", "Shell Script!")],
            "jobs[1].kind: `Shell Script!` is not a task kind name",
        ),
        (
            vec![good.clone(), spec("q", " ")],
            "jobs[1].kind: is required",
        ),
        (
            vec![good.clone(), good.clone(), bad_retry],
            "jobs[2].retry: ",
        ),
    ];
    for (specs, expected) in cases {
        let request = pb::EnqueueJobsRequest { jobs: specs };
        let (code, message) = code(jobs.enqueue(request).await);
        ensure!(code == Code::InvalidArgument, "{code:?}: {message}");
        ensure!(message.starts_with(expected), "{message}");
    }
    let db = broker.db().await?;
    let (rows,): (i64,) = db.fetch_one("SELECT count(*) FROM jobs").await?;
    ensure!(rows == 0, "{rows} jobs stored");
    ensure!(serving(&broker).await?);
    Ok(())
}

async fn run_without_a_playbook_and_a_non_finite_jitter_are_invalid(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let run = pb::RunExecutionRequest::default();
    let (got, message) = code(broker.executions().await?.run(run).await);
    ensure!(got == Code::InvalidArgument, "{got:?}");
    ensure!(message.contains("path or playbook_id"), "{message}");

    enqueue(&broker, vec![spec("q", "noop")]).await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(1).await?;
    let job = worker.next().await?;
    for jitter in [f64::NAN, f64::INFINITY, -1.0] {
        let decision = pb::Decision {
            jitter_factor: jitter,
            ..retry_decision(0)
        };
        let fail = fail_request(job.id, job.lease_token, "boom", Some(decision));
        let (got, message) = code(worker.client.fail(fail).await);
        ensure!(got == Code::InvalidArgument, "{got:?}");
        ensure!(message.starts_with("decision.jitter_factor"), "{message}");
    }
    let db = broker.db().await?;
    let (state,): (String,) = db.fetch_one("SELECT state FROM jobs").await?;
    ensure!(state == "leased", "{state}");
    Ok(())
}
