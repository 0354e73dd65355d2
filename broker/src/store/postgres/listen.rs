//! One `LISTEN` connection per broker, turning Postgres notifications
//! (sent by triggers, so from any broker on the database) into [`Signals`].

use std::future::Future;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgNotification};

use super::Pg;
use crate::error::Error;
use crate::model::Timestamp;
use crate::store::{JobWake, Signals};

/// Pause after a failed receive before listening again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, serde::Deserialize)]
struct Queued {
    queue: String,
    available_at_ms: i64,
}

impl Pg {
    /// Starts listening now (so nothing committed after this returns is
    /// missed) and returns the loop that forwards notifications.
    pub(crate) async fn listen(
        &self,
        signals: &Signals,
    ) -> Result<impl Future<Output = ()> + Send + 'static, Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen_all(["baton_jobs", "baton_events"]).await?;
        let signals = signals.clone();
        Ok(async move { forward(listener, signals).await })
    }
}

async fn forward(mut listener: PgListener, signals: Signals) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => dispatch(&signals, &notification),
            // The connection was lost and is re-established on the next
            // call: whatever was sent meanwhile is gone, so look again.
            Ok(None) => signals.wake_all(),
            Err(err) => {
                tracing::warn!(error = %err, "Listening for notifications failed");
                tokio::time::sleep(RETRY_AFTER).await;
                signals.wake_all();
            }
        }
    }
}

fn dispatch(signals: &Signals, notification: &PgNotification) {
    // Sends fail only when nobody subscribes, which is not an error.
    match notification.channel() {
        "baton_jobs" => {
            let wake = serde_json::from_str::<Queued>(notification.payload())
                .ok()
                .and_then(|queued| {
                    let at = Timestamp::from_timestamp_millis(queued.available_at_ms)?;
                    Some(JobWake::Due {
                        queue: queued.queue,
                        at,
                    })
                })
                .unwrap_or(JobWake::All);
            let _ = signals.jobs.send(wake);
        }
        _ => {
            if let Ok(execution_id) = notification.payload().parse::<i64>() {
                let _ = signals.events.send(execution_id);
            }
        }
    }
}
