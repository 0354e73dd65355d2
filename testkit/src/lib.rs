//! What Baton's end-to-end tests share: a fresh database per test on the
//! throwaway Postgres that `scripts/test` starts, real `baton` processes
//! that are killed when the test ends, and a way to wait until a broker
//! answers its health check.
//!
//! Nothing here fakes a part users run: the broker, the workers, the
//! database and the HTTP servers are the real ones.

pub mod cluster;
pub mod http;
pub mod metrics;
pub mod postgres;
pub mod process;

pub use cluster::{Backend, Cluster, Flags, Node};
pub use metrics::Scrape;
/// The database client the cluster's helpers use, for tests that read the
/// store directly.
pub use sqlx;
