//! Complete, Fail, Heartbeat and Release: tokens, idempotency, and the
//! broker's authority over the retry policy.

mod support;

use anyhow::Result;
use baton_proto::v1 as pb;
use serde_json::json;
use support::backend::Harness;
use support::{Worker, enqueue, fail_request, retry, spec};

on_both_backends!(
    stale_tokens_are_refused_recorded_and_change_nothing,
    repeating_complete_or_fail_with_the_same_token_returns_the_same_resolution,
    a_worker_retry_beyond_max_attempts_makes_the_job_dead,
    without_a_decision_the_broker_evaluates_the_retry_block,
    a_worker_delay_is_clamped_to_zero_and_to_max_delay,
    a_success_that_matches_retry_when_is_rescheduled,
    heartbeat_extends_and_release_hands_back_without_charging,
    fail_without_an_error_is_invalid,
);

fn retry_decision(delay_ms: i64) -> pb::Decision {
    pb::Decision {
        retry: true,
        delay: Some(prost_types::Duration {
            seconds: delay_ms.div_euclid(1000),
            nanos: i32::try_from(delay_ms.rem_euclid(1000) * 1_000_000).unwrap(),
        }),
        reason: pb::DecisionReason::Default.into(),
        ..Default::default()
    }
}

fn state(resolution: &pb::Resolution) -> pb::JobState {
    pb::JobState::try_from(resolution.state).unwrap()
}

async fn stale_tokens_are_refused_recorded_and_change_nothing(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let block = json!({"max_attempts": 3, "initial_delay": 0, "jitter": false});
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
    worker.fail(&first, "boom", None).await?;
    let second = worker.next().await?;
    assert_ne!(first.lease_token, second.lease_token);

    let complete = pb::CompleteRequest {
        job_id: job[0].id,
        lease_token: first.lease_token,
        ..Default::default()
    };
    let status = worker.client.complete(complete).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let heartbeat = pb::HeartbeatRequest {
        job_id: job[0].id,
        lease_token: first.lease_token,
    };
    let status = worker.client.heartbeat(heartbeat).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);

    let db = broker.db().await?;
    let fenced: Vec<(String, i64)> = db
        .fetch_all("SELECT call, lease_token FROM fenced_calls ORDER BY id")
        .await?;
    assert_eq!(
        fenced,
        vec![
            ("complete".into(), first.lease_token),
            ("heartbeat".into(), first.lease_token)
        ]
    );
    let stored: (String, i64) = db.fetch_one("SELECT state, lease_token FROM jobs").await?;
    assert_eq!(stored, ("leased".into(), second.lease_token));
    Ok(())
}

async fn repeating_complete_or_fail_with_the_same_token_returns_the_same_resolution(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    let block = json!({"max_attempts": 3, "initial_delay": 0.5});
    enqueue(
        &broker,
        vec![
            pb::JobSpec {
                retry: retry(block),
                ..spec("q", "noop")
            },
            spec("q", "noop"),
        ],
    )
    .await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(2).await?;
    let failing = worker.next().await?;
    let completing = worker.next().await?;

    let first = worker.fail(&failing, "boom", None).await?;
    let again = worker.fail(&failing, "boom", None).await?;
    assert_eq!(first, again);
    assert_eq!(state(&first), pb::JobState::Queued);

    let done = worker.complete(&completing, json!({"ok": true})).await?;
    let done_again = worker.complete(&completing, json!({"ok": true})).await?;
    assert_eq!(done, done_again);
    assert_eq!(state(&done), pb::JobState::Done);

    let db = broker.db().await?;
    let (attempts,): (i64,) = db.fetch_one("SELECT count(*) FROM attempts").await?;
    assert_eq!(attempts, 2);
    Ok(())
}

async fn a_worker_retry_beyond_max_attempts_makes_the_job_dead(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
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
    worker.credit(2).await?;
    let first = worker.next().await?;
    let resolution = worker.fail(&first, "boom", Some(retry_decision(0))).await?;
    assert_eq!(state(&resolution), pb::JobState::Queued);
    let second = worker.next().await?;
    let resolution = worker
        .fail(&second, "boom", Some(retry_decision(0)))
        .await?;
    assert_eq!(state(&resolution), pb::JobState::Dead);
    assert_eq!(
        resolution.reason,
        i32::from(pb::DecisionReason::AttemptsExhausted)
    );
    assert_eq!(resolution.attempt, 2);

    let got = broker
        .jobs()
        .await?
        .get(pb::GetJobRequest { id: job[0].id })
        .await?
        .into_inner();
    let stored = got.job.unwrap();
    assert_eq!(stored.state, i32::from(pb::JobState::Dead));
    assert_eq!(
        stored.last_reason,
        i32::from(pb::DecisionReason::AttemptsExhausted)
    );
    assert_eq!(got.attempts.len(), 2);
    assert_eq!(got.attempts[1].decided_by, "worker");
    Ok(())
}

