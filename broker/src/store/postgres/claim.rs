//! Claiming: one statement leases a batch, records its attempts and its
//! `action_started` events.

use serde_json::Value;

use super::Pg;
use super::rows::JobRow;
use crate::error::Error;
use crate::model::{ClaimRequest, Job, LeasedJob, Timestamp};
use crate::store::leases::leased_job;
use crate::store::rows::ms;

/// Picks due jobs in lease order (priority, available_at, id) with
/// `SKIP LOCKED`, so concurrent brokers never wait on nor share a job.
/// Each queue is read on its own, in the order of its claim index, so a
/// claim reads only the rows it takes however long the backlog (one scan
/// over `queue = ANY(..)` would sort every due job first). Jobs whose
/// execution is locked by a finishing job are skipped for this round
/// (`runnable`): their `action_started` must not slip between that
/// execution's other events. The same statement leases, inserts attempt
/// rows and events, and returns the leased jobs with their template
/// context.
const CLAIM: &str = "
WITH picked AS (
    SELECT c.id, c.execution_id
    FROM unnest($1::text[]) AS q(queue)
    CROSS JOIN LATERAL (
        SELECT id, execution_id, priority, available_at FROM jobs
        WHERE state = 'queued'
          AND queue = q.queue
          AND (cardinality($2::text[]) = 0 OR kind = ANY($2))
          AND available_at <= now()
          AND attempts < max_attempts
        ORDER BY priority, available_at, id
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    ) c
    ORDER BY c.priority, c.available_at, c.id
    LIMIT $3
), free_executions AS (
    SELECT id FROM executions
    WHERE id IN (SELECT execution_id FROM picked)
    FOR NO KEY UPDATE SKIP LOCKED
), runnable AS (
    SELECT id FROM picked
    WHERE execution_id IS NULL OR execution_id IN (SELECT id FROM free_executions)
), leased AS (
    UPDATE jobs j
    SET state = 'leased',
        attempts = j.attempts + 1,
        lease_token = nextval('lease_tokens'),
        leased_by = $4,
        lease_expires_at = now() + make_interval(secs => $5::float8 / 1000)
    FROM runnable r
    WHERE j.id = r.id
    RETURNING j.*
), attempt_rows AS (
    INSERT INTO attempts (job_id, number, lease_token, worker)
    SELECT id, attempts, lease_token, $4 FROM leased
), started AS (
    INSERT INTO events (execution_id, job_id, step, kind, attempt, max_attempts)
    SELECT execution_id, id, step, 'action_started', attempts, max_attempts
    FROM leased WHERE execution_id IS NOT NULL
    ORDER BY id
)
SELECT leased.*, COALESCE(x.context, '{}'::jsonb) AS context
FROM leased LEFT JOIN executions x ON x.id = leased.execution_id
ORDER BY leased.priority, leased.available_at, leased.id";

/// The earliest due time per queue, one index probe each.
const NEXT_DUE: &str = "
SELECT min(d.available_at)
FROM unnest($1::text[]) AS q(queue)
CROSS JOIN LATERAL (
    SELECT available_at FROM jobs
    WHERE state = 'queued'
      AND queue = q.queue
      AND (cardinality($2::text[]) = 0 OR kind = ANY($2))
      AND attempts < max_attempts
    ORDER BY available_at
    LIMIT 1
) d";

#[derive(Debug, sqlx::FromRow)]
struct LeasedRow {
    #[sqlx(flatten)]
    job: JobRow,
    context: Value,
}

impl Pg {
    pub(crate) async fn claim(&self, request: &ClaimRequest) -> Result<Vec<LeasedJob>, Error> {
        let rows: Vec<LeasedRow> = sqlx::query_as(CLAIM)
            .bind(&request.queues)
            .bind(&request.kinds)
            .bind(i64::from(request.limit))
            .bind(&request.worker)
            .bind(ms(request.lease_timeout))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(leased).collect()
    }

    pub(crate) async fn next_due(
        &self,
        queues: &[String],
        kinds: &[String],
    ) -> Result<Option<Timestamp>, Error> {
        let due = sqlx::query_scalar(NEXT_DUE)
            .bind(queues)
            .bind(kinds)
            .fetch_one(&self.pool)
            .await?;
        Ok(due)
    }
}

fn leased(row: LeasedRow) -> Result<LeasedJob, Error> {
    leased_job(Job::try_from(row.job)?, row.context)
}
