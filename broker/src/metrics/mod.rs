//! The broker's Prometheus metrics, served on `metrics_listen` at
//! `/metrics` (names and meanings in `docs/glossary.md`, "Metrics").
//!
//! Counters move where the event happens: a lease when the claim statement
//! returns it, an ending from the [`Resolution`] the store returns for a
//! report or a reap. So they count what the database did, on either
//! backend. Each broker counts its own; sum them across brokers. The queue
//! depth and the oldest lease age are the database's, read when scraped,
//! and the same on every broker sharing it: aggregate them with `max`.

mod endpoint;
mod ledger;

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use self::ledger::{Ledger, Seen};
use crate::model::{Backlog, JobState, LeasedJob, Resolution};
use crate::store::Call;

pub(crate) use endpoint::{Exporter, bind};

type Labels<const N: usize> = [(&'static str, String); N];

/// Every metric the broker keeps; cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct Metrics {
    leases: Counter,
    completions: Counter,
    failures: Family<Labels<1>, Counter>,
    retries: Counter,
    dead: Counter,
    expirations: Counter,
    lease_to_complete: Histogram,
    queue_depth: Family<Labels<2>, Gauge>,
    oldest_lease_age: Gauge<f64, AtomicU64>,
    ledger: Ledger,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            leases: Counter::default(),
            completions: Counter::default(),
            failures: Family::default(),
            retries: Counter::default(),
            dead: Counter::default(),
            expirations: Counter::default(),
            // 5 ms to about 3 minutes, doubling.
            lease_to_complete: Histogram::new(exponential_buckets(0.005, 2.0, 16)),
            queue_depth: Family::default(),
            oldest_lease_age: Gauge::default(),
            ledger: Ledger::default(),
        }
    }
}

impl Metrics {
    /// A registry of handles to these metrics (they share their values).
    pub(crate) fn registry(&self) -> Registry {
        let mut r = Registry::default();
        // Counters get their `_total` suffix from the encoder.
        r.register("baton_leases", "Leases granted", self.leases.clone());
        r.register("baton_completions", "Jobs done", self.completions.clone());
        let failures = "Failed attempts (reports and expired leases) by decision reason";
        r.register("baton_failures", failures, self.failures.clone());
        r.register(
            "baton_retries",
            "Attempts rescheduled",
            self.retries.clone(),
        );
        r.register("baton_dead_jobs", "Jobs gone dead", self.dead.clone());
        let expired = "Leases expired by the reaper";
        r.register("baton_lease_expirations", expired, self.expirations.clone());
        let latency = "Seconds from a lease to its successful Complete";
        let histogram = self.lease_to_complete.clone();
        r.register("baton_lease_to_complete_seconds", latency, histogram);
        let depth = "Unfinished jobs by queue and state, in the database";
        r.register("baton_queue_depth", depth, self.queue_depth.clone());
        let age = "Seconds since the oldest current lease began, in the database";
        let oldest = self.oldest_lease_age.clone();
        r.register("baton_oldest_lease_age_seconds", age, oldest);
        r
    }

    /// Counts jobs a claim statement just leased.
    pub(crate) fn leased(&self, jobs: &[LeasedJob]) {
        for job in jobs {
            self.ledger.leased(job.lease_token);
        }
        self.leases.inc_by(jobs.len() as u64);
    }

    /// Counts a report's resolution, once per lease token.
    pub(crate) fn reported(&self, call: Call, token: i64, resolution: &Resolution) {
        let Seen::First(age) = self.ledger.reported(token) else {
            return;
        };
        if let (Call::Complete, Some(age)) = (call, age) {
            self.lease_to_complete.observe(age.as_secs_f64());
        }
        self.resolved(call == Call::Fail, resolution);
    }

    /// Counts a lease the reaper expired.
    pub(crate) fn reaped(&self, resolution: &Resolution) {
        self.expirations.inc();
        self.resolved(true, resolution);
    }

