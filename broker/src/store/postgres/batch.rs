//! Group commit of reports: many `Complete`s and `Fail`s, one transaction.
//!
//! A round locks its jobs with two statements (their executions first, in
//! id order, as everywhere else), writes the bare jobs' endings with one
//! statement that updates both `jobs` and `attempts`, and sends the rest
//! through the one-job path inside the same transaction. One commit, so one
//! WAL flush, answers the whole batch.

use std::collections::HashMap;

use sqlx::types::Json;

use super::rows::JobRow;
use super::{Pg, Tx};
use crate::error::Error;
use crate::model::{Job, Resolution, Timestamp};
use crate::store::batch::{self, Answers, BulkEnding, ReportItem, Slots};
use crate::store::resolve::Ending;
use crate::store::rows::ms;

/// Locks the executions of the named jobs, in id order, before the jobs.
const LOCK_EXECUTIONS: &str = "
SELECT id FROM executions
WHERE id IN (SELECT execution_id FROM jobs WHERE id = ANY($1))
ORDER BY id
FOR NO KEY UPDATE";

/// Locks the named jobs in id order, so two batches never wait on each
/// other in a cycle.
const LOCK_JOBS: &str = "SELECT * FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// Ends many bare jobs' attempts: the job rows move to their next state and
/// each attempt row gets its outcome and decision. `rescheduled_at` is
/// computed as the job's `available_at` is (`now()` is fixed for the
/// transaction) rather than joined from the written rows: a join of two
/// CTEs has no index and grew with the square of the batch. Returns each
/// job's `available_at`.
const WRITE_ENDINGS: &str = "
WITH input AS (
    SELECT * FROM unnest(
        $1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::jsonb[], $6::jsonb[],
        $7::text[], $8::text[], $9::int[], $10::bool[], $11::bigint[], $12::float8[],
        $13::text[], $14::text[]
    ) AS i(job_id, token, state, delay_ms, result, error, reason, outcome, status_code,
           retry, raw_delay_ms, jitter_factor, decided_by, message)
), written AS (
    UPDATE jobs j SET
        state = i.state,
        available_at = CASE WHEN i.state = 'queued'
            THEN now() + make_interval(secs => i.delay_ms::float8 / 1000)
            ELSE j.available_at END,
        finished_at = CASE WHEN i.state = 'queued' THEN NULL ELSE now() END,
        lease_expires_at = NULL,
        leased_by = NULL,
        result = CASE WHEN i.state = 'done' THEN i.result ELSE j.result END,
        last_error = COALESCE(i.error, j.last_error),
        last_reason = i.reason
    FROM input i
    WHERE j.id = i.job_id
    RETURNING j.id, j.state, j.available_at
), attempted AS (
    UPDATE attempts a SET
        finished_at = now(), outcome = i.outcome, error = i.error,
        status_code = i.status_code, result = i.result, retry = i.retry,
        reason = i.reason, raw_delay_ms = i.raw_delay_ms,
        jitter_factor = i.jitter_factor, delay_ms = i.delay_ms,
        decided_by = i.decided_by, message = i.message,
        rescheduled_at = CASE WHEN i.state = 'queued'
            THEN now() + make_interval(secs => i.delay_ms::float8 / 1000) END
    FROM input i
    WHERE a.job_id = i.job_id AND a.lease_token = i.token
)
SELECT id, available_at FROM written";

impl Pg {
    /// Records many reports in one transaction; see [`crate::Store::report_many`].
    pub(crate) async fn report_many(&self, items: Vec<ReportItem>) -> Result<Answers, Error> {
        let mut answers: Slots = items.iter().map(|_| None).collect();
        let mut tx = self.begin().await?;
        for round in batch::rounds(items) {
            self.report_round(&mut tx, round, &mut answers).await?;
        }
        tx.commit().await?;
        Ok(batch::collect(answers))
    }

