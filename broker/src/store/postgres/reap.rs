//! Expiring leases whose worker went silent: each is an attempt that ended
//! with error kind `lease_expired`, through the job's retry policy,
//! evaluated by the broker.

use super::rows::JobRow;
use super::{Pg, lock_execution};
use crate::error::Error;
use crate::model::{Job, Timestamp};
use crate::store::resolve::{Ending, Reaped};

impl Pg {
    pub(crate) async fn expired(&self, limit: u32) -> Result<Vec<i64>, Error> {
        let ids = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'leased' AND lease_expires_at <= now()
             ORDER BY lease_expires_at LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    pub(crate) async fn next_expiry(&self) -> Result<Option<Timestamp>, Error> {
        let at =
            sqlx::query_scalar("SELECT min(lease_expires_at) FROM jobs WHERE state = 'leased'")
                .fetch_one(&self.pool)
                .await?;
        Ok(at)
    }

    /// Expires job `id`'s lease unless it was finished, heartbeated or is
    /// being reaped elsewhere meanwhile (`SKIP LOCKED`).
    pub(crate) async fn reap(&self, id: i64) -> Result<Option<Reaped>, Error> {
        let mut tx = self.begin().await?;
        let execution: Option<Option<i64>> =
            sqlx::query_scalar("SELECT execution_id FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(Some(execution)) = execution {
            lock_execution(&mut tx, execution).await?;
        }
        let row: Option<JobRow> = sqlx::query_as(
            "SELECT * FROM jobs WHERE id = $1 AND state = 'leased' AND lease_expires_at <= now()
             FOR UPDATE SKIP LOCKED",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(job) = row.map(Job::try_from).transpose()? else {
            return Ok(None);
        };
        let resolution = self.finish(&mut tx, &job, Ending::expired(&job)).await?;
        tx.commit().await?;
        Ok(Some(Reaped {
            job_id: id,
            resolution,
        }))
    }
}
