//! The store test suite: the behaviour both backends must share, called
//! through [`Store`] directly (no gRPC), each test run on Postgres and on
//! SQLite.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use baton_broker::model::{
    ClaimRequest, EventKind, ExecutionState, JobState, LeasedJob, NewJob, Report,
};
use baton_broker::store::{Call, JobWake};
use baton_broker::{Error, Store};
use baton_dsl::{Outcome, RetryPolicy};
use serde_json::json;
use support::backend::Harness;

on_both_backends!(
    claims_take_jobs_in_priority_then_due_time_then_id_order,
    concurrent_claims_never_lease_a_job_twice,
    an_idempotency_key_returns_the_earlier_job,
    a_bulk_enqueue_answers_in_order_and_folds_repeated_keys,
    a_repeated_report_gets_the_same_answer_and_a_stale_one_is_refused,
    a_failure_is_rescheduled_with_its_decision_recorded,
    heartbeats_extend_and_releases_hand_back_without_charging,
    an_expired_lease_goes_through_the_retry_policy,
    a_playbook_run_records_its_events_in_order,
    commits_wake_lease_streams_and_event_watchers,
);

fn job(queue: &str, priority: i32, retry: serde_json::Value) -> NewJob {
    NewJob {
        queue: queue.into(),
        kind: "noop".into(),
        payload: json!({}),
        priority,
        run_at: None,
        retry: RetryPolicy::from_json(&retry).unwrap(),
        idempotency_key: None,
    }
}

fn claim_request(limit: u32) -> ClaimRequest {
    ClaimRequest {
        worker: "w".into(),
        queues: vec!["q".into()],
        kinds: vec![],
        limit,
        lease_timeout: Duration::from_secs(30),
    }
}

fn success() -> Report {
    Report {
        outcome: Outcome::success(json!({"ok": true})),
        error: None,
        decision: None,
    }
}

fn failure() -> Report {
    Report {
        outcome: Outcome::failure("boom"),
        error: Some(baton_broker::model::TaskError::new(
            baton_broker::model::ErrorKind::Exception,
            "boom",
        )),
        decision: None,
    }
}

async fn claim_one(store: &Store) -> Result<LeasedJob> {
    let mut leased = store.claim(&claim_request(1)).await?;
    anyhow::ensure!(leased.len() == 1, "expected one job, got {}", leased.len());
    Ok(leased.remove(0))
}

async fn claims_take_jobs_in_priority_then_due_time_then_id_order(h: Harness) -> Result<()> {
    let store = h.store().await?;
    let past = |secs: i64| Some(chrono::DateTime::from_timestamp(1_600_000_000 + secs, 0).unwrap());
    let jobs = store
        .enqueue(vec![
            job("q", 5, json!(1)),
            NewJob {
                run_at: past(20),
                ..job("q", 1, json!(1))
            },
            NewJob {
                run_at: past(10),
                ..job("q", 1, json!(1))
            },
            NewJob {
                run_at: past(10),
                ..job("q", 1, json!(1))
            },
        ])
        .await?;
    let leased = store.claim(&claim_request(10)).await?;
    let order: Vec<i64> = leased.iter().map(|l| l.job.id).collect();
    assert_eq!(order, vec![jobs[2].id, jobs[3].id, jobs[1].id, jobs[0].id]);
    let tokens: HashSet<i64> = leased.iter().map(|l| l.lease_token).collect();
    assert_eq!(tokens.len(), 4, "every lease has a fresh token");
    for leased in &leased {
        assert_eq!(
            (leased.job.state, leased.job.attempts),
            (JobState::Leased, 1)
        );
        let (_, attempts) = store.get_job(leased.job.id).await?;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].lease_token, leased.lease_token);
    }
    assert!(store.claim(&claim_request(10)).await?.is_empty());
    Ok(())
}

