//! Executions and workflow progression: a done job's result joins the
//! execution's context, the steps its `next` leads to are enqueued in the
//! same transaction, and the execution ends when nothing is left.

use serde_json::{Map, Value, json};

use super::events::record;
use super::rows::{ExecutionRow, JobRow};
use super::{Pg, Tx, lock_execution};
use crate::error::Error;
use crate::flow::{self, Planned, PlannedJob};
use crate::model::{
    EventKind, Execution, ExecutionFilter, ExecutionState, Job, PlaybookRecord, TaskError,
};
use crate::store::events::NewEvent;
use crate::store::rows::stored_count;
use crate::store::workflow::{self, PLAYBOOK_QUEUE};

impl Pg {
    pub(crate) async fn run(
        &self,
        playbook: &PlaybookRecord,
        overrides: Option<Map<String, Value>>,
        traceparent: &str,
    ) -> Result<Execution, Error> {
        let mut tx = self.begin().await?;
        let parsed = self.playbook(&mut tx, playbook.id).await?;
        let workload = workflow::merge(&parsed.workload, overrides);
        let planned = flow::start(&parsed, &json!({ "workload": workload }));
        workflow::check_start(&planned)?;
        let execution = insert_execution(&mut tx, playbook, &workload, traceparent).await?;
        let started = NewEvent::execution(execution.id, EventKind::ExecutionStarted);
        record(&mut tx, started);
        enqueue_planned(&mut tx, &execution, planned).await?;
        complete_if_idle(&mut tx, execution.id).await?;
        tx.commit().await?;
        self.get_execution(execution.id).await
    }

