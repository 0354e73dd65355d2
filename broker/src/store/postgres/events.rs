//! Recording and reading an execution's events.

use sqlx::types::Json;

use super::rows::EventRow;
use super::{Pg, Tx};
use crate::error::Error;
use crate::model::Event;
use crate::store::events::NewEvent;

/// Writes a transaction's events in the order they were recorded: `nextval`
/// follows the order of the rows inserted.
const INSERT_EVENTS: &str = "
INSERT INTO events (execution_id, job_id, step, kind, attempt, max_attempts, details)
SELECT execution_id, job_id, step, kind, attempt, max_attempts, details
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::int[],
            $7::jsonb[])
    WITH ORDINALITY AS e(execution_id, job_id, step, kind, attempt, max_attempts, details, ord)
ORDER BY ord";

/// Records `event` in `tx` if there is one (bare jobs have none). It is
/// written when `tx` commits, with every other event of the transaction.
pub(super) fn record(tx: &mut Tx, event: impl Into<Option<NewEvent>>) {
    if let Some(event) = event.into() {
        tx.events.push(event);
    }
}

/// Writes the events recorded in `tx` with one statement.
pub(super) async fn flush(tx: &mut Tx) -> Result<(), Error> {
    let events = std::mem::take(&mut tx.events);
    if events.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&NewEvent) -> Option<i32>| events.iter().map(f).collect::<Vec<_>>();
    let (attempts, max_attempts) = (column(|e| e.attempt), column(|e| e.max_attempts));
    sqlx::query(INSERT_EVENTS)
        .bind(events.iter().map(|e| e.execution_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.job_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.step.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
        .bind(attempts)
        .bind(max_attempts)
        .bind(events.iter().map(|e| Json(&e.details)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Pg {
    pub(crate) async fn events(
        &self,
        execution_id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Event>, Error> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT * FROM events WHERE execution_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(execution_id)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Event::try_from).collect()
    }
}
