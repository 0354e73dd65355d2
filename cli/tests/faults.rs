//! Crashes in the middle of an attempt: nothing is lost.

#[macro_use]
mod support;

use anyhow::{Result, ensure};
use baton_proto::v1::{AttemptOutcome, ErrorKind, JobState};
use baton_testkit::Backend;
use baton_testkit::cluster::Options;
use serde_json::json;

use support::Session;

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
