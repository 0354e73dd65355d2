//! Wake-ups without LISTEN/NOTIFY. The schema's triggers write into the
//! `wakeups` table what Postgres's triggers would `pg_notify`; each write
//! transaction drains it just before committing and fires [`Signals`] once
//! the commit succeeded, so subscribers hear only of committed jobs and
//! events, as with Postgres.

use std::collections::HashSet;
use std::future::Future;

use super::{Lite, Tx};
use crate::error::Error;
use crate::model::Timestamp;
use crate::store::{JobWake, Signals};

/// One drained row of `wakeups`.
#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct Wakeup {
    id: i64,
    channel: String,
    queue: Option<String>,
    available_at: Option<i64>,
    execution_id: Option<i64>,
}

impl Lite {
    /// Nothing outside this process writes to the database while it runs
    /// (the embedded store is one process), and every commit of this
    /// process already fires its signals, so there is nothing to listen
    /// to: the returned loop stays pending until dropped. It exists so the
    /// broker starts both backends the same way.
    pub(crate) async fn listen(
        &self,
        _signals: &Signals,
    ) -> Result<impl Future<Output = ()> + Send + 'static, Error> {
        Ok(std::future::pending())
    }
}

/// Empties `wakeups` inside `tx`, oldest first.
pub(super) async fn drain(tx: &mut Tx) -> Result<Vec<Wakeup>, Error> {
    let mut rows: Vec<Wakeup> = sqlx::query_as("DELETE FROM wakeups RETURNING *")
        .fetch_all(tx.conn())
        .await?;
    rows.sort_by_key(|row| row.id);
    Ok(rows)
}

/// Sends each distinct wake-up once, in order: Postgres folds identical
/// notifications of one transaction the same way.
pub(super) fn fire(signals: &Signals, wakeups: Vec<Wakeup>) {
    let mut seen = HashSet::new();
    for wakeup in wakeups {
        let key = (
            wakeup.channel.clone(),
            wakeup.queue.clone(),
            wakeup.available_at,
        );
        if !seen.insert((key, wakeup.execution_id)) {
            continue;
        }
        // Sends fail only when nobody subscribes, which is not an error.
        match wakeup.channel.as_str() {
            "baton_jobs" => {
                let _ = signals.jobs.send(job_wake(wakeup));
            }
            _ => {
                let _ = signals.events.send(wakeup.execution_id.unwrap_or(0));
            }
        }
    }
}

fn job_wake(wakeup: Wakeup) -> JobWake {
    let at = wakeup
        .available_at
        .and_then(Timestamp::from_timestamp_millis);
    match (wakeup.queue, at) {
        (Some(queue), Some(at)) => JobWake::Due { queue, at },
        _ => JobWake::All,
    }
}
