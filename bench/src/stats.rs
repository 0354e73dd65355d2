//! Measured windows and percentiles.

use std::time::Instant;

use serde_json::{Value, json};

use crate::deploy::Deployment;
use crate::procs;

/// CPU counters at one moment.
#[derive(Debug, Clone, Copy)]
struct Counters {
    at: Instant,
    broker_s: f64,
    workers_s: f64,
    postgres_s: f64,
}

impl Counters {
    fn read(d: &Deployment, postmaster: Option<u32>) -> Counters {
        let (broker_s, workers_s) = d.baton_cpu_s();
        Counters {
            at: Instant::now(),
            broker_s,
            workers_s,
            postgres_s: postmaster.map_or(0.0, procs::postgres_cpu_s),
        }
    }
}

/// An open measurement: the counters at its start.
#[derive(Debug)]
pub(crate) struct OpenWindow(Counters);

/// A measured stretch of time and the CPU each part used in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Its length in seconds.
    pub(crate) secs: f64,
    broker_cpu_s: f64,
    worker_cpu_s: f64,
    postgres_cpu_s: f64,
}

impl Window {
    /// Starts measuring `d` (and the Postgres of `postmaster`).
    pub(crate) fn open(d: &Deployment, postmaster: Option<u32>) -> OpenWindow {
        OpenWindow(Counters::read(d, postmaster))
    }

    /// The figures of a window in which `n` jobs ran.
    pub(crate) fn figures(&self, n: u32) -> Value {
        let total = self.broker_cpu_s + self.worker_cpu_s + self.postgres_cpu_s;
        let per_job = |s: f64| s * 1000.0 / f64::from(n);
        json!({
            "n": n,
            "secs": self.secs,
            "cpu_ms_per_job": per_job(total),
            "broker_cpu_ms_per_job": per_job(self.broker_cpu_s),
            "worker_cpu_ms_per_job": per_job(self.worker_cpu_s),
            "postgres_cpu_ms_per_job": per_job(self.postgres_cpu_s),
            "cpu_cores_busy": total / self.secs,
        })
    }
}

impl OpenWindow {
    /// Ends the measurement.
    pub(crate) fn close(self, d: &Deployment, postmaster: Option<u32>) -> Window {
        let end = Counters::read(d, postmaster);
        let start = self.0;
        Window {
            secs: end.at.duration_since(start.at).as_secs_f64(),
            broker_cpu_s: end.broker_s - start.broker_s,
            worker_cpu_s: end.workers_s - start.workers_s,
            postgres_cpu_s: end.postgres_s - start.postgres_s,
        }
    }
}

/// The `pct`th percentile of `values` (nearest rank); 0 for none.
pub(crate) fn percentile(values: &[f64], pct: usize) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (pct * sorted.len()).div_ceil(100);
    sorted[rank.clamp(1, sorted.len()) - 1]
}
