//! Rows as SQLite returns them. Timestamps are stored as milliseconds
//! since the epoch (`INTEGER`) and step lists as JSON text; both restore
//! here, so the rest of the backend speaks the same domain types as
//! Postgres's.

use sqlx::types::Json;

use crate::error::Error;
use crate::model::Timestamp;
use crate::store::rows::{self, Restore};

/// A `jobs` row (`SELECT *`).
pub(super) type JobRow = rows::JobRow<i64>;
/// An `attempts` row.
pub(super) type AttemptRow = rows::AttemptRow<i64>;
/// A `playbooks` row.
pub(super) type PlaybookRow = rows::PlaybookRow<i64, Json<Vec<String>>>;
/// An `executions` row.
pub(super) type ExecutionRow = rows::ExecutionRow<i64>;
/// An `events` row.
pub(super) type EventRow = rows::EventRow<i64>;

impl Restore<Timestamp> for i64 {
    fn restore(self) -> Result<Timestamp, Error> {
        at(self)
    }
}

impl Restore<Vec<String>> for Json<Vec<String>> {
    fn restore(self) -> Result<Vec<String>, Error> {
        Ok(self.0)
    }
}

/// A stored millisecond count as a point in time.
pub(super) fn at(ms: i64) -> Result<Timestamp, Error> {
    Timestamp::from_timestamp_millis(ms)
        .ok_or_else(|| Error::Corrupt(format!("timestamp {ms} ms out of range")))
}

/// A point in time as stored, in whole milliseconds.
pub(super) fn stored(at: Timestamp) -> i64 {
    at.timestamp_millis()
}
