//! The embedded SQLite backend of the store, for one machine: `baton dev`
//! needs nothing installed. It behaves as the Postgres backend does (same
//! states, events, attempt rows, fencing and answers); where SQLite lacks
//! a Postgres feature, the store does the same work another way:
//!
//! - No `SKIP LOCKED` or row locks: every write runs on one connection in a
//!   `BEGIN IMMEDIATE` transaction, so writers are serialized. A claim is
//!   still one atomic transaction, no job is leased twice, and an
//!   execution's events commit in id order, which is what the Postgres
//!   lock order buys. Reads use a separate pool and never block (WAL).
//! - No `now()` inside a transaction: each write transaction reads the
//!   clock once after it starts and binds it, as Postgres's `now()` is the
//!   transaction's start time. Timestamps are milliseconds since the epoch.
//! - No LISTEN/NOTIFY: triggers record wake-ups in the `wakeups` table, and
//!   [`Lite::commit`] drains it and fires [`Signals`] once committed.

mod backlog;
mod batch;
mod claim;
mod connect;
mod events;
mod executions;
mod finish;
mod jobs;
mod lease;
mod listen;
mod playbooks;
mod reap;
mod rows;

use std::sync::Arc;

use baton_dsl::Playbook;
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::error::Error;
use crate::model::Job;
use crate::store::Signals;
use crate::store::catalog::PlaybookCache;

pub(crate) use connect::{options, pools};

/// A write transaction and the time it started, in milliseconds.
#[derive(Debug)]
struct Tx {
    inner: Transaction<'static, Sqlite>,
    now: i64,
}

impl Tx {
    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.inner
    }
}

/// The SQLite backend.
#[derive(Debug)]
pub(super) struct Lite {
    /// One connection: holding it is holding the database's write lock.
    writer: SqlitePool,
    /// Reads outside transactions; may be `writer` itself (in memory).
    pool: SqlitePool,
    signals: Signals,
    playbooks: PlaybookCache,
}

impl Lite {
    /// A backend over a writer pool of one connection and a reader pool,
    /// firing `signals` after each commit that queued jobs or events.
    pub(super) fn new(writer: SqlitePool, reader: SqlitePool, signals: Signals) -> Self {
        Lite {
            writer,
            pool: reader,
            signals,
            playbooks: PlaybookCache::default(),
        }
    }

    /// Starts a write transaction. `IMMEDIATE` takes the write lock now,
    /// so a transaction never fails half-way on a lock another process
    /// (such as `baton broker migrate`) holds: it waits `busy_timeout`.
    async fn begin(&self) -> Result<Tx, Error> {
        let inner = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let now = chrono::Utc::now().timestamp_millis();
        Ok(Tx { inner, now })
    }

    /// Commits `tx`, then wakes whoever waits for what it queued.
    async fn commit(&self, mut tx: Tx) -> Result<(), Error> {
        let wakeups = listen::drain(&mut tx).await?;
        tx.inner.commit().await?;
        listen::fire(&self.signals, wakeups);
        Ok(())
    }

    /// The parsed playbook `id`, from the cache or the database.
    async fn playbook(&self, tx: &mut Tx, id: i64) -> Result<Arc<Playbook>, Error> {
        if let Some(found) = self.playbooks.get(id) {
            return Ok(found);
        }
        let yaml: String = sqlx::query_scalar("SELECT yaml FROM playbooks WHERE id = ?1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
        self.playbooks.parse(id, &yaml)
    }
}

/// Reads job `id` for a state change; NOT_FOUND when it does not exist.
/// Postgres locks the execution row, then the job's; here the write
/// transaction already excludes every other writer, so the read is the
/// lock. The execution is still checked, as Postgres's lock checks it.
async fn lock_job(tx: &mut Tx, id: i64) -> Result<Job, Error> {
    let row: Option<rows::JobRow> = sqlx::query_as("SELECT * FROM jobs WHERE id = ?1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    let job = Job::try_from(row.ok_or_else(|| Error::not_found("job", id))?)?;
    if let Some(execution) = job.execution_id {
        lock_execution(tx, execution).await?;
    }
    Ok(job)
}

/// Checks that execution `id` exists; NOT_FOUND otherwise. No lock to take:
/// writers are serialized (see the module docs).
async fn lock_execution(tx: &mut Tx, id: i64) -> Result<(), Error> {
    sqlx::query("SELECT id FROM executions WHERE id = ?1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| Error::not_found("execution", id))?;
    Ok(())
}
