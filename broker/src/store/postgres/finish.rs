//! Ending an attempt: `Complete`, `Fail` and the reaper all come here. The
//! retry policy decides; the job, its attempt row and its events change in
//! the caller's transaction.

use baton_dsl::Decision;

use super::events::record;
use super::lease::fence;
use super::rows::AttemptRow;
use super::{Pg, Tx};
use crate::error::Error;
use crate::model::{Attempt, DecisionRecord, Job, JobState, Resolution, Timestamp};
use crate::store::Call;
use crate::store::leases::stale;
use crate::store::resolve::{self, Ending, StepNext, Verdict};
use crate::store::rows::ms;

impl Pg {
    /// Applies the policy to the attempt that `job` (locked, leased) ran.
    pub(super) async fn finish(
        &self,
        tx: &mut Tx,
        job: &Job,
        ending: Ending,
    ) -> Result<Resolution, Error> {
        let Verdict { record, state } = resolve::decide(job, &ending);
        let available_at = update_job(tx, job, state, &record, &ending).await?;
        let rescheduled = (state == JobState::Queued).then_some(available_at);
        update_attempt(tx, job, &ending, &record, rescheduled).await?;
        let resolution = resolve::resolution(job.attempts, state, &record.decision, rescheduled);
        self.record_ending(tx, job, &ending, &record.decision, &resolution)
            .await?;
        Ok(resolution)
    }

    async fn record_ending(
        &self,
        tx: &mut Tx,
        job: &Job,
        ending: &Ending,
        decision: &Decision,
        resolution: &Resolution,
    ) -> Result<(), Error> {
        record(tx, resolve::ending_event(job, ending, decision));
        match resolve::step_next(job, ending, decision, resolution) {
            StepNext::Retry(event) => {
                record(tx, event);
                Ok(())
            }
            StepNext::Done(result) => self.step_done(tx, job, result).await,
            StepNext::Dead { error, why } => {
                super::executions::step_failed(tx, job, error, &why).await
            }
        }
    }
}

/// Moves the job to `state`; returns its (new) `available_at`.
async fn update_job(
    tx: &mut Tx,
    job: &Job,
    state: JobState,
    record: &DecisionRecord,
    ending: &Ending,
) -> Result<Timestamp, Error> {
    let available_at = sqlx::query_scalar(
        "UPDATE jobs SET
            state = $2,
            available_at = CASE WHEN $2 = 'queued'
                THEN now() + make_interval(secs => $3::float8 / 1000) ELSE available_at END,
            finished_at = CASE WHEN $2 = 'queued' THEN NULL ELSE now() END,
            lease_expires_at = NULL,
            leased_by = NULL,
            result = CASE WHEN $2 = 'done' THEN $4 ELSE result END,
            last_error = COALESCE($5, last_error),
            last_reason = $6
         WHERE id = $1
         RETURNING available_at",
    )
    .bind(job.id)
    .bind(state.as_str())
    .bind(ms(record.decision.delay))
    .bind(ending.result())
    .bind(ending.error_json()?)
    .bind(record.decision.reason.as_str())
    .fetch_one(&mut **tx)
    .await?;
    Ok(available_at)
}

async fn update_attempt(
    tx: &mut Tx,
    job: &Job,
    ending: &Ending,
    record: &DecisionRecord,
    rescheduled: Option<Timestamp>,
) -> Result<(), Error> {
    let report = &ending.report;
    let decision = &record.decision;
    sqlx::query(
        "UPDATE attempts SET finished_at = now(), outcome = $2, error = $3, status_code = $4,
            result = $5, retry = $6, reason = $7, raw_delay_ms = $8, jitter_factor = $9,
            delay_ms = $10, decided_by = $11, rescheduled_at = $12, message = $13
         WHERE job_id = $14 AND lease_token = $1",
    )
    .bind(job.lease_token)
    .bind(ending.outcome.as_str())
    .bind(ending.error_json()?)
    .bind(report.outcome.status_code.map(i32::from))
    .bind(ending.result())
    .bind(decision.retry)
    .bind(decision.reason.as_str())
    .bind(ms(decision.raw_delay))
    .bind(decision.jitter_factor)
    .bind(ms(decision.delay))
    .bind(record.decided_by.as_str())
    .bind(rescheduled)
    .bind(decision.message.as_deref())
    .bind(job.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The answer to a report whose token is not the job's current lease: the
/// stored answer when the same call already finished this attempt, the
/// cancellation when the job was cancelled under this lease, otherwise a
/// recorded, refused call.
pub(super) async fn answer_stale(
    tx: &mut Tx,
    job: &Job,
    token: i64,
    call: Call,
) -> Result<Resolution, Error> {
    if let Some(previous) = previous(tx, job.id, token, call).await? {
        return Ok(previous);
    }
    if job.state == JobState::Cancelled && job.lease_token == Some(token) {
        return Ok(resolve::cancelled(job));
    }
    fence(tx, job, token, call.as_str()).await?;
    Err(stale(job, token))
}

/// The resolution a same-token call already produced, if any.
async fn previous(
    tx: &mut Tx,
    job_id: i64,
    token: i64,
    call: Call,
) -> Result<Option<Resolution>, Error> {
    let row: Option<AttemptRow> =
        sqlx::query_as("SELECT * FROM attempts WHERE job_id = $1 AND lease_token = $2")
            .bind(job_id)
            .bind(token)
            .fetch_optional(&mut **tx)
            .await?;
    let attempt = row.map(Attempt::try_from).transpose()?;
    Ok(attempt.and_then(|attempt| resolve::repeated(attempt, call)))
}
