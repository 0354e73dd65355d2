//! In-process fan-out of the store's wake-ups: one listener per broker
//! feeds them, every lease stream and event watcher subscribes.

use std::sync::Arc;

use tokio::sync::{Notify, broadcast};

use crate::model::Timestamp;

/// Room for bursts; a receiver that lags is told so and re-reads.
const CAPACITY: usize = 4096;

/// A reason for lease streams to look for jobs again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobWake {
    /// A job in `queue` became (or becomes at `at`) due.
    Due {
        /// The job's queue.
        queue: String,
        /// When it is due.
        at: Timestamp,
    },
    /// Notifications may have been missed (a reconnect): look everywhere.
    All,
}

/// The broadcast channels of one store.
#[derive(Debug, Clone)]
pub struct Signals {
    pub(crate) jobs: broadcast::Sender<JobWake>,
    pub(crate) events: broadcast::Sender<i64>,
    /// Rings when this broker grants a lease, so the reaper re-arms its
    /// timer on the new expiry instead of sleeping its longest interval.
    pub(crate) leased: Arc<Notify>,
}

impl Signals {
    pub(crate) fn new() -> Self {
        Signals {
            jobs: broadcast::channel(CAPACITY).0,
            events: broadcast::channel(CAPACITY).0,
            leased: Arc::new(Notify::new()),
        }
    }

    /// Tells every subscriber to look again (after missed notifications).
    pub(crate) fn wake_all(&self) {
        // No subscriber is not an error: nobody waits.
        let _ = self.jobs.send(JobWake::All);
        // Execution id 0 never exists: it tells watchers to re-read.
        let _ = self.events.send(0);
    }
}
