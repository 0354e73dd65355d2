//! Rows as Postgres returns them: `timestamptz` and `text[]` decode into
//! the domain's types already, so every row restores as it is.

use crate::model::Timestamp;
use crate::store::rows;

/// A `jobs` row (`SELECT *`).
pub(super) type JobRow = rows::JobRow<Timestamp>;
/// An `attempts` row.
pub(super) type AttemptRow = rows::AttemptRow<Timestamp>;
/// A `playbooks` row.
pub(super) type PlaybookRow = rows::PlaybookRow<Timestamp, Vec<String>>;
/// An `executions` row.
pub(super) type ExecutionRow = rows::ExecutionRow<Timestamp>;
/// An `events` row.
pub(super) type EventRow = rows::EventRow<Timestamp>;
