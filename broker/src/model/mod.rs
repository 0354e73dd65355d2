//! The broker's domain types. Protobuf types stay at the edge
//! (`service::convert`); the store and the services speak these.

mod vocab;

use std::time::Duration;

use baton_dsl::{Decision, Outcome, Reason, RetryPolicy};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use vocab::{AttemptOutcome, DecidedBy, ErrorKind, EventKind, ExecutionState, JobState};

/// A point in time, as stored.
pub type Timestamp = DateTime<Utc>;

/// A failure as the task saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskError {
    /// Which kind of failure.
    pub kind: ErrorKind,
    /// The exception type or short class; empty when none.
    #[serde(default, rename = "type")]
    pub error_type: String,
    /// The human-readable message.
    pub message: String,
    /// A stack trace; empty when none.
    #[serde(default)]
    pub traceback: String,
}

impl TaskError {
    /// An error of `kind` with `message` and nothing else.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TaskError {
            kind,
            error_type: String::new(),
            message: message.into(),
            traceback: String::new(),
        }
    }
}

/// A job as the store keeps it.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's id.
    pub id: i64,
    /// The execution it belongs to; `None` for a bare job.
    pub execution_id: Option<i64>,
    /// The playbook step; empty for a bare job.
    pub step: String,
    /// The queue it waits in.
    pub queue: String,
    /// The task kind.
    pub kind: String,
    /// Where it is in its life.
    pub state: JobState,
    /// Lower runs first.
    pub priority: i32,
    /// Runs started so far.
    pub attempts: u32,
    /// Runs allowed.
    pub max_attempts: u32,
    /// When it becomes (or became) due.
    pub available_at: Timestamp,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it reached a final state.
    pub finished_at: Option<Timestamp>,
    /// The task's rendered fields.
    pub payload: Value,
    /// The result of the attempt that finished it.
    pub result: Option<Value>,
    /// The last failure.
    pub last_error: Option<TaskError>,
    /// The reason of the last decision.
    pub last_reason: Option<Reason>,
    /// The retry policy it runs under.
    pub retry: RetryPolicy,
    /// The idempotency key it was enqueued with.
    pub idempotency_key: Option<String>,
    /// The current (or last) lease token.
    pub lease_token: Option<i64>,
    /// When the current lease expires; `None` unless leased.
    pub lease_expires_at: Option<Timestamp>,
    /// W3C `traceparent` the job continues; empty if none.
    pub traceparent: String,
}

/// A job just leased to a worker.
#[derive(Debug, Clone)]
pub struct LeasedJob {
    /// The job, in state leased; `attempts` is this attempt's number.
    pub job: Job,
    /// The fresh lease token.
    pub lease_token: i64,
    /// What the task may read: `workload` and earlier steps' results.
    pub context: Value,
}

/// A bare job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The queue; `default` when empty.
    pub queue: String,
    /// The task kind.
    pub kind: String,
    /// The task's fields.
    pub payload: Value,
    /// Lower runs first.
    pub priority: i32,
    /// When it becomes due; now when `None`.
    pub run_at: Option<Timestamp>,
    /// Its retry policy.
    pub retry: RetryPolicy,
    /// Makes the enqueue happen once.
    pub idempotency_key: Option<String>,
}

/// One run of a job.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The run's number, from 1.
    pub number: u32,
    /// The worker that ran it.
    pub worker: String,
    /// The lease token it ran under.
    pub lease_token: i64,
    /// When it was leased.
    pub started_at: Timestamp,
    /// When it ended; `None` while it runs.
    pub finished_at: Option<Timestamp>,
    /// How it ended; `None` while it runs.
    pub outcome: Option<AttemptOutcome>,
    /// The failure.
    pub error: Option<TaskError>,
    /// The HTTP status.
    pub status_code: Option<u16>,
    /// The task's result.
    pub result: Option<Value>,
    /// The retry decision taken after it.
    pub decision: Option<DecisionRecord>,
    /// When the next attempt was scheduled.
    pub rescheduled_at: Option<Timestamp>,
}

/// A retry decision and who took it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    /// The decision, after the broker's clamps.
    pub decision: Decision,
    /// Who evaluated the policy.
    pub decided_by: DecidedBy,
}

/// What a worker reports when an attempt ends.
#[derive(Debug, Clone)]
pub struct Report {
    /// The outcome as the policy sees it.
    pub outcome: Outcome,
    /// The failure, for `Fail`.
    pub error: Option<TaskError>,
    /// The worker's own decision; `None` asks the broker to decide.
    pub decision: Option<WorkerDecision>,
}