async fn without_a_decision_the_broker_evaluates_the_retry_block(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let block = json!({
        "max_attempts": 3, "initial_delay": 2.0, "backoff_multiplier": 3.0,
        "max_delay": 60, "jitter": false, "stop_when": "{{ 'fatal' in error }}"
    });
    let job = enqueue(
        &broker,
        vec![pb::JobSpec {
            retry: retry(block),
            ..spec("q", "noop")
        }],
    )
    .await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(1).await?;
    let first = worker.next().await?;
    let resolution = worker.fail(&first, "transient", None).await?;
    assert_eq!(state(&resolution), pb::JobState::Queued);
    assert_eq!(resolution.reason, i32::from(pb::DecisionReason::Default));
    assert_eq!(resolution.delay.unwrap().seconds, 2);

    let db = broker.db().await?;
    db.make_all_due(broker.broker.store()).await?;
    worker.credit(1).await?;
    let second = worker.next().await?;
    let resolution = worker.fail(&second, "fatal: disk gone", None).await?;
    assert_eq!(state(&resolution), pb::JobState::Dead);
    assert_eq!(resolution.reason, i32::from(pb::DecisionReason::StopWhen));

    let got = broker
        .jobs()
        .await?
        .get(pb::GetJobRequest { id: job[0].id })
        .await?
        .into_inner();
    let decision = got.attempts[0].decision.clone().unwrap();
    assert_eq!(got.attempts[0].decided_by, "broker");
    assert_eq!(decision.delay.unwrap().seconds, 2);
    assert!(got.attempts[0].rescheduled_at.is_some());
    Ok(())
}

async fn a_worker_delay_is_clamped_to_zero_and_to_max_delay(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let block = json!({"max_attempts": 5, "max_delay": 3});
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
    let resolution = worker
        .fail(&first, "boom", Some(retry_decision(-500)))
        .await?;
    assert_eq!(resolution.delay.unwrap(), prost_types::Duration::default());
    let second = worker.next().await?;
    let resolution = worker
        .fail(&second, "boom", Some(retry_decision(120_000)))
        .await?;
    assert_eq!(resolution.delay.unwrap().seconds, 3);

    let got = broker
        .jobs()
        .await?
        .get(pb::GetJobRequest { id: job[0].id })
        .await?
        .into_inner();
    let messages: Vec<String> = got
        .attempts
        .iter()
        .map(|a| a.decision.clone().unwrap().message)
        .collect();
    assert!(messages[0].contains("clamped to 0ms"), "{messages:?}");
    assert!(
        messages[1].contains("clamped to max_delay 3000ms"),
        "{messages:?}"
    );
    Ok(())
}

async fn a_success_that_matches_retry_when_is_rescheduled(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let block =
        json!({"max_attempts": 4, "retry_when": "{{ result.pending }}", "initial_delay": 1});
    enqueue(
        &broker,
        vec![pb::JobSpec {
            retry: retry(block),
            ..spec("q", "noop")
        }],
    )
    .await?;
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(1).await?;
    let job = worker.next().await?;
    let resolution = worker.complete(&job, json!({"pending": true})).await?;
    assert_eq!(state(&resolution), pb::JobState::Queued);
    assert_eq!(resolution.reason, i32::from(pb::DecisionReason::RetryWhen));
    Ok(())
}

async fn heartbeat_extends_and_release_hands_back_without_charging(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let job = enqueue(&broker, vec![spec("q", "noop")]).await?.remove(0);
    let mut worker = Worker::connect(&broker, "w", &["q"]).await?;
    worker.credit(1).await?;
    let leased = worker.next().await?;
    let heartbeat = pb::HeartbeatRequest {
        job_id: job.id,
        lease_token: leased.lease_token,
    };
    let beat = worker.client.heartbeat(heartbeat).await?.into_inner();
    assert_eq!(beat.directive, i32::from(pb::Directive::Continue));
    assert!(beat.lease_expires_at.is_some());

    let release = pb::ReleaseRequest {
        job_id: job.id,
        lease_token: leased.lease_token,
    };
    let released = worker.client.release(release).await?.into_inner();
    assert_eq!(released.state, i32::from(pb::JobState::Queued));
    worker.credit(1).await?;
    let again = worker.next().await?;
    assert_eq!((again.id, again.attempt), (job.id, 1));
    Ok(())
}

async fn fail_without_an_error_is_invalid(h: Harness) -> Result<()> {
    let broker = h.broker().await?;
    let mut client = broker.worker_client().await?;
    let mut request = fail_request(1, 1, "x", None);
    request.outcome = None;
    let status = client.fail(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let status = client
        .fail(fail_request(999, 1, "x", None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    Ok(())
}
