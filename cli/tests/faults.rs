//! Crashes in the middle of an attempt: nothing is lost.
//!
//! Brokers restarting and the database going away are in `outages.rs`.

#[macro_use]
mod support;

use anyhow::{Result, ensure};
use baton_proto::v1::{AttemptOutcome, ErrorKind, JobState};
use baton_testkit::Backend;
use baton_testkit::cluster::Options;
use serde_json::json;

use support::Session;
use support::faults::{BATCH, FaultBatch};

const SLOW_STEP: &str = "apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: slow, path: e2e/slow}
workflow:
  - step: start
    type: noop
    sleep_ms: 1500
    retry: {max_attempts: 3, initial_delay: 0}
    next: [end]
  - step: end
";

/// A worker killed with SIGKILL mid-attempt: its lease expires, the
/// attempt is recorded as `lease_expired`, and another worker runs the job
/// to completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_is_killed_runs_again_on_another_worker() -> Result<()> {
    let options = Options {
        workers: 1,
        lease_timeout: "1s".to_owned(),
        ..Options::default()
    };
    let mut s = Session::start_with(Backend::Postgres, &options).await?;
    let path = s.register(SLOW_STEP).await?;

    let id = s.start_run(&path, json!({})).await?;
    s.wait_for_event(id, "action_started").await?;
    s.cluster.workers[0].kill().await?;
    s.cluster.add_worker()?;
    let ended = s.follow(id).await?;
    let (job, attempts) = s.job(id, "start").await?;

    ensure!(job.state() == JobState::Done, "{job:?}");
    let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome()).collect();
    ensure!(
        outcomes == [AttemptOutcome::LeaseExpired, AttemptOutcome::Succeeded],
        "{attempts:?}"
    );
    let expired = attempts[0].error.clone().unwrap_or_default();
    ensure!(expired.kind() == ErrorKind::LeaseExpired, "{expired:?}");
    ensure!(attempts[0].worker == "worker-1" && attempts[1].worker == "worker-2");
    ensure!(
        ended.named("lease_expired").len() == 1,
        "{:?}",
        ended.names()
    );
    Ok(())
}

/// SIGTERM lets the running attempt finish within the grace period, hands
/// nothing back, and the worker exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_attempt_finish_and_the_worker_exit_0() -> Result<()> {
    let mut s = Session::start(Backend::Postgres).await?;
    let path = s.register(SLOW_STEP).await?;

    let id = s.start_run(&path, json!({})).await?;
    s.wait_for_event(id, "action_started").await?;
    let pid = s.cluster.workers[0].pid().expect("running").to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await?;
    ensure!(sent.success(), "kill -TERM {pid}");
    let code = tokio::time::timeout(support::RUN_DEADLINE, s.cluster.workers[0].wait()).await??;
    let ended = s.follow(id).await?;
    let (job, attempts) = s.job(id, "start").await?;

    ensure!(code == Some(0), "worker exit code {code:?}");
    ensure!(
        job.state() == JobState::Done && attempts.len() == 1,
        "{attempts:?}"
    );
    ensure!(attempts[0].outcome() == AttemptOutcome::Succeeded);
    ensure!(
        ended.names().last() == Some(&"execution_completed"),
        "{:?}",
        ended.names()
    );
    Ok(())
}

/// Workers killed with SIGKILL one after the other while a batch of
/// randomly failing jobs runs, each replaced: the attempts they were
/// running expire and run again elsewhere, and every job still ends done
/// or dead with its attempts and events in agreement and no job leased
/// twice at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_ends_once_per_job_when_its_workers_are_killed_mid_attempt() -> Result<()> {
    let options = Options {
        workers: 2,
        lease_timeout: "2s".to_owned(),
        ..Options::default()
    };
    let mut s = Session::start_with(Backend::Postgres, &options).await?;
    let batch = FaultBatch::start(&s, BATCH).await?;

    for (victim, after) in [(0, 10), (1, 30)] {
        batch.wait_for_first(after).await?;
        s.cluster.workers[victim].kill().await?;
        let running = batch.running().await?;
        ensure!(
            running > 0,
            "the batch ended before worker {victim} was killed"
        );
        s.cluster.add_worker()?;
    }
    let counts = batch.finish().await?;

    let expired = counts.get("attempts lease_expired");
    ensure!(expired > 0, "no attempt was cut short by a kill:\n{counts}");
    Ok(())
}
