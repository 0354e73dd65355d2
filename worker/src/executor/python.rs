//! The `python` task: the step's `code` in a real CPython process.
//!
//! One process per attempt runs the embedded runner script
//! (`src/python/runner.py`), which reads a JSON envelope on stdin, calls the
//! code's `main` with the arguments its signature asks for, and writes the
//! outcome to a file named in the envelope, so the code's own prints cannot
//! corrupt it. The process is killed on timeout and when the attempt is
//! dropped (cancelled, lease lost, shutdown).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;

use super::{ErrorKind, Task, TaskError, TaskOutput};

/// The runner script, passed to `python -c`.
const RUNNER: &str = include_str!("../python/runner.py");

/// How much of the code's stdout and stderr is kept, from the end.
const TAIL_BYTES: usize = 64 * 1024;

/// How long to wait for output pipes to close once the process is gone
/// (a grandchild the code started may hold them open).
const PIPE_DRAIN: Duration = Duration::from_secs(1);

/// How python tasks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonSettings {
    /// The CPython executable.
    pub executable: PathBuf,
    /// RLIMIT_AS of each process in bytes; `None` for no limit.
    pub memory_limit: Option<u64>,
}

/// Runs `python` tasks, one process per attempt.
#[derive(Debug, Clone)]
pub struct PythonExecutor {
    settings: PythonSettings,
}

/// How the process ended.
#[derive(Debug)]
enum Exit {
    Exited(ExitStatus),
    TimedOut,
}

impl PythonExecutor {
    /// An executor running processes with `settings`.
    pub fn new(settings: PythonSettings) -> Self {
        PythonExecutor { settings }
    }

    /// Runs the task's code to its end or until `timeout`.
    pub async fn run(&self, task: &Task, timeout: Duration) -> TaskOutput {
        match self.attempt(task, timeout).await {
            Ok(output) => output,
            Err(error) => TaskOutput::failure(error),
        }
    }

    async fn attempt(&self, task: &Task, timeout: Duration) -> Result<TaskOutput, TaskError> {
        let dir = tempfile::tempdir().map_err(|err| internal("creating a temp dir", &err))?;
        let result_path = dir.path().join("result.json");
        let envelope = self.envelope(task, &result_path)?;

        let mut child = self.spawn()?;
        let stdout = tail(child.stdout.take());
        let stderr = tail(child.stderr.take());
        let stdin = child.stdin.take();
        let exit = wait(&mut child, stdin, envelope, timeout).await?;

        let stdout = collect(stdout).await;
        let stderr = collect(stderr).await;
        Ok(outcome(&result_path, exit, timeout, stdout, stderr).await)
    }

    fn envelope(&self, task: &Task, result_path: &Path) -> Result<Vec<u8>, TaskError> {
        let code = task
            .payload
            .get("code")
            .and_then(Value::as_str)
            .ok_or_else(|| TaskError::invalid("a python task needs its `code` as text"))?;
        let name = if task.job.step.is_empty() {
            "python"
        } else {
            &task.job.step
        };
        let envelope = json!({
            "code": code,
            "filename": format!("<{name}>"),
            "result_path": result_path,
            "memory_limit": self.settings.memory_limit,
            "inputs": inputs(task)?,
        });
        serde_json::to_vec(&envelope).map_err(|err| internal("encoding the envelope", &err))
    }

    fn spawn(&self) -> Result<Child, TaskError> {
        Command::new(&self.settings.executable)
            .arg("-c")
            .arg(RUNNER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| {
                let what = format!("starting `{}`", self.settings.executable.display());
                internal(&what, &err)
            })
    }
}

