//! The Postgres backend of the store. Claiming is one `SKIP LOCKED`
//! statement; every state change of a job runs in one transaction with the
//! attempt row and events it implies.
//!
//! Lock order, everywhere: the execution row (`FOR NO KEY UPDATE`) before
//! any of its jobs. Serializing an execution's changes this way keeps its
//! event ids in commit order and lets the last finishing job see that
//! nothing else is left. Claims never wait for an execution lock: they skip
//! jobs whose execution is busy.

mod backlog;
mod batch;
mod claim;
mod events;
mod executions;
mod finish;
mod jobs;
mod lease;
mod listen;
mod playbooks;
mod reap;
mod rows;

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use baton_dsl::Playbook;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::error::Error;
use crate::model::Job;
use crate::store::catalog::PlaybookCache;
use crate::store::events::NewEvent;

/// A transaction on the broker's database, holding the events recorded in
/// it until it commits: they are written then, in the order recorded, with
/// one statement (see [`events::record`]). The execution rows locked by the
/// transaction keep each execution's event ids in commit order all the
/// same. Statements run on the connection it dereferences to.
struct Tx {
    inner: Transaction<'static, Postgres>,
    events: Vec<NewEvent>,
}

impl Tx {
    /// Writes the recorded events, then commits.
    async fn commit(mut self) -> Result<(), Error> {
        events::flush(&mut self).await?;
        self.inner.commit().await?;
        Ok(())
    }
}

impl Deref for Tx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.inner
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.inner
    }
}

/// The Postgres backend.
#[derive(Debug)]
pub(super) struct Pg {
    pool: PgPool,
    playbooks: PlaybookCache,
}

impl Pg {
    pub(super) fn new(pool: PgPool) -> Self {
        Pg {
            pool,
            playbooks: PlaybookCache::default(),
        }
    }

    async fn begin(&self) -> Result<Tx, Error> {
        Ok(Tx {
            inner: self.pool.begin().await?,
            events: Vec::new(),
        })
    }

    /// The parsed playbook `id`, from the cache or the database.
    async fn playbook(&self, tx: &mut Tx, id: i64) -> Result<Arc<Playbook>, Error> {
        if let Some(found) = self.playbooks.get(id) {
            return Ok(found);
        }
        let yaml: String = sqlx::query_scalar("SELECT yaml FROM playbooks WHERE id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        self.playbooks.parse(id, &yaml)
    }
}

/// Locks job `id` for a state change, its execution first (see the module
/// docs). NOT_FOUND when the job does not exist.
async fn lock_job(tx: &mut Tx, id: i64) -> Result<Job, Error> {
    let execution: Option<Option<i64>> =
        sqlx::query_scalar("SELECT execution_id FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(execution) = execution else {
        return Err(Error::not_found("job", id));
    };
    if let Some(execution) = execution {
        lock_execution(tx, execution).await?;
    }
    let row: rows::JobRow = sqlx::query_as("SELECT * FROM jobs WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    row.try_into()
}

/// Takes execution `id`'s row lock; NOT_FOUND when it does not exist.
async fn lock_execution(tx: &mut Tx, id: i64) -> Result<(), Error> {
    sqlx::query("SELECT id FROM executions WHERE id = $1 FOR NO KEY UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found("execution", id))?;
    Ok(())
}
