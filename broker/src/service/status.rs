//! The one mapping from domain errors to gRPC statuses. Internal errors
//! are logged with a reference number and reach clients only as that
//! number, never as SQL text.

use std::sync::atomic::{AtomicU64, Ordering};

use tonic::Status;

use crate::error::Error;

static REFS: AtomicU64 = AtomicU64::new(1);

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match err {
            Error::NotFound { .. } => Status::not_found(err.to_string()),
            Error::InvalidArgument(message) => Status::invalid_argument(message),
            Error::StaleToken { .. } | Error::FailedPrecondition(_) => {
                Status::failed_precondition(err.to_string())
            }
            Error::Database(ref db) if unreachable_database(db) => {
                let id = log(&err);
                Status::unavailable(format!("database unavailable (ref {id})"))
            }
            _ => Status::internal(format!("internal error (ref {})", log(&err))),
        }
    }
}

/// Whether `err` says the database could not be reached, or went away
/// under the call (a restart, a failover, a full connection table): the
/// same call may well succeed later, so the client is told to try again
/// rather than that the broker failed.
fn unreachable_database(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| connection_lost(&code)),
        _ => false,
    }
}

/// SQLSTATEs of a session the server ended or would not start: class 08
/// (connection exceptions), `53300` (too many connections), `57P01`,
/// `57P02`, `57P03` (shut down by an administrator or a crash, or not
/// accepting connections yet).
fn connection_lost(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
}

/// Logs `err` under a fresh reference number and returns the number.
fn log(err: &Error) -> u64 {
    let id = REFS.fetch_add(1, Ordering::Relaxed);
    tracing::error!(error = %err, error_ref = id, "Request failed with an internal error");
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_text() {
        let err = Error::Corrupt("SELECT secret FROM jobs".into());
        let status = Status::from(err);
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(status.message().starts_with("internal error (ref "));
        assert!(!status.message().contains("SELECT"));
    }

    /// A database error with only a SQLSTATE, as the server sends it.
    #[derive(Debug)]
    struct ServerError(&'static str);

    impl std::fmt::Display for ServerError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "server error {}", self.0)
        }
    }

    impl std::error::Error for ServerError {}

    impl sqlx::error::DatabaseError for ServerError {
        fn message(&self) -> &str {
            "terminating connection due to administrator command"
        }

        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }

        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }

        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn status_of(code: &'static str) -> tonic::Code {
        let err = sqlx::Error::Database(Box::new(ServerError(code)));
        Status::from(Error::Database(err)).code()
    }

    #[test]
    fn a_database_going_away_is_unavailable() {
        for code in ["57P01", "57P02", "57P03", "53300", "08006", "08001"] {
            assert_eq!(status_of(code), tonic::Code::Unavailable, "{code}");
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let status = Status::from(Error::Database(sqlx::Error::Io(refused)));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(!status.message().contains("refused"), "{status:?}");
    }

    #[test]
    fn a_query_the_database_refused_is_internal() {
        assert_eq!(status_of("23514"), tonic::Code::Internal);
        assert_eq!(status_of("42P01"), tonic::Code::Internal);
    }

    #[test]
    fn stale_tokens_are_failed_preconditions() {
        let status = Status::from(Error::StaleToken {
            job_id: 1,
            token: 2,
        });
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    }
}
