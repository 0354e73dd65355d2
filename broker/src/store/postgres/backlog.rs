//! The backlog the metrics read when scraped: unfinished jobs per queue
//! and state, and when the oldest current lease began.

use super::Pg;
use crate::error::Error;
use crate::model::{Backlog, QueueDepth, Timestamp};

/// Only `queued` and `leased` rows, one state at a time so that each
/// part reads the partial index holding that state: the cost follows the
/// backlog and never the finished history.
const DEPTH: &str = "
    SELECT queue, 'queued' AS state, count(*) FROM jobs WHERE state = 'queued' GROUP BY queue
    UNION ALL
    SELECT queue, 'leased', count(*) FROM jobs WHERE state = 'leased' GROUP BY queue";

/// A leased job's current attempt is the one under its lease token.
const OLDEST_LEASE: &str = "SELECT min(a.started_at) FROM jobs j
    JOIN attempts a ON a.job_id = j.id AND a.lease_token = j.lease_token WHERE j.state = 'leased'";

impl Pg {
    pub(crate) async fn backlog(&self) -> Result<Backlog, Error> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(DEPTH).fetch_all(&self.pool).await?;
        let oldest_lease: Option<Timestamp> = sqlx::query_scalar(OLDEST_LEASE)
            .fetch_one(&self.pool)
            .await?;
        let depth = rows.into_iter().map(QueueDepth::from_row);
        Ok(Backlog {
            depth: depth.collect::<Result<_, _>>()?,
            oldest_lease,
        })
    }
}