async fn concurrent_claims_never_lease_a_job_twice(h: Harness) -> Result<()> {
    const JOBS: usize = 300;
    let store = h.store().await?;
    store
        .enqueue((0..JOBS).map(|_| job("q", 0, json!(1))).collect())
        .await?;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let batch = store.claim(&claim_request(7)).await?;
                if batch.is_empty() {
                    return anyhow::Ok(ids);
                }
                ids.extend(batch.into_iter().map(|l| l.job.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await?? {
            assert!(seen.insert(id), "job {id} leased twice");
        }
    }
    assert_eq!(seen.len(), JOBS);
    Ok(())
}

async fn an_idempotency_key_returns_the_earlier_job(h: Harness) -> Result<()> {
    let store = h.store().await?;
    let keyed = NewJob {
        idempotency_key: Some("k".into()),
        ..job("q", 0, json!(1))
    };
    let first = store.enqueue(vec![keyed.clone()]).await?;
    let again = store.enqueue(vec![keyed, job("q", 0, json!(1))]).await?;
    assert_eq!(again[0].id, first[0].id);
    assert_ne!(again[1].id, first[0].id);
    Ok(())
}

/// A bulk enqueue answers in request order, and a key repeated within the
/// request names one job.
async fn a_bulk_enqueue_answers_in_order_and_folds_repeated_keys(h: Harness) -> Result<()> {
    let store = h.store().await?;
    let keyed = |key: &str, n: i64| NewJob {
        idempotency_key: Some(key.into()),
        payload: json!({"n": n}),
        ..job("q", 0, json!(1))
    };
    let plain = |n: i64| NewJob {
        payload: json!({"n": n}),
        ..job("q", 0, json!(1))
    };
    let request = vec![
        plain(0),
        keyed("a", 1),
        plain(2),
        keyed("a", 3),
        keyed("b", 4),
    ];
    let stored = store.enqueue(request).await?;
    let payloads: Vec<_> = stored.iter().map(|j| j.payload["n"].clone()).collect();
    assert_eq!(payloads, [json!(0), json!(1), json!(2), json!(1), json!(4)]);
    assert_eq!(stored[1].id, stored[3].id, "one job per key");
    let mut ids: Vec<i64> = stored.iter().map(|j| j.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "four distinct jobs: {stored:?}");
    Ok(())
}

async fn a_repeated_report_gets_the_same_answer_and_a_stale_one_is_refused(
    h: Harness,
) -> Result<()> {
    let store = h.store().await?;
    let retry = json!({"max_attempts": 3, "initial_delay": 0, "jitter": false});
    store.enqueue(vec![job("q", 0, retry)]).await?;
    let first = claim_one(&store).await?;
    let id = first.job.id;
    let failed = store
        .report(Call::Fail, id, first.lease_token, failure())
        .await?;
    let repeated = store
        .report(Call::Fail, id, first.lease_token, failure())
        .await?;
    assert_eq!(failed, repeated);
    assert_eq!(failed.state, JobState::Queued);

    let second = claim_one(&store).await?;
    let done = store
        .report(Call::Complete, id, second.lease_token, success())
        .await?;
    assert_eq!(done.state, JobState::Done);
    assert_eq!(
        store
            .report(Call::Complete, id, second.lease_token, success())
            .await?,
        done
    );

    let stale = store
        .report(Call::Complete, id, first.lease_token, success())
        .await;
    assert!(matches!(stale, Err(Error::StaleToken { .. })), "{stale:?}");
    let stale = store
        .heartbeat(id, first.lease_token, Duration::from_secs(1))
        .await;
    assert!(matches!(stale, Err(Error::StaleToken { .. })), "{stale:?}");
    let (job, attempts) = store.get_job(id).await?;
    assert_eq!(
        (job.state, job.attempts, attempts.len()),
        (JobState::Done, 2, 2)
    );
    Ok(())
}

async fn a_failure_is_rescheduled_with_its_decision_recorded(h: Harness) -> Result<()> {
    let store = h.store().await?;
    let retry = json!({"max_attempts": 2, "initial_delay": 1.5, "jitter": false});
    store.enqueue(vec![job("q", 0, retry)]).await?;
    let leased = claim_one(&store).await?;
    let before = chrono::Utc::now();
    let id = leased.job.id;
    let resolution = store
        .report(Call::Fail, id, leased.lease_token, failure())
        .await?;
    assert_eq!(resolution.state, JobState::Queued);
    assert_eq!(resolution.delay, Some(Duration::from_millis(1500)));
    let due = resolution.available_at.expect("rescheduled");
    assert!(
        due >= before + chrono::Duration::milliseconds(1490),
        "due at {due}"
    );
    assert!(
        store.claim(&claim_request(1)).await?.is_empty(),
        "leased before due"
    );

    let (job, attempts) = store.get_job(id).await?;
    assert_eq!(job.available_at, due);
    let decision = attempts[0].decision.as_ref().expect("a decision");
    assert!(decision.decision.retry);
    assert_eq!(decision.decision.delay, Duration::from_millis(1500));
    assert_eq!(attempts[0].rescheduled_at, Some(due));
    assert_eq!(
        attempts[0].error.as_ref().map(|e| e.message.as_str()),
        Some("boom")
    );
    Ok(())
}

async fn heartbeats_extend_and_releases_hand_back_without_charging(h: Harness) -> Result<()> {
    let store = h.store().await?;
    store.enqueue(vec![job("q", 0, json!(2))]).await?;
    let leased = claim_one(&store).await?;
    let id = leased.job.id;
    let answer = store
        .heartbeat(id, leased.lease_token, Duration::from_secs(600))
        .await?;
    let baton_broker::model::HeartbeatAnswer::Continue(until) = answer else {
        anyhow::bail!("expected the lease to continue, got {answer:?}");
    };
    assert!(until > chrono::Utc::now() + chrono::Duration::seconds(590));
    assert_eq!(
        store.release(id, leased.lease_token).await?,
        JobState::Queued
    );
    let (job, attempts) = store.get_job(id).await?;
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0));
    let outcome = attempts[0].outcome.map(|o| o.as_str());
    assert_eq!(outcome, Some("released"));
    let again = claim_one(&store).await?;
    assert_eq!(again.job.attempts, 1);
    Ok(())
}