    /// Forgets a lease handed back without an attempt.
    pub(crate) fn released(&self, token: i64) {
        self.ledger.forget(token);
    }

    /// Replaces the queue depth and lease age with a fresh reading.
    pub(crate) fn set_backlog(&self, backlog: &Backlog, now: crate::model::Timestamp) {
        self.queue_depth.clear();
        for depth in &backlog.depth {
            let labels = [
                ("queue", depth.queue.clone()),
                ("state", depth.state.as_str().to_owned()),
            ];
            self.queue_depth.get_or_create(&labels).set(depth.jobs);
        }
        let age = backlog.oldest_lease.map_or(0.0, |at| {
            (now - at).to_std().map_or(0.0, |age| age.as_secs_f64())
        });
        self.oldest_lease_age.set(age);
    }

    /// Counts what the broker did with a job after an attempt ended. A
    /// cancelled job took no decision and counts nowhere.
    fn resolved(&self, failed: bool, resolution: &Resolution) {
        if let (true, Some(reason)) = (failed, resolution.reason) {
            let labels = [("reason", reason.as_str().to_owned())];
            self.failures.get_or_create(&labels).inc();
        }
        match resolution.state {
            JobState::Queued => self.retries.inc(),
            JobState::Done => self.completions.inc(),
            JobState::Dead => self.dead.inc(),
            JobState::Leased | JobState::Cancelled => 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use baton_dsl::Reason;
    use prometheus_client::encoding::text::encode;

    use super::*;
    use crate::model::QueueDepth;

    fn text(metrics: &Metrics) -> String {
        let mut text = String::new();
        encode(&mut text, &metrics.registry()).unwrap();
        text
    }

    fn resolution(state: JobState, reason: Reason) -> Resolution {
        Resolution {
            state,
            reason: Some(reason),
            attempt: 1,
            available_at: None,
            delay: None,
            message: String::new(),
        }
    }

    #[test]
    fn a_report_repeated_with_the_same_token_is_counted_once() {
        let metrics = Metrics::default();
        let retried = resolution(JobState::Queued, Reason::Default);
        metrics.reported(Call::Fail, 7, &retried);
        metrics.reported(Call::Fail, 7, &retried);
        let text = text(&metrics);
        assert!(text.contains("baton_retries_total 1\n"), "{text}");
        assert!(text.contains("baton_failures_total{reason=\"default\"} 1\n"));
    }

    #[test]
    fn an_expired_lease_is_a_failure_by_its_reason() {
        let metrics = Metrics::default();
        metrics.reaped(&resolution(JobState::Dead, Reason::AttemptsExhausted));
        let text = text(&metrics);
        assert!(text.contains("baton_lease_expirations_total 1\n"), "{text}");
        assert!(text.contains("baton_dead_jobs_total 1\n"));
        assert!(text.contains("baton_failures_total{reason=\"attempts_exhausted\"} 1\n"));
    }

    #[test]
    fn a_backlog_reading_replaces_the_previous_one() {
        let metrics = Metrics::default();
        let now = chrono::Utc::now();
        let depth = |queue: &str, jobs| QueueDepth {
            queue: queue.to_owned(),
            state: JobState::Queued,
            jobs,
        };
        let first = Backlog {
            depth: vec![depth("a", 4)],
            oldest_lease: Some(now - Duration::from_secs(5)),
        };
        metrics.set_backlog(&first, now);
        let text1 = text(&metrics);
        assert!(text1.contains("baton_queue_depth{queue=\"a\",state=\"queued\"} 4\n"));
        assert!(
            text1.contains("baton_oldest_lease_age_seconds 5.0\n"),
            "{text1}"
        );

        let second = Backlog {
            depth: vec![depth("b", 1)],
            oldest_lease: None,
        };
        metrics.set_backlog(&second, now);
        let text2 = text(&metrics);
        assert!(!text2.contains("queue=\"a\""), "{text2}");
        assert!(text2.contains("baton_oldest_lease_age_seconds 0.0\n"));
    }
}
