//! The measured workloads, each on a deployment of its own: throughput,
//! executions, wake-up latency, retries at zero and at 100 ms delay, and
//! the broker's memory with many jobs leased at once.
//!
//! Bulk workloads are enqueued with a `run_at` a little ahead, while the
//! workers already wait on their lease streams; the clock starts when the
//! jobs fall due and stops when none is queued or leased. That is the
//! peers' "enqueue, then start the workers" without counting process
//! start-up.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail, ensure};
use baton_proto::convert;
use baton_proto::v1::{
    EnqueueJobsRequest, GetJobRequest, JobSpec, RegisterPlaybookRequest, RunExecutionRequest,
};
use futures::StreamExt;
use rand::Rng;
use serde_json::{Value, json};

use crate::deploy::{Db, Deployment, StoreKind};
use crate::stats::{Window, percentile};
use crate::wake::WakeServer;

/// Jobs per Enqueue call.
const ENQUEUE_CHUNK: u32 = 5_000;
/// How far ahead bulk jobs are due: room to enqueue and checkpoint.
const DUE_AHEAD: Duration = Duration::from_secs(4);
/// The longest any workload may take.
const DEADLINE: Duration = Duration::from_secs(600);

/// What every workload needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// The `baton` binary.
    pub(crate) binary: std::path::PathBuf,
    /// The store deployments run on.
    pub(crate) store: StoreKind,
    /// Smaller counts, for a quick look.
    pub(crate) quick: bool,
    /// Worker processes per deployment.
    pub(crate) workers: u32,
    /// Slots per worker process.
    pub(crate) concurrency: u32,
}

impl Setup {
    fn count(&self, full: u32, quick: u32) -> u32 {
        if self.quick { quick } else { full }
    }

    async fn deploy(&self, name: &str) -> Result<Deployment> {
        let mut deployment = Deployment::start(&self.binary, &self.store, name).await?;
        deployment.add_workers(self.workers, self.concurrency)?;
        Ok(deployment)
    }

    fn postmaster(&self) -> Option<u32> {
        match self.store {
            StoreKind::Postgres { postmaster, .. } => Some(postmaster),
            StoreKind::Sqlite => None,
        }
    }
}

/// N no-op jobs drained through the full path.
pub(crate) async fn throughput(setup: &Setup) -> Result<Value> {
    let n = setup.count(20_000, 2_000);
    let mut d = setup.deploy("throughput").await?;
    let (due, enqueue_s) = enqueue_due(&d, n, json!({}), json!(false)).await?;
    let window = drain(&mut d, setup, due).await?;
    let done =
        d.db.scalar("SELECT count(*) FROM jobs WHERE state = 'done'")
            .await?;
    let attempts = d.db.scalar("SELECT count(*) FROM attempts").await?;
    ensure!(
        done == i64::from(n) && attempts == i64::from(n),
        "{done} done, {attempts} attempts of {n}"
    );
    let mut out = window.figures(n);
    out["jobs_per_s"] = json!(f64::from(n) / window.secs);
    out["enqueue_jobs_per_s"] = json!(f64::from(n) / enqueue_s);
    out["broker_rss_mb"] = json!(d.broker.peak_rss_mb());
    Ok(out)
}

/// One-step playbooks run through `Executions.Run`, many in flight.
pub(crate) async fn executions(setup: &Setup) -> Result<Value> {
    const IN_FLIGHT: usize = 64;
    let n = setup.count(2_000, 500);
    let d = setup.deploy("executions").await?;
    let path = register_one_step(&d).await?;
    let started = Instant::now();
    let runs = (0..n).map(|_| {
        let mut client = d.executions();
        let path = path.clone();
        async move { client.run(run_request(path)).await.map(|_| ()) }
    });
    let results: Vec<_> = futures::stream::iter(runs)
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    let running =
        "SELECT count(*) FROM (SELECT 1 FROM executions WHERE state = 'running' LIMIT 1) s";
    wait_zero(&d.db, running).await?;
    let secs = started.elapsed().as_secs_f64();
    let completed =
        d.db.scalar("SELECT count(*) FROM executions WHERE state = 'completed'")
            .await?;
    ensure!(
        completed == i64::from(n),
        "{completed} of {n} executions completed"
    );
    Ok(json!({"n": n, "secs": secs, "executions_per_s": f64::from(n) / secs}))
}

