//! Group commit of reports on SQLite: one write transaction for the whole
//! batch. As on Postgres, a round reads its jobs with one statement, writes
//! the bare jobs' endings with one statement per table, and sends the rest
//! through the one-job path in the same transaction. Each statement is a
//! hand-off to the connection's thread, so statements per batch, not per
//! job, are what keep the single writer fast.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::types::Json;

use super::rows::{JobRow, at};
use super::{Lite, Tx, lock_execution};
use crate::error::Error;
use crate::model::{Job, Resolution, Timestamp};
use crate::store::batch::{self, Answers, BulkEnding, ReportItem, Slots};
use crate::store::resolve::Ending;
use crate::store::rows::ms;

/// The jobs of a round; `?1` is a JSON array of ids.
const READ_JOBS: &str = "SELECT * FROM jobs WHERE id IN (SELECT value FROM json_each(?1))";

/// The columns of each ending, from a JSON array of objects (`?1`). `->>`
/// gives SQL NULL for a JSON null; `->` keeps a result or error as JSON
/// text, as the one-job path stores it.
macro_rules! endings_input {
    () => {
        "(SELECT value ->> 'job_id' AS job_id, value ->> 'token' AS token,
            value ->> 'state' AS state, value ->> 'delay_ms' AS delay_ms,
            CASE WHEN value ->> 'result' IS NULL THEN NULL ELSE value -> 'result' END AS result,
            CASE WHEN value ->> 'error' IS NULL THEN NULL ELSE value -> 'error' END AS error,
            value ->> 'reason' AS reason, value ->> 'outcome' AS outcome,
            value ->> 'status_code' AS status_code, value ->> 'retry' AS retry,
            value ->> 'raw_delay_ms' AS raw_delay_ms, value ->> 'jitter_factor' AS jitter_factor,
            value ->> 'decided_by' AS decided_by, value ->> 'message' AS message
         FROM json_each(?1)) AS i"
    };
}

/// Moves each job to its next state (`?2` is the transaction's clock);
/// returns each job's `available_at`.
const WRITE_JOBS: &str = concat!(
    "UPDATE jobs SET
        state = i.state,
        available_at = CASE WHEN i.state = 'queued' THEN ?2 + i.delay_ms
            ELSE jobs.available_at END,
        finished_at = CASE WHEN i.state = 'queued' THEN NULL ELSE ?2 END,
        lease_expires_at = NULL,
        leased_by = NULL,
        result = CASE WHEN i.state = 'done' THEN i.result ELSE jobs.result END,
        last_error = COALESCE(i.error, jobs.last_error),
        last_reason = i.reason
     FROM ",
    endings_input!(),
    " WHERE jobs.id = i.job_id
     RETURNING id, available_at"
);

/// Closes each attempt with its outcome and the whole decision.
const WRITE_ATTEMPTS: &str = concat!(
    "UPDATE attempts SET
        finished_at = ?2, outcome = i.outcome, error = i.error,
        status_code = i.status_code, result = i.result, retry = i.retry,
        reason = i.reason, raw_delay_ms = i.raw_delay_ms,
        jitter_factor = i.jitter_factor, delay_ms = i.delay_ms,
        decided_by = i.decided_by, message = i.message,
        rescheduled_at = CASE WHEN i.state = 'queued' THEN ?2 + i.delay_ms END
     FROM ",
    endings_input!(),
    " WHERE attempts.lease_token = i.token"
);

impl Lite {
    /// Records many reports in one transaction; see [`crate::Store::report_many`].
    pub(crate) async fn report_many(&self, items: Vec<ReportItem>) -> Result<Answers, Error> {
        let mut answers: Slots = items.iter().map(|_| None).collect();
        let mut tx = self.begin().await?;
        for round in batch::rounds(items) {
            self.report_round(&mut tx, round, &mut answers).await?;
        }
        self.commit(tx).await?;
        Ok(batch::collect(answers))
    }

    async fn report_round(
        &self,
        tx: &mut Tx,
        round: Vec<(usize, ReportItem)>,
        answers: &mut Slots,
    ) -> Result<(), Error> {
        let jobs = read_jobs(tx, &batch::job_ids(&round)).await?;
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
        if let Some(execution) = job.execution_id {
            lock_execution(tx, execution).await?;
        }
        if !batch::is_current(job, item.token) {
            return super::finish::answer_stale(tx, job, item.token, item.call).await;
        }
        self.finish(tx, job, Ending::reported(item.call, item.report))
            .await
    }
}

async fn read_jobs(tx: &mut Tx, ids: &[i64]) -> Result<HashMap<i64, Job>, Error> {
    let rows: Vec<JobRow> = sqlx::query_as(READ_JOBS)
        .bind(Json(ids))
        .fetch_all(tx.conn())
        .await?;
    rows.into_iter()
        .map(|row| Job::try_from(row).map(|job| (job.id, job)))
        .collect()
}

/// One ending as the statements' JSON input reads it.
fn ending_json(ending: &BulkEnding) -> Result<Value, Error> {
    let decision = &ending.record.decision;
    let status = ending.ending.report.outcome.status_code;
    Ok(json!({
        "job_id": ending.job_id,
        "token": ending.token,
        "state": ending.state.as_str(),
        "delay_ms": ms(decision.delay),
        "result": ending.result(),
        "error": ending.error()?,
        "reason": decision.reason.as_str(),
        "outcome": ending.ending.outcome.as_str(),
        "status_code": status.map(i32::from),
        "retry": decision.retry,
        "raw_delay_ms": ms(decision.raw_delay),
        "jitter_factor": decision.jitter_factor,
        "decided_by": ending.record.decided_by.as_str(),
        "message": decision.message,
    }))
}

async fn write_endings(tx: &mut Tx, bulk: &[BulkEnding]) -> Result<HashMap<i64, Timestamp>, Error> {
    if bulk.is_empty() {
        return Ok(HashMap::new());
    }
    let input = Value::Array(bulk.iter().map(ending_json).collect::<Result<_, _>>()?);
    let rows: Vec<(i64, i64)> = sqlx::query_as(WRITE_JOBS)
        .bind(Json(&input))
        .bind(tx.now)
        .fetch_all(tx.conn())
        .await?;
    sqlx::query(WRITE_ATTEMPTS)
        .bind(Json(&input))
        .bind(tx.now)
        .execute(tx.conn())
        .await?;
    rows.into_iter()
        .map(|(id, available_at)| Ok((id, at(available_at)?)))
        .collect()
}
