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

fn unreachable_database(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
    )
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

    #[test]
    fn stale_tokens_are_failed_preconditions() {
        let status = Status::from(Error::StaleToken {
            job_id: 1,
            token: 2,
        });
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    }
}
