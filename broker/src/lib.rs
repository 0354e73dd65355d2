//! The Baton broker: the gRPC services workers and users talk to, the job
//! store behind them, leases, the reaper and workflow progression.
//!
//! The CLI composes it in three calls: [`BrokerConfig`] (validated once),
//! [`migrate`] to bring a database up to date, and [`Broker::connect`]
//! followed by [`Broker::serve`] on a bound listener.

pub mod auth;
mod config;
mod error;
mod flow;
mod health;
mod metrics;
mod migrate;
pub mod model;
mod policy;
mod reaper;
mod server;
mod service;
pub mod store;
pub mod validate;

pub use config::{BrokerConfig, ConfigError, ServerTls};
pub use error::Error;
pub use health::HealthConfig;
pub use migrate::{migrate, migrate_down};
pub use reaper::{ReapCounts, Reaper, ReaperConfig};
pub use server::Broker;
pub use store::Store;