/// The values `main` can ask for: `with` (or `data`), the workload,
/// earlier results by step name, and the job context.
fn inputs(task: &Task) -> Result<Value, TaskError> {
    let with = match task
        .payload
        .get("with")
        .or_else(|| task.payload.get("data"))
    {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(map)) => Value::Object(map.clone()),
        Some(other) => {
            return Err(TaskError::invalid(format!(
                "`with` must be a mapping, not {other}"
            )));
        }
    };
    let workload = task.context.get("workload").cloned().unwrap_or(json!({}));
    let results: Map<String, Value> = task
        .context
        .iter()
        .filter(|(key, _)| key.as_str() != "workload")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let job = &task.job;
    let context = json!({
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "execution_id": job.execution_id,
        "job_id": job.job_id,
        "step": job.step,
    });
    Ok(json!({"with": with, "workload": workload, "results": results, "context": context}))
}

/// Feeds the envelope and waits for the process, killing it on timeout.
async fn wait(
    child: &mut Child,
    stdin: Option<ChildStdin>,
    envelope: Vec<u8>,
    timeout: Duration,
) -> Result<Exit, TaskError> {
    let run = async {
        if let Some(mut stdin) = stdin {
            // A write error means the process already died; its exit says why.
            let _ = stdin.write_all(&envelope).await;
        }
        child.wait().await
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(status)) => Ok(Exit::Exited(status)),
        Ok(Err(err)) => Err(internal("waiting for python", &err)),
        Err(_) => {
            // Kill errors only mean the process is already gone.
            let _ = child.kill().await;
            Ok(Exit::TimedOut)
        }
    }
}

/// Reads a pipe to its end, keeping the last [`TAIL_BYTES`].
fn tail<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> JoinHandle<String> {
    tokio::spawn(async move {
        let Some(mut pipe) = pipe else {
            return String::new();
        };
        let mut kept = Vec::new();
        let mut chunk = vec![0; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
            kept.extend_from_slice(&chunk[..n]);
            if kept.len() > 2 * TAIL_BYTES {
                kept.drain(..kept.len() - TAIL_BYTES);
            }
        }
        let start = kept.len().saturating_sub(TAIL_BYTES);
        String::from_utf8_lossy(&kept[start..]).into_owned()
    })
}

async fn collect(reader: JoinHandle<String>) -> String {
    let abort = reader.abort_handle();
    match tokio::time::timeout(PIPE_DRAIN, reader).await {
        Ok(Ok(text)) => text,
        _ => {
            abort.abort();
            String::new()
        }
    }
}

/// The attempt's output from the result file and how the process ended.
async fn outcome(
    result_path: &Path,
    exit: Exit,
    timeout: Duration,
    stdout: String,
    stderr: String,
) -> TaskOutput {
    let reported = tokio::fs::read(result_path).await.ok();
    let reported = reported.and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let (data, error) = match (reported, exit) {
        (_, Exit::TimedOut) => (Value::Null, Some(TaskError::timeout(timeout))),
        (Some(report), Exit::Exited(_)) => from_report(report),
        (None, Exit::Exited(status)) => (Value::Null, Some(died(status, &stderr))),
    };
    TaskOutput {
        result: json!({"data": data, "stdout": stdout, "stderr": stderr}),
        status_code: None,
        error,
    }
}

fn from_report(mut report: Value) -> (Value, Option<TaskError>) {
    if report.get("ok") == Some(&Value::Bool(true)) {
        return (report["data"].take(), None);
    }
    let field = |key: &str| report["error"][key].as_str().unwrap_or_default().to_owned();
    let error = TaskError {
        kind: ErrorKind::Exception,
        error_type: field("type"),
        message: field("message"),
        traceback: field("traceback"),
    };
    (Value::Null, Some(error))
}

/// A process that ended without writing its result: killed by a signal,
/// `os._exit`, or a runner that could not start.
fn died(status: ExitStatus, stderr: &str) -> TaskError {
    let last = stderr.lines().rev().find(|line| !line.trim().is_empty());
    let mut message = format!("python exited ({status}) without a result");
    if let Some(last) = last {
        message = format!("{message}: {last}");
    }
    TaskError::new(ErrorKind::Exception, "ProcessExited", message)
}

fn internal(what: &str, err: &dyn std::error::Error) -> TaskError {
    TaskError::new(ErrorKind::Internal, "WorkerError", format!("{what}: {err}"))
}
