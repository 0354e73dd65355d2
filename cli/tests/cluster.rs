//! What the Helm chart deploys, as processes on one machine: brokers
//! sharing one Postgres database, workers spread across them, and the
//! metrics each serves. The counters are checked against the database.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use baton_proto::convert::{to_struct_value, to_value};
use baton_proto::v1;
use baton_proto::v1::jobs_client::JobsClient;
use baton_testkit::batch::Draw;
use baton_testkit::cluster::{Options, metrics_addr};
use baton_testkit::sqlx::{self, PgPool};
use baton_testkit::{Backend, Cluster, Counts, Scrape};
use serde_json::json;

/// Bare jobs the shared-database test runs.
const JOBS: usize = 3000;
/// Jobs per `Jobs.Enqueue` call; batches go to the brokers in turn.
const BATCH: usize = 250;
/// How long every job may take to become final.
const DEADLINE: Duration = Duration::from_secs(240);
/// Pause between two readings of the counters while waiting.
const POLL: Duration = Duration::from_millis(100);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_baton"))
}

/// A noop job that fails its first `fails` attempts, of three at most.
fn noop(fails: u64) -> v1::JobSpec {
    v1::JobSpec {
        kind: "noop".to_owned(),
        payload: Some(to_struct_value(&json!({ "fail": fails }))),
        retry: Some(to_value(&json!({"max_attempts": 3, "initial_delay": 0}))),
        ..v1::JobSpec::default()
    }
}

async fn enqueue(url: &str, jobs: Vec<v1::JobSpec>) -> Result<()> {
    let mut client = JobsClient::connect(url.to_owned()).await?;
    let reply = client.enqueue(v1::EnqueueJobsRequest { jobs }).await?;
    ensure!(!reply.into_inner().jobs.is_empty(), "nothing enqueued");
    Ok(())
}

async fn scrape_brokers(cluster: &Cluster) -> Result<Vec<Scrape>> {
    let mut scrapes = Vec::with_capacity(cluster.brokers.len());
    for broker in &cluster.brokers {
        scrapes.push(broker.scrape().await?);
    }
    Ok(scrapes)
}

/// Waits until the brokers together have finished `total` jobs (done or
/// dead) and returns their last scrapes. Bare jobs have no event stream,
/// so this reads the counters, briefly and boundedly.
async fn wait_until_final(cluster: &Cluster, total: u64) -> Result<Vec<Scrape>> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let scrapes = scrape_brokers(cluster).await?;
        let finished =
            sum(&scrapes, "baton_completions_total") + sum(&scrapes, "baton_dead_jobs_total");
        if finished >= total {
            return Ok(scrapes);
        }
        ensure!(
            Instant::now() < deadline,
            "{finished} of {total} jobs final after {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn sum(scrapes: &[Scrape], series: &str) -> u64 {
    scrapes.iter().map(|s| s.count(series)).sum()
}

async fn count(pool: &PgPool, sql: &'static str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
    Ok(u64::try_from(n)?)
}

/// Without faults, every job is final as its failure count says: dead
/// after three failed attempts, otherwise done on the attempt after its
/// last failure.
async fn check_jobs(pool: &PgPool) -> Result<()> {
    let wrong = count(
        pool,
        "SELECT count(*) FROM jobs WHERE NOT (
            (state = 'dead' AND (payload->>'fail')::int >= 3 AND attempts = 3)
            OR (state = 'done' AND (payload->>'fail')::int < 3
                AND attempts = (payload->>'fail')::int + 1))",
    )
    .await?;
    ensure!(
        wrong == 0,
        "{wrong} jobs ended otherwise than their payload says"
    );
    let failures = count(
        pool,
        "SELECT count(*) FROM jobs j WHERE least((j.payload->>'fail')::int, 3) <>
            (SELECT count(*) FROM attempts a WHERE a.job_id = j.id AND a.outcome = 'failed')",
    )
    .await?;
    ensure!(failures == 0, "{failures} jobs failed otherwise than asked");
    let total = count(pool, "SELECT count(*) FROM jobs").await?;
    ensure!(total == JOBS as u64, "{total} jobs stored, not {JOBS}");
    Ok(())
}

/// What the database holds, to compare the counters with.
#[derive(Debug)]
struct Stored {
    attempts: u64,
    failed: u64,
    done: u64,
    dead: u64,
}

async fn stored(pool: &PgPool) -> Result<Stored> {
    Ok(Stored {
        attempts: count(pool, "SELECT count(*) FROM attempts").await?,
        failed: count(
            pool,
            "SELECT count(*) FROM attempts WHERE outcome = 'failed'",
        )
        .await?,
        done: count(pool, "SELECT count(*) FROM jobs WHERE state = 'done'").await?,
        dead: count(pool, "SELECT count(*) FROM jobs WHERE state = 'dead'").await?,
    })
}

