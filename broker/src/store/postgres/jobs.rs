//! Bare jobs: enqueue, list, get, requeue, cancel.

use std::collections::HashMap;

use sqlx::types::Json;

use super::rows::{AttemptRow, JobRow};
use super::{Pg, Tx, lock_job};
use crate::error::Error;
use crate::model::{Attempt, Job, JobFilter, JobState, NewJob};
use crate::store::rows::stored_count;
use crate::store::workflow;

/// Inserts the request's jobs in its order and returns each row written
/// with its place in the request. The ids are drawn in `input`, which is
/// read twice and so computed once, to tie each written row back to its
/// place whatever order `RETURNING` uses.
const INSERT_JOBS: &str = "
WITH input AS (
    SELECT nextval('jobs_id_seq') AS id, n.*
    FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::int[], $5::timestamptz[],
        $6::int[], $7::jsonb[], $8::text[])
        WITH ORDINALITY AS n(queue, kind, payload, priority, run_at, max_attempts, retry,
            idempotency_key, ord)
), written AS (
    INSERT INTO jobs (id, queue, kind, payload, priority, available_at, max_attempts, retry,
        idempotency_key)
    SELECT id, queue, kind, payload, priority, COALESCE(run_at, now()), max_attempts, retry,
        idempotency_key
    FROM input ORDER BY ord
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *
)
SELECT input.ord, written.* FROM written JOIN input ON input.id = written.id";

/// A row [`INSERT_JOBS`] wrote, with its place in the request.
#[derive(Debug, sqlx::FromRow)]
struct Inserted {
    ord: i64,
    #[sqlx(flatten)]
    job: JobRow,
}

impl Pg {
    /// Inserts every job with one statement, committed on its own: a
    /// request of one job or of thousands costs one round trip. A job whose
    /// idempotency key was taken, before or earlier in the same request,
    /// answers with the job stored under it, read once the insert has
    /// committed.
    pub(crate) async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>, Error> {
        let mut inserted = self.insert_all(&jobs).await?;
        let mut stored = Vec::with_capacity(jobs.len());
        for (ord, job) in (1..).zip(&jobs) {
            let key = job.idempotency_key.as_deref().unwrap_or_default();
            let row = match inserted.remove(&ord) {
                Some(row) => row,
                None => self.earlier(key).await?,
            };
            stored.push(Job::try_from(row)?);
        }
        Ok(stored)
    }

    /// Inserts bare jobs in request order, skipping those whose key is
    /// taken; returns the rows written by their 1-based place in `jobs`.
    async fn insert_all(&self, jobs: &[NewJob]) -> Result<HashMap<i64, JobRow>, Error> {
        let max_attempts: Vec<i32> = jobs
            .iter()
            .map(|j| stored_count(j.retry.max_attempts))
            .collect();
        let retry: Vec<_> = jobs.iter().map(|j| Json(j.retry.to_json())).collect();
        let keys: Vec<_> = jobs.iter().map(|j| j.idempotency_key.as_deref()).collect();
        let rows: Vec<Inserted> = sqlx::query_as(INSERT_JOBS)
            .bind(jobs.iter().map(|j| j.queue.as_str()).collect::<Vec<_>>())
            .bind(jobs.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>())
            .bind(jobs.iter().map(|j| Json(&j.payload)).collect::<Vec<_>>())
            .bind(jobs.iter().map(|j| j.priority).collect::<Vec<_>>())
            .bind(jobs.iter().map(|j| j.run_at).collect::<Vec<_>>())
            .bind(max_attempts)
            .bind(retry)
            .bind(keys)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|row| (row.ord, row.job)).collect())
    }

    /// The job stored under idempotency key `key`.
    async fn earlier(&self, key: &str) -> Result<JobRow, Error> {
        let row = sqlx::query_as("SELECT * FROM jobs WHERE idempotency_key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(row)
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
            sqlx::query_as("SELECT * FROM attempts WHERE job_id = $1 ORDER BY lease_token")
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
         WHERE job_id = $1 AND lease_token = $2 AND finished_at IS NULL",
    )
    .bind(job.id)
    .bind(job.lease_token)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
