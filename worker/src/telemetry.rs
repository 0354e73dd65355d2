//! Process-wide tracing and OpenTelemetry setup, for the worker and the
//! broker alike.
//!
//! [`init`] installs a `tracing` subscriber that logs to stderr (filtered
//! by `RUST_LOG`, `info` by default) and, when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set, exports spans over OTLP gRPC. It also installs the W3C trace
//! context propagator, so `traceparent` headers and job fields continue
//! traces. The returned guard flushes and shuts the exporter down on drop.

use std::io::IsTerminal;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// Log levels, for [`init_logging_at`].
pub use tracing_subscriber::filter::LevelFilter as LogLevel;

/// The environment variable naming the OTLP gRPC collector.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Keeps span export alive; dropping it flushes pending spans and shuts
/// the exporter down. Drop it on a multi-threaded runtime or outside any
/// runtime: the flush blocks its thread while the exporter sends.
#[derive(Debug)]
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are exported (an endpoint was set and the exporter
    /// could be built).
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends every finished span now.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(err) = provider.force_flush()
        {
            tracing::warn!(error = %err, "Flushing spans failed");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("shutting down span export: {err}");
        }
    }
}

/// Sets up logging and span export for `service_name`, with the collector
/// from `OTEL_EXPORTER_OTLP_ENDPOINT` (none: logs only). Call it once, from
/// within a Tokio runtime; a second call keeps the first subscriber.
pub fn init(service_name: &str) -> TelemetryGuard {
    init_logging_at(service_name, LevelFilter::INFO)
}

/// [`init`] with another default log level, for commands whose own output
/// should not be drowned by logs (`baton dev --run` logs warnings only);
/// `RUST_LOG` still wins.
pub fn init_logging_at(service_name: &str, default_level: LevelFilter) -> TelemetryGuard {
    let endpoint = std::env::var(OTLP_ENDPOINT_ENV)
        .ok()
        .filter(|e| !e.trim().is_empty());
    install(service_name, endpoint.as_deref(), default_level)
}

/// [`init`] with the collector given explicitly (`None`: logs only).
pub fn init_with_endpoint(service_name: &str, endpoint: Option<&str>) -> TelemetryGuard {
    install(service_name, endpoint, LevelFilter::INFO)
}

fn install(service_name: &str, endpoint: Option<&str>, level: LevelFilter) -> TelemetryGuard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = endpoint.and_then(|endpoint| provider(service_name, endpoint));

    // Colour only for a person watching; log files and pipes get plain text.
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(env_filter(level));
    // Spans are exported whatever RUST_LOG says: the filter is for logs.
    let spans = provider.as_ref().map(|provider| {
        opentelemetry::global::set_tracer_provider(provider.clone());
        let tracer = provider.tracer(service_name.to_owned());
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(LevelFilter::INFO)
    });
    let installed = Registry::default().with(logs).with(spans).try_init();
    if installed.is_err() {
        tracing::debug!("A tracing subscriber was already installed; keeping it");
    }
    TelemetryGuard { provider }
}

fn env_filter(level: LevelFilter) -> EnvFilter {
    EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy()
}

fn provider(service_name: &str, endpoint: &str) -> Option<SdkTracerProvider> {
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build();
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("span export disabled: building the OTLP exporter for {endpoint}: {err}");
            return None;
        }
    };
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
}