/// A retry decision as a worker sent it, before the broker checks it
/// against the job's policy. Delays are signed: a negative one is clamped.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerDecision {
    /// Whether the worker wants another attempt.
    pub retry: bool,
    /// The rule the worker's policy evaluation gave.
    pub reason: Reason,
    /// The delay the worker asks for, in milliseconds.
    pub delay_ms: i64,
    /// The delay before jitter, in milliseconds.
    pub raw_delay_ms: i64,
    /// The jitter factor the worker drew.
    pub jitter_factor: f64,
    /// The worker's detail, if any.
    pub message: Option<String>,
}

/// What the broker did with a job after an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The job's state now.
    pub state: JobState,
    /// The rule that decided; `None` when no decision was taken.
    pub reason: Option<Reason>,
    /// The attempt that ended.
    pub attempt: u32,
    /// When the next attempt is due, if queued.
    pub available_at: Option<Timestamp>,
    /// The delay applied, if queued.
    pub delay: Option<Duration>,
    /// Why, in words.
    pub message: String,
}

/// Unfinished jobs, read for the queue-depth metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backlog {
    /// Jobs per queue and state, for the states `queued` and `leased`.
    pub depth: Vec<QueueDepth>,
    /// When the oldest current lease began; `None` when nothing is leased.
    pub oldest_lease: Option<Timestamp>,
}

/// How many jobs of one queue are in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    /// The queue.
    pub queue: String,
    /// The state: `queued` or `leased`.
    pub state: JobState,
    /// How many jobs.
    pub jobs: i64,
}

impl QueueDepth {
    /// A count as the store reads it: the queue, the state's word, the jobs.
    pub(crate) fn from_row(row: (String, String, i64)) -> Result<Self, crate::error::Error> {
        let (queue, state, jobs) = row;
        let state = state.parse().map_err(crate::error::Error::Corrupt)?;
        Ok(QueueDepth { queue, state, jobs })
    }
}

/// What a heartbeat tells the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatAnswer {
    /// The lease was extended to this time.
    Continue(Timestamp),
    /// The job was cancelled; stop.
    Cancelled,
}

/// A stored playbook version.
#[derive(Debug, Clone)]
pub struct PlaybookRecord {
    /// One id per path and version.
    pub id: i64,
    /// `metadata.path`.
    pub path: String,
    /// `metadata.name`.
    pub name: String,
    /// The version under its path, from 1.
    pub version: u32,
    /// The YAML text as registered.
    pub yaml: String,
    /// When it was registered.
    pub created_at: Timestamp,
    /// Step names, in document order.
    pub steps: Vec<String>,
}

/// An execution of a playbook.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The execution's id.
    pub id: i64,
    /// The playbook version's id.
    pub playbook_id: i64,
    /// The playbook's path.
    pub playbook_path: String,
    /// The playbook version.
    pub playbook_version: u32,
    /// Where it is in its life.
    pub state: ExecutionState,
    /// The merged workload.
    pub workload: Value,
    /// When it started.
    pub created_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// Why it failed.
    pub error: Option<String>,
    /// W3C `traceparent` of its trace.
    pub traceparent: String,
}

/// One entry of an execution's history.
#[derive(Debug, Clone)]
pub struct Event {
    /// Grows in the order events happened within an execution.
    pub id: i64,
    /// The execution.
    pub execution_id: i64,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: Timestamp,
    /// The step concerned; empty for execution events.
    pub step: String,
    /// The job concerned.
    pub job_id: Option<i64>,
    /// The attempt concerned.
    pub attempt: Option<u32>,
    /// Attempts allowed for the job.
    pub max_attempts: Option<u32>,
    /// The failure, if any.
    pub error: Option<TaskError>,
    /// The decision, if any.
    pub decision: Option<Decision>,
    /// When the job is due again, for `action_retry`.
    pub available_at: Option<Timestamp>,
}

/// Which jobs to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this state.
    pub state: Option<JobState>,
    /// Only this execution.
    pub execution_id: Option<i64>,
    /// Only this queue.
    pub queue: Option<String>,
    /// At most this many (1 to 1,000).
    pub limit: u32,
    /// Only ids below this one.
    pub before_id: Option<i64>,
}

/// Which executions to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Only this state.
    pub state: Option<ExecutionState>,
    /// Only this playbook path.
    pub playbook_path: Option<String>,
    /// At most this many (1 to 1,000).
    pub limit: u32,
    /// Only ids below this one.
    pub before_id: Option<i64>,
}

/// What one lease stream asks of a claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// The worker's name, recorded on each attempt.
    pub worker: String,
    /// The queues to take from.
    pub queues: Vec<String>,
    /// The task kinds it runs; empty means every kind.
    pub kinds: Vec<String>,
    /// Most jobs to lease.
    pub limit: u32,
    /// How long each lease lasts.
    pub lease_timeout: Duration,
}
