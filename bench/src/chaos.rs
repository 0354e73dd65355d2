//! `baton-chaos`, the at-scale fault run that `bench/chaos` drives: a
//! batch of randomly failing work (half executions of one-step playbooks,
//! half bare jobs) on a Postgres deployment of real processes, while every
//! few seconds a random worker is killed with SIGKILL and replaced or, one
//! time in three, frozen with SIGSTOP past its leases and then resumed, so
//! that it reports late with stale tokens. Once every item has ended it
//! prints the counts of `testkit/sql/invariants.sql`, the same checks the
//! fault tests run, and a summary line; it exits non-zero when an
//! invariant breaks, when the work does not end in time, or when the
//! faults proved nothing (no attempt cut short by a kill, no late report
//! refused after a pause).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use baton_testkit::batch::{self, Draw};
use baton_testkit::cluster::Options;
use baton_testkit::process::Process;
use baton_testkit::{Backend, Cluster, Counts};
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use sqlx::PgPool;
use tokio::time::MissedTickBehavior;
use tonic::transport::Channel;

/// Work items started per round: executions and bare jobs alternate in
/// rounds this size, so both kinds are in flight when workers die.
const ROUND: usize = 200;

/// Rounds being started at once.
const ROUNDS_AT_ONCE: usize = 8;

/// How long a killed process's last log lines may take to be written.
const LOG_DEADLINE: Duration = Duration::from_secs(10);

/// How much longer than a lease a paused worker stays frozen.
const PAUSE_PAST_LEASE: Duration = Duration::from_secs(1);

/// How often the wait for bare jobs reads the store.
const POLL: Duration = Duration::from_millis(200);

/// Jobs (or executions) not yet ended, read from the store.
const UNFINISHED: &str = "SELECT (SELECT count(*) FROM jobs WHERE state NOT IN ('done', 'dead')) \
     + (SELECT count(*) FROM executions WHERE state = 'running')";

/// Kills whose worker had an attempt cut short: each worker is killed at
/// most once, so its name on a `lease_expired` attempt stands for a kill.
const KILLS_MID_ATTEMPT: &str =
    "SELECT count(DISTINCT worker) FROM attempts WHERE outcome = 'lease_expired'";

/// Runs randomly failing work while workers are killed, then checks what
/// the store holds.
#[derive(Debug, Parser)]
struct Args {
    /// The `baton` binary to run.
    #[arg(long)]
    baton: PathBuf,
    /// Work items: half executions, half bare jobs; one job each.
    #[arg(long, default_value_t = 10_000)]
    jobs: usize,
    /// Worker processes alive at any time.
    #[arg(long, default_value_t = 4)]
    workers: u32,
    /// Seconds between two kills.
    #[arg(long, default_value_t = 3.0)]
    kill_every: f64,
    /// The broker's `--lease-timeout`: how long a killed worker's attempt
    /// holds its job.
    #[arg(long, default_value = "2s")]
    lease_timeout: String,
    /// Seeds the failure counts and the choice of victims; from the clock
    /// when unset (and printed, so a run can be replayed).
    #[arg(long)]
    seed: Option<u64>,
    /// How long each attempt sleeps, so that kills land mid-attempt.
    #[arg(long, default_value_t = 20)]
    sleep_ms: u64,
    /// Seconds the whole batch may take to end.
    #[arg(long, default_value_t = 1200)]
    deadline: u64,
    /// A directory to copy the processes' logs into at the end (the
    /// deployment's own directory is removed when the run ends).
    #[arg(long)]
    logs: Option<PathBuf>,
}

/// What the fault loop did.
#[derive(Debug, Default)]
struct Kills {
    /// Workers killed with SIGKILL (each replaced by a new one).
    count: u32,
    /// Workers paused with SIGSTOP past their leases, then resumed.
    pauses: u32,
    /// When each paused worker resumes.
    resumes: Vec<Instant>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.kill_every > 0.0,
        "--kill-every must be positive seconds"
    );
    ensure!(args.workers > 0, "--workers must be at least 1");
    let started = Instant::now();
    let options = Options {
        workers: args.workers,
        lease_timeout: args.lease_timeout.clone(),
        admin_url: None,
    };
    // Processes start in a directory of their own: the path must not be
    // relative.
    let binary = std::fs::canonicalize(&args.baton)
        .with_context(|| format!("no baton binary at {}", args.baton.display()))?;
    let mut cluster = Cluster::start(Backend::Postgres, &binary, &options).await?;
    eprintln!(
        "chaos: broker at {}, {} workers, processes in {}",
        cluster.url(),
        args.workers,
        cluster.dir().display()
    );

    let outcome = run(&args, &mut cluster, started).await;
    if let Some(logs) = &args.logs {
        // The run's own outcome matters more than its logs: only warn.
        if let Err(error) = keep_logs(&mut cluster, logs).await {
            eprintln!("chaos: could not keep the logs: {error:#}");
        }
    }
    outcome
}

