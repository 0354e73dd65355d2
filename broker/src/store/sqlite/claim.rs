//! Claiming: one write transaction picks a batch of due jobs, leases them,
//! records their attempts and their `action_started` events.
//!
//! Postgres does this in one statement with `SKIP LOCKED` so that brokers
//! sharing the database neither wait on nor share a job. The embedded
//! store has one writer at a time (see the module docs of the backend), so
//! the pick and the updates after it see the same rows and the batch is
//! leased atomically: no job is leased twice.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::types::Json;

use super::events::record;
use super::rows::{JobRow, at};
use super::{Lite, Tx};
use crate::error::Error;
use crate::model::{ClaimRequest, EventKind, Job, LeasedJob, Timestamp};
use crate::store::events::NewEvent;
use crate::store::leases::leased_job;
use crate::store::rows::ms;

/// Due jobs in lease order (priority, available_at, id). Queues and kinds
/// arrive as JSON arrays: SQLite has no array parameters.
const PICK: &str = "
SELECT id FROM jobs
WHERE state = 'queued'
  AND queue IN (SELECT value FROM json_each(?1))
  AND (json_array_length(?2) = 0 OR kind IN (SELECT value FROM json_each(?2)))
  AND available_at <= ?3
  AND attempts < max_attempts
ORDER BY priority, available_at, id
LIMIT ?4";

/// Leases the picked jobs, each under its own token: `?1` is a JSON array
/// of `[id, token]` pairs. One statement for the batch, since each
/// statement is a round trip to the connection's thread.
const LEASE: &str = "
UPDATE jobs
SET state = 'leased',
    attempts = attempts + 1,
    lease_token = p.token,
    leased_by = ?2,
    lease_expires_at = ?3
FROM (SELECT value ->> 0 AS id, value ->> 1 AS token FROM json_each(?1)) AS p
WHERE jobs.id = p.id
RETURNING *";

/// Opens the attempt rows of the jobs just leased.
const OPEN_ATTEMPTS: &str = "
INSERT INTO attempts (job_id, number, lease_token, worker, started_at)
SELECT id, attempts, lease_token, ?2, ?3 FROM jobs
WHERE id IN (SELECT value FROM json_each(?1))";

/// The earliest due time among the queues, one index probe each.
const NEXT_DUE: &str = "
SELECT min(available_at) FROM jobs
WHERE state = 'queued'
  AND queue IN (SELECT value FROM json_each(?1))
  AND (json_array_length(?2) = 0 OR kind IN (SELECT value FROM json_each(?2)))
  AND attempts < max_attempts";

impl Lite {
    pub(crate) async fn claim(&self, request: &ClaimRequest) -> Result<Vec<LeasedJob>, Error> {
        let mut tx = self.begin().await?;
        let ids = pick(&mut tx, request).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let first_token = take_tokens(&mut tx, ids.len()).await?;
        let jobs = lease(&mut tx, request, &ids, first_token).await?;
        record_started(&mut tx, &jobs).await?;
        let leased = with_contexts(&mut tx, jobs).await?;
        self.commit(tx).await?;
        Ok(leased)
    }

    pub(crate) async fn next_due(
        &self,
        queues: &[String],
        kinds: &[String],
    ) -> Result<Option<Timestamp>, Error> {
        let due: Option<i64> = sqlx::query_scalar(NEXT_DUE)
            .bind(Json(queues))
            .bind(Json(kinds))
            .fetch_one(&self.pool)
            .await?;
        due.map(at).transpose()
    }
}

async fn pick(tx: &mut Tx, request: &ClaimRequest) -> Result<Vec<i64>, Error> {
    let ids = sqlx::query_scalar(PICK)
        .bind(Json(&request.queues))
        .bind(Json(&request.kinds))
        .bind(tx.now)
        .bind(i64::from(request.limit))
        .fetch_all(tx.conn())
        .await?;
    Ok(ids)
}

/// Reserves `count` lease tokens from the counter; returns the first.
async fn take_tokens(tx: &mut Tx, count: usize) -> Result<i64, Error> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let last: i64 =
        sqlx::query_scalar("UPDATE lease_tokens SET last = last + ?1 WHERE id = 1 RETURNING last")
            .bind(count)
            .fetch_one(tx.conn())
            .await?;
    Ok(last - count + 1)
}

/// Leases the jobs `ids` (in lease order) under consecutive tokens from
/// `first_token`, opens their attempt rows, and returns them in lease
/// order.
async fn lease(
    tx: &mut Tx,
    request: &ClaimRequest,
    ids: &[i64],
    first_token: i64,
) -> Result<Vec<Job>, Error> {
    let expires = tx.now.saturating_add(ms(request.lease_timeout));
    let pairs: Vec<(i64, i64)> = ids.iter().copied().zip(first_token..).collect();
    let rows: Vec<JobRow> = sqlx::query_as(LEASE)
        .bind(Json(&pairs))
        .bind(&request.worker)
        .bind(expires)
        .fetch_all(tx.conn())
        .await?;
    sqlx::query(OPEN_ATTEMPTS)
        .bind(Json(ids))
        .bind(&request.worker)
        .bind(tx.now)
        .execute(tx.conn())
        .await?;
    let mut jobs = rows
        .into_iter()
        .map(Job::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    // RETURNING follows no order; tokens follow the pick's.
    jobs.sort_by_key(|job| job.lease_token);
    Ok(jobs)
}

/// One `action_started` per playbook job, in job id order as Postgres
/// inserts them.
async fn record_started(tx: &mut Tx, jobs: &[Job]) -> Result<(), Error> {
    let mut by_id: Vec<&Job> = jobs.iter().collect();
    by_id.sort_by_key(|job| job.id);
    for job in by_id {
        record(tx, NewEvent::job(job, EventKind::ActionStarted)).await?;
    }
    Ok(())
}

/// Pairs each job with its execution's template context (`{}` for a bare
/// job), reading each execution once.
async fn with_contexts(tx: &mut Tx, jobs: Vec<Job>) -> Result<Vec<LeasedJob>, Error> {
    let mut contexts: HashMap<i64, Value> = HashMap::new();
    let mut leased = Vec::with_capacity(jobs.len());
    for job in jobs {
        let context = match job.execution_id {
            Some(id) if contexts.contains_key(&id) => contexts[&id].clone(),
            Some(id) => {
                let context = context_of(tx, id).await?;
                contexts.insert(id, context.clone());
                context
            }
            None => json!({}),
        };
        leased.push(leased_job(job, context)?);
    }
    Ok(leased)
}

async fn context_of(tx: &mut Tx, execution_id: i64) -> Result<Value, Error> {
    let context: Option<Value> = sqlx::query_scalar("SELECT context FROM executions WHERE id = ?1")
        .bind(execution_id)
        .fetch_optional(tx.conn())
        .await?;
    Ok(context.unwrap_or_else(|| json!({})))
}
