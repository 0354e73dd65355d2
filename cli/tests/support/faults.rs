//! A batch of randomly failing executions run through a fault, and what is
//! checked once it has ended: the invariants of
//! `baton_testkit::invariants`, over every job of the deployment.

use std::time::Duration;

use anyhow::Result;
use baton_testkit::Counts;
use baton_testkit::batch::{self, Draw};
use baton_testkit::sqlx::{self, PgPool};
use tonic::transport::Channel;

use super::Session;

/// Executions in a fault test's batch: a few seconds of work for two
/// workers, so that a fault lands while most of it is still to run.
pub(crate) const BATCH: usize = 150;

/// How long each attempt of the batch runs.
pub(crate) const SLEEP_MS: u64 = 100;

/// How long the whole batch may take, faults included.
const BATCH_DEADLINE: Duration = Duration::from_secs(120);

/// Executions started and not yet known to have ended.
#[derive(Debug)]
pub(crate) struct FaultBatch {
    /// The executions, in the order they were started (and are leased).
    pub(crate) ids: Vec<i64>,
    channel: Channel,
    database_url: String,
}

impl FaultBatch {
    /// Registers the batch's playbooks and starts `n` executions of them,
    /// each failing its first 0 to 3 attempts of 3 at random.
    pub(crate) async fn start(s: &Session, n: usize) -> Result<FaultBatch> {
        let paths = batch::register(&s.channel, SLEEP_MS).await?;
        let fails = Draw::from_clock().failure_counts(n);
        let ids = batch::run_executions(&s.channel, &paths, &fails).await?;
        Ok(FaultBatch {
            ids,
            channel: s.channel.clone(),
            database_url: s.cluster.database_url.clone(),
        })
    }

    /// Waits until the first `k` executions have ended: the batch is under
    /// way, and (for `k` well below its size) most of it still to run.
    pub(crate) async fn wait_for_first(&self, k: usize) -> Result<()> {
        batch::wait_until_ended(&self.channel, &self.ids[..k], BATCH_DEADLINE).await
    }

    /// How many executions of the deployment are still running, read from
    /// the database: read after a fault, those were running through it.
    pub(crate) async fn running(&self) -> Result<i64> {
        let pool = PgPool::connect(&self.database_url).await?;
        let sql = "SELECT count(*) FROM executions WHERE state = 'running'";
        let running = sqlx::query_scalar(sql).fetch_one(&pool).await;
        pool.close().await;
        Ok(running?)
    }

    /// Waits until every execution has ended, then checks the invariants
    /// and returns the counts (printed either way).
    pub(crate) async fn finish(&self) -> Result<Counts> {
        batch::wait_until_ended(&self.channel, &self.ids, BATCH_DEADLINE).await?;
        baton_testkit::invariants::check(&self.database_url).await
    }
}
