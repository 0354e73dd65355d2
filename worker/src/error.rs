//! The errors that stop a worker.

/// Why [`run`](crate::run) returned without being asked to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable (a bad URL, zero concurrency, …).
    #[error("invalid worker configuration: {0}")]
    Config(String),

    /// The broker refused the worker for good (bad credentials, a protocol
    /// mismatch): reconnecting would be refused again.
    #[error("broker refused the worker: {code:?}: {message}")]
    Refused {
        /// The gRPC status code of the refusal.
        code: tonic::Code,
        /// The broker's message.
        message: String,
    },

    /// The metrics address could not be bound.
    #[error("binding the metrics address {addr}: {source}")]
    MetricsListen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn refused(status: &tonic::Status) -> Error {
        Error::Refused {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}