/// Summed over brokers, each counter equals what the database recorded.
fn check_broker_counters(scrapes: &[Scrape], db: &Stored) -> Result<()> {
    let expected = [
        ("baton_leases_total", db.attempts),
        ("baton_completions_total", db.done),
        ("baton_dead_jobs_total", db.dead),
        ("baton_retries_total", db.failed - db.dead),
        (
            r#"baton_failures_total{reason="default"}"#,
            db.failed - db.dead,
        ),
        (
            r#"baton_failures_total{reason="attempts_exhausted"}"#,
            db.dead,
        ),
        ("baton_lease_to_complete_seconds_count", db.done),
    ];
    for (series, value) in expected {
        let counted = sum(scrapes, series);
        ensure!(
            counted == value,
            "{series}: brokers counted {counted}, stored {value}"
        );
    }
    Ok(())
}

/// Summed over workers, attempts finished by outcome equal the rows.
async fn check_worker_counters(cluster: &mut Cluster, db: &Stored) -> Result<()> {
    let mut scrapes = Vec::new();
    for worker in &mut cluster.workers {
        scrapes.push(Scrape::get(metrics_addr(worker).await?).await?);
    }
    let expected = [
        (
            r#"baton_worker_attempts_started_total{kind="noop"}"#,
            db.attempts,
        ),
        (
            r#"baton_worker_attempts_finished_total{outcome="succeeded"}"#,
            db.done,
        ),
        (
            r#"baton_worker_attempts_finished_total{outcome="failed"}"#,
            db.failed,
        ),
        ("baton_worker_attempts_in_flight", 0),
    ];
    for (series, value) in expected {
        let counted = sum(&scrapes, series);
        ensure!(
            counted == value,
            "{series}: workers counted {counted}, stored {value}"
        );
    }
    Ok(())
}

/// Three brokers on one database with four workers spread 2/1/1, jobs
/// enqueued through all of them: every job ends as its payload says,
/// exactly once, and every broker leased some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_sharing_one_database_finish_every_job_once_and_all_lease() -> Result<()> {
    let mut cluster = Cluster::start_shared(binary(), &[2, 1, 1], &Options::default()).await?;
    let fails = Draw::from_clock().failure_counts(JOBS);
    let started = Instant::now();
    for (n, batch) in fails.chunks(BATCH).enumerate() {
        let broker = &cluster.brokers[n % cluster.brokers.len()];
        enqueue(&broker.url(), batch.iter().map(|f| noop(*f)).collect()).await?;
    }
    let scrapes = wait_until_final(&cluster, JOBS as u64).await?;
    let elapsed = started.elapsed();

    let pool = PgPool::connect(&cluster.database_url).await?;
    check_jobs(&pool).await?;
    // The attempt rows agree with the counters, no job ran twice at once.
    Counts::read(&pool).await?.ensure_hold()?;
    let db = stored(&pool).await?;
    check_broker_counters(&scrapes, &db)?;
    check_worker_counters(&mut cluster, &db).await?;
    let leases: Vec<u64> = scrapes
        .iter()
        .map(|s| s.count("baton_leases_total"))
        .collect();
    ensure!(
        leases.iter().all(|n| *n > 0),
        "a broker leased nothing: {leases:?}"
    );
    eprintln!("{JOBS} jobs final in {elapsed:?}: {db:?}, leases per broker {leases:?}");
    Ok(())
}

/// One job done at once, one done after a retry, one dead after three
/// failures, and one not due for an hour: the broker's counters say so
/// exactly.
async fn counters_match_a_known_workload(backend: Backend) -> Result<()> {
    let cluster = Cluster::start(backend, binary(), &Options::default()).await?;
    let in_an_hour = SystemTime::now().duration_since(UNIX_EPOCH)? + Duration::from_secs(3600);
    let later = v1::JobSpec {
        queue: "later".to_owned(),
        run_at: Some(prost_types::Timestamp {
            seconds: i64::try_from(in_an_hour.as_secs())?,
            nanos: 0,
        }),
        ..noop(0)
    };
    enqueue(&cluster.url(), vec![noop(0), noop(1), noop(3), later]).await?;
    let scrapes = wait_until_final(&cluster, 3).await?;

    let expected = [
        ("baton_leases_total", 6),
        ("baton_completions_total", 2),
        ("baton_retries_total", 3),
        ("baton_dead_jobs_total", 1),
        (r#"baton_failures_total{reason="default"}"#, 3),
        (r#"baton_failures_total{reason="attempts_exhausted"}"#, 1),
        ("baton_lease_expirations_total", 0),
        ("baton_lease_to_complete_seconds_count", 2),
        (r#"baton_queue_depth{queue="later",state="queued"}"#, 1),
    ];
    for (series, value) in expected {
        let counted = scrapes[0].count(series);
        ensure!(counted == value, "{series} is {counted}, not {value}");
    }
    let reasons = scrapes[0].series("baton_failures_total");
    ensure!(reasons.len() == 2, "{reasons:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_counters_match_a_known_workload_on_postgres() -> Result<()> {
    counters_match_a_known_workload(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_counters_match_a_known_workload_on_sqlite() -> Result<()> {
    counters_match_a_known_workload(Backend::Dev).await
}
