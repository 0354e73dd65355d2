//! The Baton worker: leases jobs from a broker, runs each attempt with a
//! task executor (`python`, `http`, `noop`), decides from the job's retry
//! policy whether another attempt is worth it, and reports the outcome.
//!
//! The CLI calls [`run`] (or [`run_pool`] for `baton dev`) with a
//! [`WorkerConfig`], and [`telemetry::init`] once per process. The worker
//! protocol is `baton.v1.Broker` (see `proto/baton/v1/broker.proto`); the
//! result shapes the retry expressions see are listed in `worker/README.md`.

mod config;
mod error;
pub mod executor;
mod metrics;
pub mod policy;
mod runtime;
pub mod telemetry;

pub use config::WorkerConfig;
pub use error::Error;
pub use runtime::{run, run_pool};
