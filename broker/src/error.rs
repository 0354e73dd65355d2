//! The broker's error type: one variant per way a request can go wrong.
//! `service::status` maps it to gRPC status codes in one place.

use crate::config::ConfigError;

/// Everything the broker's domain can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or could not run a query.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration could not be applied or reverted.
    #[error("migrating: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The gRPC server could not start or stopped with an error.
    #[error("serving: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The named record does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for: `job`, `execution`, `playbook`.
        what: &'static str,
        /// The id or path asked for.
        id: String,
    },
    /// The request is malformed; the message says which field and why.
    #[error("{0}")]
    InvalidArgument(String),
    /// A lease token that is not the job's current lease; the call was
    /// recorded and changed nothing.
    #[error("lease token {token} is not the current lease of job {job_id}")]
    StaleToken {
        /// The job named in the call.
        job_id: i64,
        /// The token the caller sent.
        token: i64,
    },
    /// The record is not in a state that allows the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The metrics address could not be bound.
    #[error("binding the metrics address {addr}: {source}")]
    MetricsListen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// A stored value the broker cannot read back (a bug or a hand edit).
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl Error {
    /// A [`Error::NotFound`] for `what` with `id`.
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            what,
            id: id.to_string(),
        }
    }
}
