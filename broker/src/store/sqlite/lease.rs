//! Heartbeats, releases and the fence that refuses stale tokens.

use std::time::Duration;

use super::rows::{JobRow, at};
use super::{Lite, Tx};
use crate::error::Error;
use crate::model::{HeartbeatAnswer, Job, JobState};
use crate::store::leases::{current, stale, warn_fenced};
use crate::store::rows::ms;

impl Lite {
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
        self.commit(tx).await?;
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
        self.commit(tx).await?;
        answer
    }
}

/// Reads the job row alone: heartbeats and releases record no events, so
/// Postgres locks only the job; here the write transaction is the lock.
async fn lock_job_only(tx: &mut Tx, id: i64) -> Result<Job, Error> {
    let row: Option<JobRow> = sqlx::query_as("SELECT * FROM jobs WHERE id = ?1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.ok_or_else(|| Error::not_found("job", id))?.try_into()
}

async fn extend(
    tx: &mut Tx,
    job_id: i64,
    lease_timeout: Duration,
) -> Result<HeartbeatAnswer, Error> {
    let expires = tx.now.saturating_add(ms(lease_timeout));
    sqlx::query("UPDATE jobs SET lease_expires_at = ?2 WHERE id = ?1")
        .bind(job_id)
        .bind(expires)
        .execute(tx.conn())
        .await?;
    Ok(HeartbeatAnswer::Continue(at(expires)?))
}

/// Queues the job again at once and un-charges the attempt.
async fn hand_back(tx: &mut Tx, job: &Job) -> Result<JobState, Error> {
    sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = attempts - 1, available_at = ?2,
            lease_expires_at = NULL, leased_by = NULL
         WHERE id = ?1",
    )
    .bind(job.id)
    .bind(tx.now)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE attempts SET finished_at = ?2, outcome = 'released' WHERE lease_token = ?1",
    )
    .bind(job.lease_token)
    .bind(tx.now)
    .execute(tx.conn())
    .await?;
    Ok(JobState::Queued)
}

async fn refuse<T>(tx: &mut Tx, job: &Job, token: i64, call: &str) -> Result<T, Error> {
    fence(tx, job, token, call).await?;
    Err(stale(job, token))
}

/// Records a call refused for its stale `token`.
pub(super) async fn fence(tx: &mut Tx, job: &Job, token: i64, call: &str) -> Result<(), Error> {
    warn_fenced(job, token, call);
    sqlx::query(
        "INSERT INTO fenced_calls (job_id, call, lease_token, current_token, job_state, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(job.id)
    .bind(call)
    .bind(token)
    .bind(job.lease_token)
    .bind(job.state.as_str())
    .bind(tx.now)
    .execute(tx.conn())
    .await?;
    Ok(())
}