    async fn report_round(
        &self,
        tx: &mut Tx,
        round: Vec<(usize, ReportItem)>,
        answers: &mut Slots,
    ) -> Result<(), Error> {
        let jobs = lock_jobs(tx, &batch::job_ids(&round)).await?;
        let sorted = batch::sort_round(round, &jobs, answers);
        for (index, job, item) in sorted.single {
            match self.report_one(tx, job, item).await {
                Err(err) if batch::breaks_batch(&err) => return Err(err),
                answer => answers[index] = Some(answer),
            }
        }
        let written = write_endings(tx, &sorted.bulk).await?;
        batch::answer_bulk(answers, &sorted.bulk, &written)
    }

    /// The one-job path: a job of an execution, or a token that is not
    /// the job's current lease.
    async fn report_one(
        &self,
        tx: &mut Tx,
        job: &Job,
        item: ReportItem,
    ) -> Result<Resolution, Error> {
        if !batch::is_current(job, item.token) {
            return super::finish::answer_stale(tx, job, item.token, item.call).await;
        }
        self.finish(tx, job, Ending::reported(item.call, item.report))
            .await
    }
}

async fn lock_jobs(tx: &mut Tx, ids: &[i64]) -> Result<HashMap<i64, Job>, Error> {
    sqlx::query(LOCK_EXECUTIONS)
        .bind(ids)
        .execute(&mut **tx)
        .await?;
    let rows: Vec<JobRow> = sqlx::query_as(LOCK_JOBS)
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
    rows.into_iter()
        .map(|row| Job::try_from(row).map(|job| (job.id, job)))
        .collect()
}

/// One column per field of [`WRITE_ENDINGS`]'s input.
#[derive(Default)]
struct Columns {
    job_id: Vec<i64>,
    token: Vec<i64>,
    state: Vec<&'static str>,
    delay_ms: Vec<i64>,
    result: Vec<Option<Json<serde_json::Value>>>,
    error: Vec<Option<Json<serde_json::Value>>>,
    reason: Vec<&'static str>,
    outcome: Vec<&'static str>,
    status_code: Vec<Option<i32>>,
    retry: Vec<bool>,
    raw_delay_ms: Vec<i64>,
    jitter_factor: Vec<f64>,
    decided_by: Vec<&'static str>,
    message: Vec<Option<String>>,
}

impl Columns {
    fn push(&mut self, ending: &BulkEnding) -> Result<(), Error> {
        let decision = &ending.record.decision;
        self.job_id.push(ending.job_id);
        self.token.push(ending.token);
        self.state.push(ending.state.as_str());
        self.delay_ms.push(ms(decision.delay));
        self.result.push(ending.result().map(Json));
        self.error.push(ending.error()?.map(Json));
        self.reason.push(decision.reason.as_str());
        self.outcome.push(ending.ending.outcome.as_str());
        let status = ending.ending.report.outcome.status_code;
        self.status_code.push(status.map(i32::from));
        self.retry.push(decision.retry);
        self.raw_delay_ms.push(ms(decision.raw_delay));
        self.jitter_factor.push(decision.jitter_factor);
        self.decided_by.push(ending.record.decided_by.as_str());
        self.message.push(decision.message.clone());
        Ok(())
    }
}

async fn write_endings(tx: &mut Tx, bulk: &[BulkEnding]) -> Result<HashMap<i64, Timestamp>, Error> {
    if bulk.is_empty() {
        return Ok(HashMap::new());
    }
    let mut c = Columns::default();
    for ending in bulk {
        c.push(ending)?;
    }
    let rows: Vec<(i64, Timestamp)> = sqlx::query_as(WRITE_ENDINGS)
        .bind(c.job_id)
        .bind(c.token)
        .bind(c.state)
        .bind(c.delay_ms)
        .bind(c.result)
        .bind(c.error)
        .bind(c.reason)
        .bind(c.outcome)
        .bind(c.status_code)
        .bind(c.retry)
        .bind(c.raw_delay_ms)
        .bind(c.jitter_factor)
        .bind(c.decided_by)
        .bind(c.message)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.into_iter().collect())
}
