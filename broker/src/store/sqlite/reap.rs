//! Expiring leases whose worker went silent: each is an attempt that ended
//! with error kind `lease_expired`, through the job's retry policy,
//! evaluated by the broker.

use super::Lite;
use super::rows::JobRow;
use super::rows::at;
use crate::error::Error;
use crate::model::{Job, Timestamp};
use crate::store::resolve::{Ending, Reaped};

impl Lite {
    pub(crate) async fn expired(&self, limit: u32) -> Result<Vec<i64>, Error> {
        let ids = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'leased' AND lease_expires_at <= ?2
             ORDER BY lease_expires_at LIMIT ?1",
        )
        .bind(i64::from(limit))
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    pub(crate) async fn next_expiry(&self) -> Result<Option<Timestamp>, Error> {
        let ms: Option<i64> =
            sqlx::query_scalar("SELECT min(lease_expires_at) FROM jobs WHERE state = 'leased'")
                .fetch_one(&self.pool)
                .await?;
        ms.map(at).transpose()
    }

    /// Expires job `id`'s lease unless it was finished or heartbeated
    /// meanwhile. Postgres locks the execution and skips a job being reaped
    /// elsewhere; here the write transaction excludes every other writer,
    /// so reading the row again inside it is enough.
    pub(crate) async fn reap(&self, id: i64) -> Result<Option<Reaped>, Error> {
        let mut tx = self.begin().await?;
        let row: Option<JobRow> = sqlx::query_as(
            "SELECT * FROM jobs WHERE id = ?1 AND state = 'leased' AND lease_expires_at <= ?2",
        )
        .bind(id)
        .bind(tx.now)
        .fetch_optional(tx.conn())
        .await?;
        let Some(job) = row.map(Job::try_from).transpose()? else {
            return Ok(None);
        };
        let resolution = self.finish(&mut tx, &job, Ending::expired(&job)).await?;
        self.commit(tx).await?;
        Ok(Some(Reaped {
            job_id: id,
            resolution,
        }))
    }
}
