//! Recording and reading an execution's events. Each insert also queues
//! a wake-up for the execution's watchers (the `events_notify` trigger).

use serde_json::Value;

use super::rows::EventRow;
use super::{Lite, Tx};
use crate::error::Error;
use crate::model::Event;
use crate::store::events::NewEvent;

/// Records `event` in `tx` if there is one (bare jobs have none).
pub(super) async fn record(tx: &mut Tx, event: impl Into<Option<NewEvent>>) -> Result<(), Error> {
    let Some(event) = event.into() else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO events (execution_id, job_id, step, kind, attempt, max_attempts, details,
            at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(event.execution_id)
    .bind(event.job_id)
    .bind(&event.step)
    .bind(event.kind.as_str())
    .bind(event.attempt)
    .bind(event.max_attempts)
    .bind(Value::Object(event.details))
    .bind(tx.now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

impl Lite {
    pub(crate) async fn events(
        &self,
        execution_id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Event>, Error> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT * FROM events WHERE execution_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )
        .bind(execution_id)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Event::try_from).collect()
    }
}
