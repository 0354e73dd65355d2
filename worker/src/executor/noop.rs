//! The `noop` task: completes with a fixed result, optionally after a sleep
//! or failing its first attempts. It exists so tests and demos can exercise
//! retries, heartbeats, timeouts and cancellation without real work.
//!
//! Payload: `result` (any JSON, the `data` of the result), `fail` (`true`
//! fails every attempt, an integer N fails attempts 1..=N), `sleep_ms`.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{ErrorKind, Task, TaskError, TaskOutput};

/// Runs a `noop` task: sleeps, then succeeds or fails as its payload says.
pub(super) async fn run(task: &Task, timeout: Duration) -> TaskOutput {
    let (sleep, fails) = match parse(&task.payload) {
        Ok(parsed) => parsed,
        Err(error) => return TaskOutput::failure(error),
    };

    if sleep > timeout {
        tokio::time::sleep(timeout).await;
        return TaskOutput::failure(TaskError::timeout(timeout));
    }
    tokio::time::sleep(sleep).await;

    let attempt = task.job.attempt;
    let result = json!({"data": task.payload.get("result").cloned().unwrap_or(Value::Null)});
    if fails(attempt) {
        let message = format!("noop failed attempt {attempt} as asked");
        let error = TaskError::new(ErrorKind::Exception, "NoopFailure", message);
        return TaskOutput {
            result,
            status_code: None,
            error: Some(error),
        };
    }
    TaskOutput::success(result)
}

type FailRule = Box<dyn Fn(u32) -> bool + Send>;

fn parse(payload: &Map<String, Value>) -> Result<(Duration, FailRule), TaskError> {
    let sleep = match payload.get("sleep_ms") {
        None | Some(Value::Null) => Duration::ZERO,
        Some(value) => value
            .as_u64()
            .map(Duration::from_millis)
            .ok_or_else(|| TaskError::invalid(format!("sleep_ms must be a count, not {value}")))?,
    };
    let fails: FailRule = match payload.get("fail") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Box::new(|_| false),
        Some(Value::Bool(true)) => Box::new(|_| true),
        Some(value) => {
            let n = value.as_u64().ok_or_else(|| {
                TaskError::invalid(format!("fail must be true or a count, not {value}"))
            })?;
            Box::new(move |attempt| u64::from(attempt) <= n)
        }
    };
    Ok((sleep, fails))
}