/// Single jobs into an idle worker: Enqueue call start to the task's HTTP
/// request arriving, on one clock.
pub(crate) async fn wake(setup: &Setup) -> Result<Value> {
    let n = setup.count(50, 20);
    let d = setup.deploy("wake").await?;
    let server = WakeServer::start().await?;
    wake_once(&d, &server, "prime").await?;
    let (mut lats, mut calls) = (Vec::new(), Vec::new());
    for i in 0..n {
        // An idle gap at a random phase against any timer the system has.
        let gap = rand::rng().random_range(300..700);
        tokio::time::sleep(Duration::from_millis(gap)).await;
        let (lat, call) = wake_once(&d, &server, &i.to_string()).await?;
        lats.push(lat);
        calls.push(call);
    }
    Ok(json!({
        "n": n,
        "wake_ms_p50": percentile(&lats, 50),
        "wake_ms_p99": percentile(&lats, 99),
        "wake_ms_max": percentile(&lats, 100),
        "enqueue_call_ms_p50": percentile(&calls, 50),
        "read_call_ms_p50": read_call_ms(&d).await?,
    }))
}

/// The median time of a call that reads one job, against which an
/// Enqueue's time can be read.
async fn read_call_ms(d: &Deployment) -> Result<f64> {
    let mut jobs = d.jobs();
    let mut times = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        jobs.get(GetJobRequest { id: 1 }).await?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(percentile(&times, 50))
}

/// Enqueues one job calling `server`; returns the milliseconds from the
/// call's start to the job's request arriving, and to the call's answer.
async fn wake_once(d: &Deployment, server: &WakeServer, key: &str) -> Result<(f64, f64)> {
    let (url, arrived) = server.expect(key);
    let spec = JobSpec {
        kind: "http".to_owned(),
        payload: Some(convert::to_struct_value(&json!({"url": url}))),
        ..JobSpec::default()
    };
    let mut jobs = d.jobs();
    let t0 = Instant::now();
    jobs.enqueue(EnqueueJobsRequest { jobs: vec![spec] })
        .await?;
    let answered = t0.elapsed();
    let arrived = tokio::time::timeout(Duration::from_secs(10), arrived).await??;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok((ms(arrived.duration_since(t0)), ms(answered)))
}

/// Jobs that fail on runs 1 and 2 and succeed on run 3, retried with no
/// delay: the total time, and a check that each ran exactly 3 times.
pub(crate) async fn retry_zero(setup: &Setup) -> Result<Value> {
    let n: u32 = 2_000;
    let mut d = setup.deploy("retry_zero").await?;
    let retry = json!({"max_attempts": 3, "initial_delay": 0, "jitter": false});
    let (due, _) = enqueue_due(&d, n, json!({"fail": 2}), retry).await?;
    let window = drain(&mut d, setup, due).await?;
    check_three_runs(&d.db, n).await?;
    let mut out = window.figures(n);
    out["retry_total_s"] = json!(window.secs);
    out["retry_exactly_3x"] = json!(true);
    Ok(out)
}

/// The same jobs retried after 100 ms: how late each retry started
/// against the time it was rescheduled to.
pub(crate) async fn retry_timing(setup: &Setup) -> Result<Value> {
    let n: u32 = 2_000;
    let mut d = setup.deploy("retry_timing").await?;
    let retry = json!({"max_attempts": 3, "initial_delay": 0.1,
        "backoff_multiplier": 1.0, "jitter": false});
    let (due, _) = enqueue_due(&d, n, json!({"fail": 2}), retry).await?;
    drain(&mut d, setup, due).await?;
    check_three_runs(&d.db, n).await?;
    let errors = d.db.floats(lateness_sql(&d.db)).await?;
    ensure!(
        errors.len() == 2 * n as usize,
        "{} retries timed of {}",
        errors.len(),
        2 * n
    );
    Ok(json!({
        "retries": errors.len(),
        "retry_error_ms_p50": percentile(&errors, 50),
        "retry_error_ms_p99": percentile(&errors, 99),
        "retry_error_ms_min": percentile(&errors, 0),
    }))
}

fn lateness_sql(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => {
            "SELECT (extract(epoch FROM b.started_at - a.rescheduled_at) * 1000)::float8
             FROM attempts a JOIN attempts b ON b.job_id = a.job_id AND b.number = a.number + 1"
        }
        Db::Sqlite(_) => {
            "SELECT CAST(b.started_at - a.rescheduled_at AS REAL)
             FROM attempts a JOIN attempts b ON b.job_id = a.job_id AND b.number = a.number + 1"
        }
    }
}