    pub(crate) async fn get_execution(&self, id: i64) -> Result<Execution, Error> {
        let row: Option<ExecutionRow> = sqlx::query_as("SELECT * FROM executions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| Error::not_found("execution", id))?
            .try_into()
    }

    pub(crate) async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>, Error> {
        let rows: Vec<ExecutionRow> = sqlx::query_as(
            "SELECT * FROM executions
             WHERE ($1::text IS NULL OR state = $1)
               AND ($2::text IS NULL OR playbook_path = $2)
               AND ($3::bigint IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(filter.state.map(ExecutionState::as_str))
        .bind(filter.playbook_path.as_deref())
        .bind(filter.before_id)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Execution::try_from).collect()
    }

    pub(crate) async fn cancel_execution(&self, id: i64) -> Result<Execution, Error> {
        let mut tx = self.begin().await?;
        lock_execution(&mut tx, id).await?;
        let cancelled = sqlx::query(
            "UPDATE executions SET state = 'cancelled', finished_at = now()
             WHERE id = $1 AND state = 'running'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if cancelled.rows_affected() > 0 {
            let cancelled = NewEvent::execution(id, EventKind::ExecutionCancelled);
            record(&mut tx, cancelled);
            cancel_remaining(&mut tx, id).await?;
        }
        tx.commit().await?;
        self.get_execution(id).await
    }

    /// Records `job`'s step as completed and moves the execution on.
    pub(super) async fn step_done(
        &self,
        tx: &mut Tx,
        job: &Job,
        result: &Value,
    ) -> Result<(), Error> {
        record(tx, NewEvent::job(job, EventKind::StepCompleted));
        let Some(execution_id) = job.execution_id else {
            return Ok(());
        };
        let row: Option<(Value, i64)> = sqlx::query_as(
            "UPDATE executions SET context = context || jsonb_build_object($2::text, $3::jsonb)
             WHERE id = $1 AND state = 'running'
             RETURNING context, playbook_id",
        )
        .bind(execution_id)
        .bind(&job.step)
        .bind(result)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((context, playbook_id)) = row else {
            return Ok(());
        };
        let parsed = self.playbook(tx, playbook_id).await?;
        let planned = flow::after(&parsed, &job.step, &context);
        let execution = execution_row(tx, execution_id).await?;
        if enqueue_planned(tx, &execution, planned).await? {
            complete_if_idle(tx, execution_id).await?;
        }
        Ok(())
    }
}

/// Records that `job`'s step failed, and with it the execution.
pub(super) async fn step_failed(
    tx: &mut Tx,
    job: &Job,
    error: Option<&TaskError>,
    why: &str,
) -> Result<(), Error> {
    let event = NewEvent::job(job, EventKind::StepFailed);
    record(tx, event.map(|e| e.maybe_error(error)));
    if let Some(execution_id) = job.execution_id {
        let message = workflow::step_failure(&job.step, why);
        fail_execution(tx, execution_id, &message, error).await?;
    }
    Ok(())
}

/// Reopens the failed execution of a requeued job.
pub(super) async fn reopen(tx: &mut Tx, job: &Job) -> Result<(), Error> {
    let Some(execution_id) = job.execution_id else {
        return Ok(());
    };
    let state: String = sqlx::query_scalar("SELECT state FROM executions WHERE id = $1")
        .bind(execution_id)
        .fetch_one(&mut **tx)
        .await?;
    workflow::check_reopen(execution_id, &state)?;
    sqlx::query(
        "UPDATE executions SET state = 'running', finished_at = NULL, error = NULL
         WHERE id = $1 AND state = 'failed'",
    )
    .bind(execution_id)
    .execute(&mut **tx)
    .await?;
    record(tx, NewEvent::started(job));
    Ok(())
}

async fn insert_execution(
    tx: &mut Tx,
    playbook: &PlaybookRecord,
    workload: &Value,
    traceparent: &str,
) -> Result<Execution, Error> {
    let row: ExecutionRow = sqlx::query_as(
        "INSERT INTO executions (playbook_id, playbook_path, playbook_version, workload, context,
            traceparent)
         VALUES ($1, $2, $3, $4, jsonb_build_object('workload', $4::jsonb), $5)
         RETURNING *",
    )
    .bind(playbook.id)
    .bind(&playbook.path)
    .bind(stored_count(playbook.version))
    .bind(workload)
    .bind(traceparent)
    .fetch_one(&mut **tx)
    .await?;
    row.try_into()
}

async fn execution_row(tx: &mut Tx, id: i64) -> Result<Execution, Error> {
    let row: ExecutionRow = sqlx::query_as("SELECT * FROM executions WHERE id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    row.try_into()
}

/// Enqueues the planned steps; returns false when one of them failed (and
/// with it the execution).
async fn enqueue_planned(
    tx: &mut Tx,
    execution: &Execution,
    planned: Vec<Planned>,
) -> Result<bool, Error> {
    for plan in planned {
        match plan {
            Planned::Job(job) => {
                let job = insert_step_job(tx, execution, &job).await?;
                record(tx, NewEvent::started(&job));
            }
            Planned::Failed { step, message } => {
                let error = workflow::planning_error(&message);
                let event = NewEvent::step(execution.id, &step, EventKind::StepFailed);
                record(tx, event.error(&error));
                let why = workflow::step_failure(&step, &message);
                fail_execution(tx, execution.id, &why, Some(&error)).await?;
                return Ok(false);
            }
        }
    }
    Ok(true)
}

async fn insert_step_job(
    tx: &mut Tx,
    execution: &Execution,
    job: &PlannedJob,
) -> Result<Job, Error> {
    let row: JobRow = sqlx::query_as(
        "INSERT INTO jobs (execution_id, step, queue, kind, payload, max_attempts, retry,
            traceparent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING *",
    )
    .bind(execution.id)
    .bind(&job.step)
    .bind(PLAYBOOK_QUEUE)
    .bind(&job.kind)
    .bind(&job.payload)
    .bind(stored_count(job.retry.max_attempts))
    .bind(job.retry.to_json())
    .bind(&execution.traceparent)
    .fetch_one(&mut **tx)
    .await?;
    row.try_into()
}

async fn fail_execution(
    tx: &mut Tx,
    execution_id: i64,
    message: &str,
    error: Option<&TaskError>,
) -> Result<(), Error> {
    let failed = sqlx::query(
        "UPDATE executions SET state = 'failed', error = $2, finished_at = now()
         WHERE id = $1 AND state = 'running'",
    )
    .bind(execution_id)
    .bind(message)
    .execute(&mut **tx)
    .await?;
    if failed.rows_affected() == 0 {
        return Ok(());
    }
    let event = NewEvent::execution(execution_id, EventKind::ExecutionFailed);
    record(tx, event.maybe_error(error));
    cancel_remaining(tx, execution_id).await
}

/// Cancels an execution's unfinished jobs and their running attempts.
async fn cancel_remaining(tx: &mut Tx, execution_id: i64) -> Result<(), Error> {
    sqlx::query(
        "WITH cancelled AS (
            UPDATE jobs SET state = 'cancelled', finished_at = now(), lease_expires_at = NULL,
                leased_by = NULL
            WHERE execution_id = $1 AND state IN ('queued', 'leased')
            RETURNING id, lease_token
         )
         UPDATE attempts a SET finished_at = now(), outcome = 'cancelled'
         FROM cancelled c
         WHERE a.job_id = c.id AND a.lease_token = c.lease_token AND a.finished_at IS NULL",
    )
    .bind(execution_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Completes the execution when none of its jobs is left to run.
async fn complete_if_idle(tx: &mut Tx, execution_id: i64) -> Result<(), Error> {
    let completed = sqlx::query(
        "UPDATE executions SET state = 'completed', finished_at = now()
         WHERE id = $1 AND state = 'running' AND NOT EXISTS (
            SELECT 1 FROM jobs WHERE execution_id = $1 AND state IN ('queued', 'leased'))",
    )
    .bind(execution_id)
    .execute(&mut **tx)
    .await?;
    if completed.rows_affected() > 0 {
        let completed = NewEvent::execution(execution_id, EventKind::ExecutionCompleted);
        record(tx, completed);
    }
    Ok(())
}
