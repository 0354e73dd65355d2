//! Task executors: what runs one attempt of a job, by task kind.
//!
//! An executor turns a [`Task`] into a [`TaskOutput`]: the result the retry
//! expressions see as `result`, the HTTP status when there is one, and the
//! failure when the attempt failed. Executors never panic on bad payloads:
//! those are `INVALID_TASK` failures. Cancelling an attempt is dropping its
//! future; the python executor's child process dies with it.

mod http;
mod noop;
mod python;

use std::time::Duration;

use serde_json::{Map, Value};

pub use http::HttpExecutor;
pub use python::{PythonExecutor, PythonSettings};

/// One attempt of a job, as an executor sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Task {
    /// The task kind (`python`, `http`, `noop`).
    pub kind: String,
    /// The task's fields, templates already rendered by the broker.
    pub payload: Map<String, Value>,
    /// `workload` and earlier steps' results by step name.
    pub context: Map<String, Value>,
    /// Which job and attempt this is.
    pub job: JobInfo,
}

/// The identity of an attempt, visible to python code as its job context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobInfo {
    /// The job's id.
    pub job_id: i64,
    /// The execution's id; 0 for a bare job.
    pub execution_id: i64,
    /// The playbook step; empty for a bare job.
    pub step: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Attempts allowed in all.
    pub max_attempts: u32,
}

/// What an attempt produced.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutput {
    /// The task's whole result (shapes in `worker/README.md`).
    pub result: Value,
    /// The HTTP status, for an HTTP task that got a response.
    pub status_code: Option<u16>,
    /// The failure; `None` when the attempt succeeded.
    pub error: Option<TaskError>,
}

impl TaskOutput {
    /// A successful attempt.
    pub fn success(result: Value) -> Self {
        TaskOutput {
            result,
            status_code: None,
            error: None,
        }
    }

    /// A failed attempt without a result.
    pub fn failure(error: TaskError) -> Self {
        TaskOutput {
            result: Value::Null,
            status_code: None,
            error: Some(error),
        }
    }

    /// Whether the attempt succeeded.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// A failure as the task saw it; mirrors the proto `TaskError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    /// Which kind of failure.
    pub kind: ErrorKind,
    /// The exception type (`ValueError`) or a short class (`HTTPError`).
    pub error_type: String,
    /// The human-readable message, e.g. `HTTP 503: Service Unavailable`.
    pub message: String,
    /// A python stack trace; empty otherwise.
    pub traceback: String,
}

impl TaskError {
    /// A failure of `kind` with a type and message and no traceback.
    pub fn new(kind: ErrorKind, error_type: &str, message: impl Into<String>) -> Self {
        TaskError {
            kind,
            error_type: error_type.to_owned(),
            message: message.into(),
            traceback: String::new(),
        }
    }

    /// A payload the executor cannot use.
    pub fn invalid(message: impl Into<String>) -> Self {
        TaskError::new(ErrorKind::InvalidTask, "InvalidTask", message)
    }

    /// The task ran past its timeout.
    pub fn timeout(after: Duration) -> Self {
        let message = format!("task timed out after {:.3}s", after.as_secs_f64());
        TaskError::new(ErrorKind::Timeout, "Timeout", message)
    }
}

/// What kind of failure ended an attempt; the proto `ErrorKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The task's code raised (a python exception, a noop told to fail).
    Exception,
    /// An HTTP task got a status outside 2xx.
    HttpStatus,
    /// The task ran past its timeout and was stopped.
    Timeout,
    /// A connection or protocol error reaching what the task calls.
    Transport,
    /// The task's own definition could not be used.
    InvalidTask,
    /// The worker failed for a reason of its own.
    Internal,
}

/// Settings shared by every executor of a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorSettings {
    /// Timeout of a task whose payload sets no `timeout`.
    pub default_timeout: Duration,
    /// How python tasks run.
    pub python: PythonSettings,
}

/// Every executor of a worker, picked by task kind.
#[derive(Debug, Clone)]
pub struct Executors {
    default_timeout: Duration,
    python: PythonExecutor,
    http: HttpExecutor,
}

impl Executors {
    /// Builds the executors; fails only if the HTTP client cannot be built.
    pub fn new(settings: ExecutorSettings) -> Result<Self, crate::Error> {
        Ok(Executors {
            default_timeout: settings.default_timeout,
            python: PythonExecutor::new(settings.python),
            http: HttpExecutor::new()?,
        })
    }

    /// Runs one attempt to its end, its timeout included.
    pub async fn execute(&self, task: &Task) -> TaskOutput {
        let timeout = match timeout_of(&task.payload, self.default_timeout) {
            Ok(timeout) => timeout,
            Err(error) => return TaskOutput::failure(error),
        };
        match task.kind.as_str() {
            "python" => self.python.run(task, timeout).await,
            "http" => self.http.run(task, timeout).await,
            "noop" => noop::run(task, timeout).await,
            other => {
                TaskOutput::failure(TaskError::invalid(format!("unknown task kind `{other}`")))
            }
        }
    }
}

/// The payload's `timeout` in seconds, or the default when it is absent.
fn timeout_of(payload: &Map<String, Value>, default: Duration) -> Result<Duration, TaskError> {
    let Some(value) = payload.get("timeout").filter(|v| !v.is_null()) else {
        return Ok(default);
    };
    value
        .as_f64()
        .filter(|secs| secs.is_finite() && *secs > 0.0)
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| TaskError::invalid(format!("timeout must be seconds above 0, not {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn timeout_is_read_in_seconds_and_defaults_when_absent() {
        let default = Duration::from_secs(7);
        assert_eq!(timeout_of(&payload(json!({})), default), Ok(default));
        let half = timeout_of(&payload(json!({"timeout": 0.5})), default);
        assert_eq!(half, Ok(Duration::from_millis(500)));
    }

    #[test]
    fn a_negative_or_textual_timeout_is_an_invalid_task() {
        for bad in [json!(-1), json!("soon"), json!(0)] {
            let err = timeout_of(&payload(json!({"timeout": bad})), Duration::ZERO).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidTask);
        }
    }
}