/// The broker's memory while 10,000 jobs are leased at once.
pub(crate) async fn leased_memory(setup: &Setup) -> Result<Value> {
    let n: u32 = 10_000;
    let mut d = Deployment::start(&setup.binary, &setup.store, "memory").await?;
    d.add_workers(2, 5_000)?;
    let (due, _) = enqueue_due(&d, n, json!({"sleep_ms": 5_000}), json!(false)).await?;
    sleep_until(due).await;
    let leased = "SELECT count(*) FROM jobs WHERE state <> 'leased'";
    wait_zero(&d.db, leased).await?;
    let rss_mb = d.broker.rss_mb();
    let queued = "SELECT count(*) FROM jobs WHERE state <> 'done'";
    wait_zero(&d.db, queued).await?;
    Ok(json!({"leased": n, "rss_mb": rss_mb, "peak_rss_mb": d.broker.peak_rss_mb()}))
}

async fn check_three_runs(db: &Db, n: u32) -> Result<()> {
    let three = db
        .scalar("SELECT count(*) FROM jobs WHERE state = 'done' AND attempts = 3")
        .await?;
    let attempts = db.scalar("SELECT count(*) FROM attempts").await?;
    ensure!(
        three == i64::from(n),
        "{three} of {n} jobs ran exactly 3 times"
    );
    ensure!(
        attempts == 3 * i64::from(n),
        "{attempts} attempts recorded for {n} jobs"
    );
    Ok(())
}

/// Enqueues `n` noop jobs due [`DUE_AHEAD`] from now; returns when they
/// fall due and how long the enqueue took.
async fn enqueue_due(
    d: &Deployment,
    n: u32,
    payload: Value,
    retry: Value,
) -> Result<(SystemTime, f64)> {
    let due = SystemTime::now() + DUE_AHEAD;
    let spec = JobSpec {
        kind: "noop".to_owned(),
        payload: Some(convert::to_struct_value(&payload)),
        retry: Some(convert::to_value(&retry)),
        run_at: Some(prost_types::Timestamp::from(due)),
        ..JobSpec::default()
    };
    let started = Instant::now();
    let mut jobs = d.jobs();
    for chunk in 0..n.div_ceil(ENQUEUE_CHUNK) {
        let count = ENQUEUE_CHUNK.min(n - chunk * ENQUEUE_CHUNK);
        let request = EnqueueJobsRequest {
            jobs: vec![spec.clone(); count as usize],
        };
        jobs.enqueue(request).await?;
    }
    let enqueue_s = started.elapsed().as_secs_f64();
    d.db.checkpoint().await?;
    if SystemTime::now() >= due {
        bail!("enqueueing {n} jobs took {enqueue_s:.1} s, past their due time");
    }
    Ok((due, enqueue_s))
}

/// Waits for `due`, then measures until no job is queued or leased.
async fn drain(d: &mut Deployment, setup: &Setup, due: SystemTime) -> Result<Window> {
    sleep_until(due).await;
    d.check_running()?;
    let start = Window::open(d, setup.postmaster());
    // One probe per state, each answered by the partial index holding it.
    let pending = "SELECT
        (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE state = 'queued' LIMIT 1) q)
        + (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE state = 'leased' LIMIT 1) l)";
    wait_zero(&d.db, pending).await?;
    Ok(start.close(d, setup.postmaster()))
}

async fn sleep_until(at: SystemTime) {
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(wait).await;
}

/// Waits until `sql` counts zero, reading every 2 ms: the store is the
/// only place that knows when the last job ended.
async fn wait_zero(db: &Db, sql: &'static str) -> Result<()> {
    let started = Instant::now();
    while db.scalar(sql).await? != 0 {
        if started.elapsed() > DEADLINE {
            bail!("still not zero after {DEADLINE:?}: {sql}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

async fn register_one_step(d: &Deployment) -> Result<String> {
    const PLAYBOOK: &str = "apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: one-step, path: bench/one_step}
workflow:
  - step: start
    type: noop
    next: [end]
  - step: end
";
    let request = RegisterPlaybookRequest {
        yaml: PLAYBOOK.to_owned(),
    };
    d.playbooks().register(request).await?;
    Ok("bench/one_step".to_owned())
}

fn run_request(path: String) -> RunExecutionRequest {
    RunExecutionRequest {
        path,
        ..RunExecutionRequest::default()
    }
}