/// The run proper, once the deployment is up.
async fn run(args: &Args, cluster: &mut Cluster, started: Instant) -> Result<()> {
    let channel = Channel::from_shared(cluster.url())?.connect().await?;
    let pool = PgPool::connect(&cluster.database_url).await?;
    let mut draw = match args.seed {
        Some(seed) => {
            eprintln!("failure counts seeded with {seed}");
            Draw::new(seed)
        }
        None => Draw::from_clock(),
    };
    let fails = draw.failure_counts(args.jobs);
    // The victims come from the same sequence, after the failure counts,
    // so one seed replays both.
    let mut victims = draw;
    let deadline = Duration::from_secs(args.deadline);

    let work = enqueue_and_wait(&channel, &pool, &fails, args.sleep_ms, deadline);
    let mut kills = Kills::default();
    let killing = kill_loop(args, cluster, &pool, &mut victims, &mut kills, started);
    // The kill loop never ends by itself: the batch ending (or failing)
    // stops it.
    let ended = tokio::select! {
        ended = work => ended,
        failed = killing => {
            let Err(error) = failed;
            Err(error.context("killing workers"))
        }
    };
    let ended_at = Instant::now();
    let wall = ended_at - started;
    if let Err(error) = &ended {
        eprintln!("chaos: the batch did not end: {error:#}");
    }

    // Read even when the batch did not end: the counts say what is left.
    let counts = Counts::read(&pool).await?;
    let mid_attempt: i64 = sqlx::query_scalar(KILLS_MID_ATTEMPT)
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    let expired = counts.get("attempts lease_expired");
    println!("{counts}");
    println!(
        "chaos: {} jobs ({} executions, {} bare), {} workers, faults every {}s: {} kills \
         ({mid_attempt} cut an attempt short), {} pauses, {expired} lease_expired attempts, \
         {} fenced calls, lease timeout {}, wall {:.1}s",
        counts.get("jobs"),
        counts.get("executions"),
        counts.get("jobs") - counts.get("executions"),
        args.workers,
        args.kill_every,
        kills.count,
        kills.pauses,
        counts.get("fenced calls"),
        args.lease_timeout,
        wall.as_secs_f64(),
    );

    ended?;
    counts.ensure_hold()?;
    if expired == 0 {
        bail!(
            "no kill cut an attempt short ({} kills): nothing was proved about crashes",
            kills.count
        );
    }
    // A worker still frozen when the work ended never got to report late.
    let resumed_in_time = kills.resumes.iter().filter(|at| **at <= ended_at).count();
    if resumed_in_time > 0 && counts.get("fenced calls") == 0 {
        bail!(
            "no paused worker reported late ({resumed_in_time} resumed before the work ended): \
             nothing was proved about stale writes"
        );
    }
    Ok(())
}

