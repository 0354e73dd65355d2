//! The reaper: expires leases whose worker stopped heartbeating, as River's
//! rescuer does. Its loop calls [`Reaper::run_once`], which tests call
//! directly instead of waiting for the loop.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::ConfigError;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::model::JobState;
use crate::store::Store;

/// How the reaper works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaperConfig {
    /// Most leases expired per batch (one transaction each). Default 100.
    pub batch_size: u32,
    /// Longest sleep between passes when no lease is known to expire
    /// sooner; also bounds how late a lease taken by another broker is
    /// reaped. Default 5 s.
    pub max_interval: Duration,
}

impl Default for ReaperConfig {
    fn default() -> Self {
        ReaperConfig {
            batch_size: 100,
            max_interval: Duration::from_secs(5),
        }
    }
}

impl ReaperConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_interval.is_zero() {
            return Err(ConfigError::ZeroDuration("reaper.max_interval"));
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(ConfigError::OutOfRange {
                field: "reaper.batch_size",
                value: self.batch_size.into(),
                min: 1,
                max: 10_000,
            });
        }
        Ok(())
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReapCounts {
    /// Expired leases whose job was queued again.
    pub retried: u32,
    /// Expired leases whose job went dead.
    pub dead: u32,
}

impl ReapCounts {
    /// Leases expired in all.
    pub fn total(self) -> u32 {
        self.retried + self.dead
    }
}

/// Expires leases past their `lease_expires_at`.
#[derive(Debug, Clone)]
pub struct Reaper {
    store: Store,
    config: ReaperConfig,
    metrics: Arc<Metrics>,
    /// The shortest lease this broker grants: a grant cannot expire
    /// before a timer set less than this far ahead.
    shortest_lease: Duration,
}

impl Reaper {
    /// A reaper over `store`.
    pub fn new(store: Store, config: ReaperConfig) -> Self {
        Reaper::with_metrics(store, config, Arc::default(), Duration::ZERO)
    }

    /// A reaper that counts what it expires in a broker's `metrics`.
    pub(crate) fn with_metrics(
        store: Store,
        config: ReaperConfig,
        metrics: Arc<Metrics>,
        shortest_lease: Duration,
    ) -> Self {
        Reaper {
            store,
            config,
            metrics,
            shortest_lease,
        }
    }

    /// Expires every lease that has expired now, batch after batch.
    pub async fn run_once(&self) -> Result<ReapCounts, Error> {
        let mut counts = ReapCounts::default();
        loop {
            let ids = self.store.expired(self.config.batch_size).await?;
            let mut reaped = 0;
            for id in &ids {
                if let Some(done) = self.store.reap(*id).await? {
                    reaped += 1;
                    self.metrics.reaped(&done.resolution);
                    match done.resolution.state {
                        JobState::Queued => counts.retried += 1,
                        _ => counts.dead += 1,
                    }
                }
            }
            if reaped == 0 || ids.len() < self.config.batch_size as usize {
                return Ok(counts);
            }
        }
    }

    /// Runs passes until the future is dropped, sleeping until the next
    /// known expiry or `max_interval`, whichever comes first; leases this
    /// broker grants re-arm the timer, those of other brokers are seen
    /// within `max_interval`.
    pub async fn run(self) {
        loop {
            match self.run_once().await {
                Ok(counts) if counts.total() > 0 => {
                    tracing::info!(
                        retried = counts.retried,
                        dead = counts.dead,
                        "Reaped expired leases"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "Reaping expired leases failed"),
            }
            self.wait_for_next_expiry().await;
        }
    }

    /// Sleeps until the earliest lease may have expired. A lease granted
    /// meanwhile may expire sooner than the timer was set for (when the
    /// timer is more than a lease away), and then the grant re-reads the
    /// earliest expiry; grants that come while the reaper is busy wake it
    /// once.
    async fn wait_for_next_expiry(&self) {
        let mut deadline = Instant::now() + self.pause().await;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                () = self.store.lease_granted() => {
                    if deadline > Instant::now() + self.shortest_lease {
                        deadline = Instant::now() + self.pause().await;
                    }
                }
            }
        }
    }

    async fn pause(&self) -> Duration {
        let next = self.store.next_expiry().await.ok().flatten();
        let until = next.map(|at| (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO));
        // A little after the expiry, so the lease is past due when read.
        let wait = until.map_or(self.config.max_interval, |d| d + Duration::from_millis(10));
        wait.min(self.config.max_interval)
    }
}
