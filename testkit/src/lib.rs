//! What Baton's end-to-end tests share: a fresh database per test on the
//! throwaway Postgres that `scripts/test` starts (or on a server of the
//! test's own, for tests that stop it), real `baton` processes that are
//! killed when the test ends, a batch of randomly failing work, and the
//! invariants a run with faults must leave in the database.
//!
//! Nothing here fakes a part users run: the broker, the workers, the
//! database and the HTTP servers are the real ones.

pub mod batch;
pub mod cluster;
pub mod http;
pub mod invariants;
pub mod metrics;
pub mod pg_server;
pub mod postgres;
pub mod process;

pub use cluster::{Backend, Cluster, Flags, Node};
pub use invariants::Counts;
pub use metrics::Scrape;
pub use pg_server::PgServer;
/// The database client the cluster's helpers use, for tests that read the
/// store directly.
pub use sqlx;
