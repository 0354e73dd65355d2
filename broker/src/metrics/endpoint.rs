//! The HTTP endpoint Prometheus scrapes: `GET /metrics` in the OpenMetrics
//! text format, which Prometheus asks for first.
//!
//! The queue depth is read when scraped rather than by a timer: it is one
//! grouped count over the partial indexes of queued and leased jobs, so it
//! costs in proportion to the backlog, never to the history, and nothing
//! runs while nobody scrapes. Readings are reused for a second so that many
//! scrapers (or a scrape storm) cost at most one query a second per broker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use super::Metrics;
use crate::error::Error;
use crate::store::Store;

/// How long a database reading serves scrapes before it is read again.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds the metrics address.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::MetricsListen { addr, source })
}

/// Serves one broker's metrics.
#[derive(Debug)]
pub(crate) struct Exporter {
    registry: Registry,
    metrics: Arc<Metrics>,
    store: Store,
    /// When the database was last read; held across a scrape so that
    /// concurrent scrapes never interleave a reading with an encoding.
    refreshed: Mutex<Option<Instant>>,
}

impl Exporter {
    /// An exporter of `metrics`, reading the backlog from `store`.
    pub(crate) fn new(metrics: Arc<Metrics>, store: Store) -> Self {
        Exporter {
            registry: metrics.registry(),
            metrics,
            store,
            refreshed: Mutex::new(None),
        }
    }

    /// Answers scrapes on `listener` until dropped.
    pub(crate) async fn serve(self, listener: TcpListener) {
        let app = Router::new()
            .route("/metrics", get(scrape))
            .with_state(Arc::new(self));
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(error = %err, "Metrics endpoint stopped");
        }
    }

    async fn render(&self) -> Result<String, std::fmt::Error> {
        let mut refreshed = self.refreshed.lock().await;
        if refreshed.is_none_or(|at| at.elapsed() >= REFRESH_EVERY) {
            match self.store.backlog().await {
                Ok(backlog) => {
                    self.metrics.set_backlog(&backlog, chrono::Utc::now());
                    *refreshed = Some(Instant::now());
                }
                // The last reading stays; the counters are still worth serving.
                Err(err) => tracing::warn!(error = %err, "Reading the queue depth failed"),
            }
        }
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

async fn scrape(State(exporter): State<Arc<Exporter>>) -> Response {
    match exporter.render().await {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
