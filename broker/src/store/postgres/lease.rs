//! Heartbeats, releases and the fence that refuses stale tokens.

use std::time::Duration;

use super::rows::JobRow;
use super::{Pg, Tx};
use crate::error::Error;
use crate::model::{HeartbeatAnswer, Job, JobState};
use crate::store::leases::{current, stale, warn_fenced};
use crate::store::rows::ms;

impl Pg {
    pub(crate) async fn heartbeat(
        &self,
        job_id: i64,
        token: i64,
        lease_timeout: Duration,
    ) -> Result<HeartbeatAnswer, Error> {
        let mut tx = self.begin().await?;
        let job = lock_job_only(&mut tx, job_id).await?;
        let answer = match current(&job, token) {
            Some(JobState::Leased) => extend(&mut tx, job_id, lease_timeout).await,
            Some(JobState::Cancelled) => Ok(HeartbeatAnswer::Cancelled),
            _ => refuse(&mut tx, &job, token, "heartbeat").await,
        };
        tx.commit().await?;
        answer
    }

    pub(crate) async fn release(&self, job_id: i64, token: i64) -> Result<JobState, Error> {
        let mut tx = self.begin().await?;
        let job = lock_job_only(&mut tx, job_id).await?;
        let answer = match current(&job, token) {
            Some(JobState::Leased) => hand_back(&mut tx, &job).await,
            Some(JobState::Cancelled) => Ok(JobState::Cancelled),
            _ => refuse(&mut tx, &job, token, "release").await,
        };
        tx.commit().await?;
        answer
    }
}

/// Locks the job row alone: heartbeats and releases record no events, so
/// they need not wait for the execution.
async fn lock_job_only(tx: &mut Tx, id: i64) -> Result<Job, Error> {
    let row: Option<JobRow> = sqlx::query_as("SELECT * FROM jobs WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.ok_or_else(|| Error::not_found("job", id))?.try_into()
}

async fn extend(
    tx: &mut Tx,
    job_id: i64,
    lease_timeout: Duration,
) -> Result<HeartbeatAnswer, Error> {
    let expires = sqlx::query_scalar(
        "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $2::float8 / 1000)
         WHERE id = $1 RETURNING lease_expires_at",
    )
    .bind(job_id)
    .bind(ms(lease_timeout))
    .fetch_one(&mut **tx)
    .await?;
    Ok(HeartbeatAnswer::Continue(expires))
}

/// Queues the job again at once and un-charges the attempt.
async fn hand_back(tx: &mut Tx, job: &Job) -> Result<JobState, Error> {
    sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = attempts - 1, available_at = now(),
            lease_expires_at = NULL, leased_by = NULL
         WHERE id = $1",
    )
    .bind(job.id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE attempts SET finished_at = now(), outcome = 'released'
         WHERE job_id = $1 AND lease_token = $2",
    )
    .bind(job.id)
    .bind(job.lease_token)
    .execute(&mut **tx)
    .await?;
    Ok(JobState::Queued)
}

async fn refuse<T>(tx: &mut Tx, job: &Job, token: i64, call: &str) -> Result<T, Error> {
    fence(tx, job, token, call).await?;
    Err(stale(job, token))
}

/// Records a call refused for its stale `token`.
pub(crate) async fn fence(tx: &mut Tx, job: &Job, token: i64, call: &str) -> Result<(), Error> {
    warn_fenced(job, token, call);
    sqlx::query(
        "INSERT INTO fenced_calls (job_id, call, lease_token, current_token, job_state)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(job.id)
    .bind(call)
    .bind(token)
    .bind(job.lease_token)
    .bind(job.state.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
