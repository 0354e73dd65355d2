//! The backlog the metrics read when scraped: unfinished jobs per queue
//! and state, and when the oldest current lease began.

use super::Pg;
use crate::error::Error;
use crate::model::{Backlog, QueueDepth, Timestamp};

/// Only `queued` and `leased` rows, which the partial indexes hold, so the
/// cost follows the backlog and never the finished history.
const DEPTH: &str = "SELECT queue, state, count(*) FROM jobs
    WHERE state IN ('queued', 'leased') GROUP BY queue, state";

/// A leased job's current attempt is the one under its lease token.
const OLDEST_LEASE: &str = "SELECT min(a.started_at) FROM jobs j
    JOIN attempts a ON a.lease_token = j.lease_token WHERE j.state = 'leased'";

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