/// Starts the batch in rounds of executions and bare jobs, then waits until
/// every item has ended; fails after `deadline`.
async fn enqueue_and_wait(
    channel: &Channel,
    pool: &PgPool,
    fails: &[u64],
    sleep_ms: u64,
    deadline: Duration,
) -> Result<()> {
    let begun = Instant::now();
    let paths = batch::register(channel, sleep_ms).await?;
    let paths = &paths;
    // Executions start one call each: rounds run side by side so that the
    // batch is started faster than the workers drain it, and a backlog is
    // in flight when workers die.
    let rounds: Vec<Vec<i64>> = stream::iter(fails.chunks(ROUND))
        .map(|round| async move {
            let (runs, bare) = round.split_at(round.len() / 2);
            let ids = batch::run_executions(channel, paths, runs).await?;
            batch::enqueue_jobs(channel, bare, sleep_ms).await?;
            Ok::<_, anyhow::Error>(ids)
        })
        .buffered(ROUNDS_AT_ONCE)
        .try_collect()
        .await?;
    let executions = rounds.concat();
    eprintln!(
        "chaos: {} items started in {:.1}s",
        fails.len(),
        begun.elapsed().as_secs_f64()
    );

    let left = deadline.saturating_sub(begun.elapsed());
    batch::wait_until_ended(channel, &executions, left).await?;
    // Executions have their own end to follow; bare jobs only their state.
    loop {
        let unfinished: i64 = sqlx::query_scalar(UNFINISHED).fetch_one(pool).await?;
        if unfinished == 0 {
            return Ok(());
        }
        if begun.elapsed() >= deadline {
            bail!("{unfinished} jobs have not ended within {deadline:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every `--kill-every` seconds kills a random live worker with SIGKILL
/// and starts a replacement, logging the progress of the batch; returns
/// only on failure.
async fn kill_loop(
    args: &Args,
    cluster: &mut Cluster,
    pool: &PgPool,
    victims: &mut Draw,
    kills: &mut Kills,
    started: Instant,
) -> Result<Infallible> {
    // Indexes into `cluster.workers` of the workers still alive.
    let mut live: Vec<usize> = (0..cluster.workers.len()).collect();
    let mut every = tokio::time::interval(Duration::from_secs_f64(args.kill_every));
    // A kill that took long delays the next one rather than doubling it.
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first tick is immediate: skip it, the workers have just started.
    every.tick().await;
    // Paused workers and when they resume: not victims until then, so a
    // paused worker lives to send its late reports.
    let mut paused: Vec<(usize, Instant)> = Vec::new();
    let pause = humantime::parse_duration(&args.lease_timeout)? + PAUSE_PAST_LEASE;
    loop {
        every.tick().await;
        let now = Instant::now();
        live.extend(
            paused
                .iter()
                .filter(|(_, until)| *until <= now)
                .map(|p| p.0),
        );
        paused.retain(|(_, until)| *until > now);
        if live.is_empty() {
            continue;
        }
        let pick = victims.below(u64::try_from(live.len())?);
        let victim = live.swap_remove(usize::try_from(pick)?);
        // Every third fault is a pause: the worker outlives its leases and
        // then reports as if nothing happened, which the fence must refuse.
        let what = if (kills.count + kills.pauses) % 3 == 2 {
            pause_for(&cluster.workers[victim], pause)?;
            paused.push((victim, now + pause));
            kills.pauses += 1;
            kills.resumes.push(now + pause);
            format!("worker-{} paused for {pause:?}", victim + 1)
        } else {
            cluster.workers[victim].kill().await?;
            cluster.add_worker()?;
            live.push(cluster.workers.len() - 1);
            kills.count += 1;
            let started = cluster.workers.len();
            format!("worker-{} killed, worker-{started} started", victim + 1)
        };
        let unfinished: i64 = sqlx::query_scalar(UNFINISHED).fetch_one(pool).await?;
        eprintln!(
            "chaos: {:>6.1}s  fault {:>3}: {what}; {unfinished} jobs and executions unfinished",
            started.elapsed().as_secs_f64(),
            kills.count + kills.pauses,
        );
    }
}

/// Stops `worker` with SIGSTOP and resumes it with SIGCONT after `pause`,
/// without waiting: a process frozen past its leases, as a long garbage
/// collection or a partition would leave it.
fn pause_for(worker: &Process, pause: Duration) -> Result<()> {
    let pid = worker.pid().context("the paused worker has exited")?;
    signal("-STOP", pid)?;
    tokio::spawn(async move {
        tokio::time::sleep(pause).await;
        if let Err(error) = signal("-CONT", pid) {
            eprintln!("chaos: could not resume worker {pid}: {error:#}");
        }
    });
    Ok(())
}

fn signal(which: &str, pid: u32) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill {which} {pid} failed: {status}");
    Ok(())
}

/// Stops every process (so its log is complete) and copies the logs of the
/// deployment's directory into `to`.
async fn keep_logs(cluster: &mut Cluster, to: &Path) -> Result<()> {
    let processes = cluster.workers.iter_mut();
    let processes = processes.chain(cluster.brokers.iter_mut().map(|b| &mut b.process));
    for process in processes {
        process.kill().await?;
        process.log_finished(LOG_DEADLINE).await?;
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(cluster.dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "log") {
            let name = path.file_name().context("a log has a name")?;
            std::fs::copy(&path, to.join(name))?;
        }
    }
    eprintln!("chaos: process logs copied to {}", to.display());
    Ok(())
}
