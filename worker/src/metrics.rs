//! The worker's Prometheus metrics, served on `metrics_listen` at
//! `/metrics` (names and meanings in `docs/glossary.md`, "Metrics").
//!
//! An attempt is metered by a guard taken when it starts: dropping the
//! guard ends it, so an attempt aborted at shutdown (its job released)
//! still leaves the in-flight gauge and counts as `released`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::Error;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = [(&'static str, String); 1];

/// Every metric a worker process keeps; a pool's workers share one.
#[derive(Debug)]
pub(crate) struct Metrics {
    started: Family<Labels, Counter>,
    finished: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    reconnects: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Family::default(),
            finished: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            in_flight: Gauge::default(),
            reconnects: Counter::default(),
        }
    }
}

/// 5 ms to about 3 minutes, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

impl Metrics {
    fn registry(&self) -> Registry {
        let mut r = Registry::default();
        // Counters get their `_total` suffix from the encoder.
        let started = "Attempts started, by task kind";
        r.register(
            "baton_worker_attempts_started",
            started,
            self.started.clone(),
        );
        let finished = "Attempts ended, by outcome";
        r.register(
            "baton_worker_attempts_finished",
            finished,
            self.finished.clone(),
        );
        let duration = "Seconds a task ran, by task kind";
        r.register(
            "baton_worker_attempt_duration_seconds",
            duration,
            self.duration.clone(),
        );
        let in_flight = "Attempts running now";
        r.register(
            "baton_worker_attempts_in_flight",
            in_flight,
            self.in_flight.clone(),
        );
        let reconnects = "Times the lease stream was reopened after it broke or failed to open";
        r.register(
            "baton_worker_reconnects",
            reconnects,
            self.reconnects.clone(),
        );
        r
    }

    /// Meters an attempt of a `kind` task from now until the guard drops.
    pub(crate) fn start(self: &Arc<Self>, kind: &str) -> AttemptMeter {
        self.started
            .get_or_create(&[("kind", kind.to_owned())])
            .inc();
        self.in_flight.inc();
        AttemptMeter {
            metrics: self.clone(),
            kind: kind.to_owned(),
            outcome: "released",
        }
    }

    /// Counts one attempt to reopen the lease stream.
    pub(crate) fn reconnecting(&self) {
        self.reconnects.inc();
    }
}

/// One running attempt; dropping it ends the attempt's metering.
#[derive(Debug)]
pub(crate) struct AttemptMeter {
    metrics: Arc<Metrics>,
    kind: String,
    outcome: &'static str,
}

impl AttemptMeter {
    /// Records how long the task ran.
    pub(crate) fn ran(&self, elapsed: Duration) {
        let labels = [("kind", self.kind.clone())];
        let histogram = self.metrics.duration.get_or_create(&labels);
        histogram.observe(elapsed.as_secs_f64());
    }

    /// Says how the attempt ended: `succeeded`, `failed`, `cancelled` or
    /// `lease_lost`. Left unsaid, it ended `released`.
    pub(crate) fn ended(&mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for AttemptMeter {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
        let labels = [("outcome", self.outcome.to_owned())];
        self.metrics.finished.get_or_create(&labels).inc();
    }
}

/// The running endpoint; dropping it stops it.
#[derive(Debug)]
pub(crate) struct Exporter(JoinHandle<()>);

impl Drop for Exporter {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds `addr` and serves `metrics` on it until the exporter drops.
pub(crate) async fn serve(addr: SocketAddr, metrics: &Metrics) -> Result<Exporter, Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::MetricsListen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    // Tests read the address from this line, so its wording is fixed.
    tracing::info!(addr = %bound, "Metrics listening");
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(metrics.registry()));
    Ok(Exporter(tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(error = %err, "Metrics endpoint stopped");
        }
    })))
}

async fn scrape(State(registry): State<Arc<Registry>>) -> Response {
    let mut text = String::new();
    match encode(&mut text, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(metrics: &Metrics) -> String {
        let mut text = String::new();
        encode(&mut text, &metrics.registry()).unwrap();
        text
    }

    #[test]
    fn an_attempt_dropped_without_an_outcome_counts_as_released() {
        let metrics = Arc::new(Metrics::default());
        let meter = metrics.start("noop");
        assert!(text(&metrics).contains("baton_worker_attempts_in_flight 1"));
        drop(meter);
        let text = text(&metrics);
        assert!(text.contains("baton_worker_attempts_in_flight 0"), "{text}");
        assert!(text.contains(r#"baton_worker_attempts_finished_total{outcome="released"} 1"#));
        assert!(text.contains(r#"baton_worker_attempts_started_total{kind="noop"} 1"#));
    }

    #[test]
    fn a_finished_attempt_counts_its_outcome_and_duration() {
        let metrics = Arc::new(Metrics::default());
        let mut meter = metrics.start("http");
        meter.ran(Duration::from_millis(30));
        meter.ended("failed");
        drop(meter);
        let text = text(&metrics);
        assert!(text.contains(r#"baton_worker_attempts_finished_total{outcome="failed"} 1"#));
        assert!(text.contains(r#"baton_worker_attempt_duration_seconds_count{kind="http"} 1"#));
    }
}
