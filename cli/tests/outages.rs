//! The broker and the database going away while work runs: a broker
//! killed and started again, Postgres restarted as after a crash, and a
//! database outage the broker rides out. Afterwards every job is done or
//! dead, its attempts match its counter and its events, no stale report
//! was accepted and no job was leased twice at once.
//!
//! Tests that stop Postgres run their own server ([`PgServer`]): stopping
//! the one `scripts/test` shares would break every test beside them.

mod support;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use baton_proto::v1;
use baton_proto::v1::jobs_client::JobsClient;
use baton_proto::v1::policies_client::PoliciesClient;
use baton_testkit::cluster::{Options, metrics_addr};
use baton_testkit::sqlx::{self, PgPool};
use baton_testkit::{Backend, PgServer, Scrape, batch};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use support::Session;
use support::faults::{BATCH, FaultBatch};

/// How long a broker may take to notice that its database went or came
/// back (its probe runs every 250 ms).
const NOTICE_DEADLINE: Duration = Duration::from_secs(15);

/// A deployment of one broker with `workers` workers whose leases last
/// two seconds, on `admin_url`'s server (or the shared one).
fn options(workers: u32, admin_url: Option<String>) -> Options {
    Options {
        workers,
        lease_timeout: "2s".to_owned(),
        admin_url,
    }
}

/// The counter `series` summed over every worker's metrics.
async fn worker_counts(s: &mut Session, series: &str) -> Result<Vec<u64>> {
    let mut counts = Vec::new();
    for worker in &mut s.cluster.workers {
        let scrape = Scrape::get(metrics_addr(worker).await?).await?;
        counts.push(scrape.count(series));
    }
    Ok(counts)
}

/// A broker killed with SIGKILL in the middle of a batch and started again
/// on its port: the workers reconnect to it, report what they ran
/// meanwhile, and every job ends once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_ends_once_per_job_when_its_broker_is_killed_and_restarted() -> Result<()> {
    let mut s = Session::start_with(Backend::Postgres, &options(2, None)).await?;
    let batch = FaultBatch::start(&s, BATCH).await?;

    batch.wait_for_first(10).await?;
    s.cluster.restart_broker(0).await?;
    ensure!(
        batch.running().await? > 0,
        "the batch ended before the restart"
    );
    batch.finish().await?;

    let leased = s.cluster.brokers[0]
        .scrape()
        .await?
        .count("baton_leases_total");
    ensure!(leased > 0, "the restarted broker leased nothing");
    let reconnects = worker_counts(&mut s, "baton_worker_reconnects_total").await?;
    ensure!(
        reconnects.iter().all(|n| *n > 0),
        "a worker never reconnected: {reconnects:?}"
    );
    Ok(())
}

/// When the server's postmaster started, to tell that a restart happened.
async fn postmaster_started(url: &str) -> Result<String> {
    let pool = PgPool::connect(url).await?;
    let sql = "SELECT pg_postmaster_start_time()::text";
    let started = sqlx::query_scalar(sql).fetch_one(&pool).await;
    pool.close().await;
    Ok(started?)
}

/// Postgres restarted with `-m immediate` (every session cut, crash
/// recovery on start) in the middle of a batch: the broker's connections
/// come back by themselves and every job ends once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_ends_once_per_job_when_postgres_restarts_immediately() -> Result<()> {
    let pg = PgServer::start().await?;
    let options = options(2, Some(pg.admin_url()));
    let s = Session::start_with(Backend::Postgres, &options).await?;
    let batch = FaultBatch::start(&s, BATCH).await?;
    let before = postmaster_started(&s.cluster.database_url).await?;

    batch.wait_for_first(10).await?;
    pg.restart_immediately().await?;
    ensure!(
        batch.running().await? > 0,
        "the batch ended before the restart"
    );
    let after = postmaster_started(&s.cluster.database_url).await?;
    ensure!(
        after != before,
        "Postgres did not restart (started {before})"
    );
    batch.finish().await?;
    Ok(())
}

async fn health(channel: &Channel, service: &str) -> Result<ServingStatus> {
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    let reply = HealthClient::new(channel.clone()).check(request).await?;
    let HealthCheckResponse { status } = reply.into_inner();
    ServingStatus::try_from(status).context("unknown serving status")
}

/// Health as a readiness probe sees it (the server as a whole), a service
/// that needs the database, and one that does not.
async fn healths(channel: &Channel) -> Result<[ServingStatus; 3]> {
    Ok([
        health(channel, "").await?,
        health(channel, "baton.v1.Jobs").await?,
        health(channel, "baton.v1.Policies").await?,
    ])
}

/// The code `Jobs.List` answers with.
async fn list_jobs(channel: &Channel) -> Code {
    let mut jobs = JobsClient::new(channel.clone());
    match jobs.list(v1::ListJobsRequest::default()).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// The code `Policies.Simulate` answers with; it needs no database.
async fn simulate(channel: &Channel) -> Code {
    let request = v1::SimulateRequest {
        retry: Some(baton_proto::convert::to_value(&batch::retry_block())),
        ..v1::SimulateRequest::default()
    };
    match PoliciesClient::new(channel.clone()).simulate(request).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Postgres stopped under a running attempt: the broker says NOT_SERVING
/// and answers UNAVAILABLE while it is away, a worker that starts
/// meanwhile keeps trying, and once Postgres is back the broker serves by
/// itself, the attempt's result is recorded and new work runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_is_unavailable_while_its_database_is_down_and_recovers_by_itself() -> Result<()>
{
    let pg = PgServer::start().await?;
    let options = Options {
        lease_timeout: "30s".to_owned(),
        ..options(1, Some(pg.admin_url()))
    };
    let mut s = Session::start_with(Backend::Postgres, &options).await?;
    let channel = s.channel.clone();
    let paths = batch::register(&channel, 1000).await?;
    let running = batch::run_executions(&channel, &paths, &[0]).await?;
    s.wait_for_event(running[0], "action_started").await?;

    pg.stop().await?;
    let broker = &mut s.cluster.brokers[0].process;
    broker
        .wait_for_line("Database unreachable", NOTICE_DEADLINE)
        .await?;
    use ServingStatus::{NotServing, Serving};
    ensure!(healths(&channel).await? == [NotServing, NotServing, Serving]);
    ensure!(list_jobs(&channel).await == Code::Unavailable);
    ensure!(simulate(&channel).await == Code::Ok);
    let late = s.cluster.add_worker()?;
    late.wait_for_line("Broker unreachable; reconnecting", NOTICE_DEADLINE)
        .await?;

    pg.start_again().await?;
    let broker = &mut s.cluster.brokers[0].process;
    broker
        .wait_for_line("Database reachable again", NOTICE_DEADLINE)
        .await?;
    ensure!(healths(&channel).await? == [Serving, Serving, Serving]);
    let late = &mut s.cluster.workers[1];
    late.wait_for_line("Connected to the broker", NOTICE_DEADLINE)
        .await?;
    let after = batch::run_executions(&channel, &paths, &[0, 1, 2, 3]).await?;
    let all: Vec<i64> = running.iter().chain(&after).copied().collect();
    batch::wait_until_ended(&channel, &all, Duration::from_secs(60)).await?;

    let counts = baton_testkit::invariants::check(&s.cluster.database_url).await?;
    let (job, attempts) = s.job(running[0], "work").await?;
    ensure!(
        job.state() == v1::JobState::Done && attempts.len() == 1,
        "the attempt run through the outage was not recorded once: {attempts:?}"
    );
    ensure!(counts.get("jobs") == 5, "{counts}");
    Ok(())
}
