//! Bare jobs: enqueue, list, get, requeue, cancel.

use std::collections::HashMap;

use sqlx::types::Json;

use super::rows::{AttemptRow, JobRow};
use super::{Pg, Tx, lock_job};
use crate::error::Error;
use crate::model::{Attempt, Job, JobFilter, JobState, NewJob};
use crate::store::rows::stored_count;
use crate::store::workflow;

impl Pg {
    /// Inserts every job with one statement, so a request of thousands
    /// costs one round trip and one commit; a job whose idempotency key
    /// is taken answers with the job enqueued earlier under it.
    pub(crate) async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>, Error> {
        let mut tx = self.begin().await?;
        let ids = reserve_ids(&mut tx, jobs.len()).await?;
        let mut inserted = insert_all(&mut tx, &ids, &jobs).await?;
        let mut stored = Vec::with_capacity(jobs.len());
        for (id, job) in ids.iter().zip(&jobs) {
            let row = match inserted.remove(id) {
                Some(row) => row,
                None => {
                    earlier(&mut tx, job.idempotency_key.as_deref().unwrap_or_default()).await?
                }
            };
            stored.push(Job::try_from(row)?);
        }
        tx.commit().await?;
        Ok(stored)
    }

    pub(crate) async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, Error> {
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT * FROM jobs
             WHERE ($1::text IS NULL OR state = $1)
               AND ($2::bigint IS NULL OR execution_id = $2)
               AND ($3::text IS NULL OR queue = $3)
               AND ($4::bigint IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5",
        )
        .bind(filter.state.map(JobState::as_str))
        .bind(filter.execution_id)
        .bind(filter.queue.as_deref())
        .bind(filter.before_id)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    pub(crate) async fn get_job(&self, id: i64) -> Result<(Job, Vec<Attempt>), Error> {
        let row: Option<JobRow> = sqlx::query_as("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let job = Job::try_from(row.ok_or_else(|| Error::not_found("job", id))?)?;
        let attempts: Vec<AttemptRow> =
            sqlx::query_as("SELECT * FROM attempts WHERE job_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        let attempts = attempts
            .into_iter()
            .map(Attempt::try_from)
            .collect::<Result<_, _>>()?;
        Ok((job, attempts))
    }

    pub(crate) async fn requeue(&self, id: i64) -> Result<Job, Error> {
        let mut tx = self.begin().await?;
        let job = lock_job(&mut tx, id).await?;
        workflow::check_requeue(&job)?;
        let row: JobRow = sqlx::query_as(
            "UPDATE jobs SET state = 'queued', attempts = 0, available_at = now(),
                finished_at = NULL, lease_expires_at = NULL, leased_by = NULL
             WHERE id = $1 RETURNING *",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let requeued = Job::try_from(row)?;
        super::executions::reopen(&mut tx, &requeued).await?;
        tx.commit().await?;
        Ok(requeued)
    }

    pub(crate) async fn cancel_job(&self, id: i64) -> Result<Job, Error> {
        let mut tx = self.begin().await?;
        let job = lock_job(&mut tx, id).await?;
        if job.state.is_final() {
            return Ok(job);
        }
        let row: JobRow = sqlx::query_as(
            "UPDATE jobs SET state = 'cancelled', finished_at = now(), lease_expires_at = NULL,
                leased_by = NULL
             WHERE id = $1 RETURNING *",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        cancel_running_attempt(&mut tx, &job).await?;
        let error = workflow::cancellation(id);
        let why = error.message.clone();
        super::executions::step_failed(&mut tx, &job, Some(&error), &why).await?;
        tx.commit().await?;
        Job::try_from(row)
    }
}

async fn cancel_running_attempt(tx: &mut Tx, job: &Job) -> Result<(), Error> {
    if job.state != JobState::Leased {
        return Ok(());
    }
    sqlx::query(
        "UPDATE attempts SET finished_at = now(), outcome = 'cancelled'
         WHERE lease_token = $1 AND finished_at IS NULL",
    )
    .bind(job.lease_token)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ids for `n` new jobs, taken ahead so that each inserted row can be
/// matched with the request's job whatever order `RETURNING` uses.
async fn reserve_ids(tx: &mut Tx, n: usize) -> Result<Vec<i64>, Error> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let ids = sqlx::query_scalar("SELECT nextval('jobs_id_seq') FROM generate_series(1, $1)")
        .bind(n)
        .fetch_all(&mut **tx)
        .await?;
    Ok(ids)
}

/// Inserts bare jobs under `ids`, skipping those whose idempotency key is
/// taken (by an earlier job, or by one before it in the same request);
/// returns the rows written by id.
async fn insert_all(
    tx: &mut Tx,
    ids: &[i64],
    jobs: &[NewJob],
) -> Result<HashMap<i64, JobRow>, Error> {
    let rows: Vec<JobRow> = sqlx::query_as(
        "INSERT INTO jobs (id, queue, kind, payload, priority, available_at, max_attempts,
            retry, idempotency_key)
         SELECT id, queue, kind, payload, priority, COALESCE(run_at, now()), max_attempts,
            retry, idempotency_key
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[], $5::int[],
            $6::timestamptz[], $7::int[], $8::jsonb[], $9::text[])
            AS n(id, queue, kind, payload, priority, run_at, max_attempts, retry,
                 idempotency_key)
         ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING *",
    )
    .bind(ids)
    .bind(jobs.iter().map(|j| j.queue.as_str()).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| Json(&j.payload)).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.priority).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.run_at).collect::<Vec<_>>())
    .bind(
        jobs.iter()
            .map(|j| stored_count(j.retry.max_attempts))
            .collect::<Vec<_>>(),
    )
    .bind(
        jobs.iter()
            .map(|j| Json(j.retry.to_json()))
            .collect::<Vec<_>>(),
    )
    .bind(
        jobs.iter()
            .map(|j| j.idempotency_key.as_deref())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|row| (row.id, row)).collect())
}

async fn earlier(tx: &mut Tx, key: &str) -> Result<JobRow, Error> {
    let row = sqlx::query_as("SELECT * FROM jobs WHERE idempotency_key = $1")
        .bind(key)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row)
}