async fn an_expired_lease_goes_through_the_retry_policy(h: Harness) -> Result<()> {
    let store = h.store().await?;
    let retry = json!({"max_attempts": 2, "initial_delay": 0, "jitter": false});
    store.enqueue(vec![job("q", 0, retry)]).await?;
    // A lease of zero length has expired by the next statement.
    let request = ClaimRequest {
        lease_timeout: Duration::ZERO,
        ..claim_request(1)
    };
    let leased = store.claim(&request).await?.remove(0);
    assert_eq!(store.expired(10).await?, vec![leased.job.id]);
    let reaped = store.reap(leased.job.id).await?.expect("reaped");
    assert_eq!(reaped.resolution.state, JobState::Queued);
    assert!(store.reap(leased.job.id).await?.is_none(), "reaped twice");
    let (_, attempts) = store.get_job(leased.job.id).await?;
    assert_eq!(
        attempts[0].outcome.map(|o| o.as_str()),
        Some("lease_expired")
    );
    let late = store
        .report(Call::Complete, leased.job.id, leased.lease_token, success())
        .await;
    assert!(matches!(late, Err(Error::StaleToken { .. })), "{late:?}");
    Ok(())
}

const PLAYBOOK: &str = "\
apiVersion: noetl.io/v1
kind: Playbook
metadata:
  name: two_steps
  path: tests/two_steps
workload:
  greeting: hello
workflow:
  - step: start
    next:
      - first
  - step: first
    type: noop
    retry:
      max_attempts: 2
      initial_delay: 0
      jitter: false
    next:
      - end
  - step: end
";

async fn a_playbook_run_records_its_events_in_order(h: Harness) -> Result<()> {
    let store = h.store().await?;
    let parsed = baton_dsl::parse_playbook(PLAYBOOK).map_err(|e| anyhow::anyhow!("{e}"))?;
    let playbook = store.register_playbook(&parsed, PLAYBOOK).await?;
    assert_eq!(
        store.register_playbook(&parsed, PLAYBOOK).await?.id,
        playbook.id
    );
    let execution = store.run(&playbook, None, "").await?;
    let request = ClaimRequest {
        queues: vec!["default".into()],
        ..claim_request(1)
    };
    let first = store.claim(&request).await?.remove(0);
    assert_eq!(first.context["workload"]["greeting"], json!("hello"));
    let id = first.job.id;
    store
        .report(Call::Fail, id, first.lease_token, failure())
        .await?;
    let second = store.claim(&request).await?.remove(0);
    store
        .report(Call::Complete, id, second.lease_token, success())
        .await?;

    let done = store.get_execution(execution.id).await?;
    assert_eq!(done.state, ExecutionState::Completed);
    let events = store.events(execution.id, 0, 100).await?;
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    use EventKind::*;
    assert_eq!(
        kinds,
        vec![
            ExecutionStarted,
            StepStarted,
            ActionStarted,
            ActionError,
            ActionRetry,
            ActionStarted,
            ActionCompleted,
            StepCompleted,
            ExecutionCompleted,
        ]
    );
    let attempts: Vec<Option<u32>> = events.iter().map(|e| e.attempt).collect();
    assert_eq!(
        attempts[2..7],
        [Some(1), Some(1), Some(1), Some(2), Some(2)]
    );
    assert_eq!(
        store.events(execution.id, events[4].id, 100).await?.len(),
        4
    );
    Ok(())
}

async fn commits_wake_lease_streams_and_event_watchers(h: Harness) -> Result<()> {
    let store = h.store().await?;
    let listening = store.listen().await?;
    let listener = tokio::spawn(listening);
    let mut jobs = store.subscribe_jobs();
    let mut events = store.subscribe_events();
    let enqueued = store.enqueue(vec![job("q", 0, json!(1))]).await?;
    let wake = tokio::time::timeout(Duration::from_secs(5), jobs.recv()).await??;
    let JobWake::Due { queue, at } = wake else {
        anyhow::bail!("expected a due job, got {wake:?}");
    };
    // Postgres notifies in milliseconds; stored times may be finer.
    let due_ms = enqueued[0].available_at.timestamp_millis();
    assert_eq!((queue.as_str(), at.timestamp_millis()), ("q", due_ms));

    let parsed = baton_dsl::parse_playbook(PLAYBOOK).map_err(|e| anyhow::anyhow!("{e}"))?;
    let playbook = store.register_playbook(&parsed, PLAYBOOK).await?;
    let execution = store.run(&playbook, None, "").await?;
    let woken = tokio::time::timeout(Duration::from_secs(5), events.recv()).await??;
    assert_eq!(woken, execution.id);
    listener.abort();
    Ok(())
}
