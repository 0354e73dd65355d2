//! Shared helpers of the worker's integration tests: executors wired to
//! the local CPython, task builders, and the real broker served in-process
//! with the clients, playbooks and event waits the runtime tests use.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub(crate) mod api;
pub(crate) mod broker;
pub(crate) mod gate;
pub(crate) mod logs;
pub(crate) mod worker;

use std::future::Future;
use std::time::Duration;

use baton_proto::convert;
use baton_proto::v1;
use baton_worker::executor::{ExecutorSettings, Executors, JobInfo, PythonSettings, Task};
use serde_json::{Map, Value};

/// How long a test waits for something that should happen promptly. Long
/// enough for a worker's reconnect backoff (up to 5 s a pause) to pass.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// Awaits `future`, failing the test if it takes longer than [`DEADLINE`].
pub(crate) async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// Executors as a worker builds them, with a 256 MiB python limit.
pub(crate) fn executors() -> Executors {
    Executors::new(ExecutorSettings {
        default_timeout: Duration::from_secs(30),
        python: PythonSettings {
            executable: "python3".into(),
            memory_limit: Some(256 << 20),
        },
    })
    .expect("executors build")
}

/// A task of `kind` with `payload`, as attempt 1 of 3 of step `probe`.
pub(crate) fn task(kind: &str, payload: Value) -> Task {
    Task {
        kind: kind.to_owned(),
        payload: object(payload),
        context: Map::new(),
        job: JobInfo {
            job_id: 7,
            execution_id: 11,
            step: "probe".to_owned(),
            attempt: 1,
            max_attempts: 3,
        },
    }
}

/// The JSON object `value`, which must be one.
pub(crate) fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("a JSON object")
}

/// A wire retry policy with 100 ms initial delay doubling, no jitter.
pub(crate) fn wire_policy(max_attempts: u32, retry_when: &str, stop_when: &str) -> v1::RetryPolicy {
    v1::RetryPolicy {
        max_attempts,
        initial_delay: Some(convert::to_duration(Duration::from_millis(100))),
        backoff_multiplier: 2.0,
        max_delay: Some(convert::to_duration(Duration::from_secs(5))),
        jitter: false,
        retry_when: retry_when.to_owned(),
        stop_when: stop_when.to_owned(),
    }
}
