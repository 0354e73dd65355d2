//! The checks every request passes before it reaches the store. They need
//! no database, so the services, the fuzz target and the property tests
//! all run the very same functions: a refusal here is an
//! [`Error::InvalidArgument`] naming the field and why, and nothing has
//! been stored.

use baton_dsl::{Playbook, RetryPolicy};
use baton_proto::v1 as pb;

use crate::error::Error;
use crate::model::{NewJob, Report};
use crate::service::convert;
use crate::store::{Call, ReportItem};

/// Largest playbook text accepted, in bytes, as the proto documents.
pub const MAX_YAML_BYTES: usize = 1024 * 1024;
/// Most jobs one Enqueue may carry.
pub const MAX_BATCH: usize = 10_000;
/// Most credits one Lease message may grant.
pub const MAX_CREDITS: i32 = 10_000;

/// The playbook a Run names: by id, or by path and version (0: latest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaybookRef {
    /// A catalog id.
    Id(i64),
    /// A catalog path and version.
    Path {
        /// The playbook's path.
        path: String,
        /// The version; 0 means the latest.
        version: u32,
    },
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// A Register's playbook, parsed; every problem is one `line:col: path:
/// message` line.
pub fn register(request: &pb::RegisterPlaybookRequest) -> Result<Playbook, Error> {
    playbook(&request.yaml)
}

fn playbook(yaml: &str) -> Result<Playbook, Error> {
    if yaml.len() > MAX_YAML_BYTES {
        return Err(invalid(format!(
            "1:1: (document): document is {} bytes, more than the limit of {MAX_YAML_BYTES} bytes",
            yaml.len()
        )));
    }
    baton_dsl::parse_playbook(yaml).map_err(|diagnostics| invalid(diagnostics.to_string()))
}

/// An Enqueue's jobs: at least one, at most [`MAX_BATCH`], each valid.
pub fn enqueue(request: &pb::EnqueueJobsRequest) -> Result<Vec<NewJob>, Error> {
    match request.jobs.len() {
        0 => Err(invalid("jobs: at least one job is required")),
        n if n > MAX_BATCH => Err(invalid(format!(
            "jobs: {n} jobs is more than the limit of {MAX_BATCH}"
        ))),
        _ => request.jobs.iter().enumerate().map(job).collect(),
    }
}

/// Job `index` of an Enqueue: a task kind name and a valid retry block.
///
/// Kinds are open: a worker in any language may run kinds of its own
/// (`python`, `http` and `noop` are the Rust worker's), so only the name's
/// form is checked; a job of a kind no worker takes waits in its queue.
fn job((index, spec): (usize, &pb::JobSpec)) -> Result<NewJob, Error> {
    let kind = spec.kind.as_str();
    if !kind.trim().is_empty() && !is_kind_name(kind) {
        return Err(invalid(format!(
            "jobs[{index}].kind: `{}` is not a task kind name \
             (1 to 64 of a-z, 0-9, `_`, `-` and `.`)",
            kind.escape_debug()
        )));
    }
    let job = convert::new_job(index, spec)?;
    if has_nul(&job.payload)
        || job
            .idempotency_key
            .as_deref()
            .is_some_and(|k| k.contains('\0'))
    {
        return Err(invalid(format!(
            "jobs[{index}]: text may not contain the NUL character (U+0000), \
             which the store cannot hold"
        )));
    }
    Ok(job)
}

fn is_kind_name(kind: &str) -> bool {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c);
    kind.len() <= 64 && kind.chars().all(allowed)
}

/// A Complete's report.
pub fn complete(request: &pb::CompleteRequest) -> Result<Report, Error> {
    decision(request.decision.as_ref())?;
    let report = convert::report(true, request.outcome.as_ref(), request.decision.as_ref())?;
    storable(report)
}

/// A Fail's report; it must carry the task's error.
pub fn fail(request: &pb::FailRequest) -> Result<Report, Error> {
    decision(request.decision.as_ref())?;
    let report = convert::report(false, request.outcome.as_ref(), request.decision.as_ref())?;
    storable(report)
}

/// Refuses a report holding the NUL character, which Postgres text and
/// jsonb cannot store: refused here, on both stores alike, rather than
/// failing the write of every report committed with it.
fn storable(report: Report) -> Result<Report, Error> {
    let error = report.error.as_ref();
    let texts = [
        error.map(|e| e.error_type.as_str()),
        error.map(|e| e.message.as_str()),
        error.map(|e| e.traceback.as_str()),
        report.outcome.error.as_deref(),
        report.decision.as_ref().and_then(|d| d.message.as_deref()),
    ];
    if texts.into_iter().flatten().any(|t| t.contains('\0')) || has_nul(&report.outcome.result) {
        return Err(invalid(
            "report: text may not contain the NUL character (U+0000), which the store cannot hold",
        ));
    }
    Ok(report)
}

fn has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A worker's decision: its jitter factor must be a finite number. Its
/// delays may be anything; the broker clamps them against the policy.
fn decision(decision: Option<&pb::Decision>) -> Result<(), Error> {
    match decision {
        Some(d) if !d.jitter_factor.is_finite() || d.jitter_factor < 0.0 => Err(invalid(format!(
            "decision.jitter_factor: must be a finite number of at least 0, found {}",
            d.jitter_factor
        ))),
        _ => Ok(()),
    }
}

/// The playbook a Run names; a path or an id is required.
pub fn run(request: &pb::RunExecutionRequest) -> Result<PlaybookRef, Error> {
    if request.playbook_id != 0 {
        return Ok(PlaybookRef::Id(request.playbook_id));
    }
    if request.path.is_empty() {
        return Err(invalid("path or playbook_id is required"));
    }
    Ok(PlaybookRef::Path {
        path: request.path.clone(),
        version: request.version,
    })
}

/// The credits one Lease message grants: 0 to [`MAX_CREDITS`].
pub fn credits(credits: &pb::Credits) -> Result<u32, Error> {
    u32::try_from(credits.credits)
        .ok()
        .filter(|_| credits.credits <= MAX_CREDITS)
        .ok_or_else(|| {
            invalid(format!(
                "credits: must be between 0 and {MAX_CREDITS}, found {}",
                credits.credits
            ))
        })
}

/// A Lease stream's first message: a hello.
pub fn hello(request: &pb::LeaseRequest) -> Result<&pb::Hello, Error> {
    match &request.msg {
        Some(pb::lease_request::Msg::Hello(hello)) => Ok(hello),
        _ => Err(invalid("the first message of a lease stream must be hello")),
    }
}

/// What a later Lease message asks for.
#[derive(Debug)]
pub enum LeaseAsk {
    /// More credits.
    Credits(u32),
    /// Finished attempts, each checked on its own: a malformed report is
    /// refused alone, in its ack.
    Reports(Vec<Result<ReportItem, RefusedReport>>),
}

/// A report on a lease stream that failed its checks.
#[derive(Debug)]
pub struct RefusedReport {
    /// The job it named.
    pub job_id: i64,
    /// The token it carried.
    pub token: i64,
    /// Why it was refused.
    pub error: Error,
}

/// A later Lease message: credits, or reports (1 to [`MAX_BATCH`]).
pub fn lease_request(request: &pb::LeaseRequest) -> Result<LeaseAsk, Error> {
    match &request.msg {
        Some(pb::lease_request::Msg::Credits(c)) => credits(c).map(LeaseAsk::Credits),
        Some(pb::lease_request::Msg::Reports(r)) => reports(r).map(LeaseAsk::Reports),
        Some(pb::lease_request::Msg::Hello(_)) => Err(invalid("hello may only be sent once")),
        None => Err(invalid("empty lease request")),
    }
}

fn reports(reports: &pb::Reports) -> Result<Vec<Result<ReportItem, RefusedReport>>, Error> {
    let count = reports.reports.len();
    if count == 0 || count > MAX_BATCH {
        return Err(invalid(format!(
            "reports: must hold 1 to {MAX_BATCH} reports, found {count}"
        )));
    }
    Ok(reports.reports.iter().map(report).collect())
}

/// One report of a Reports message, checked as its unary call would be.
fn report(report: &pb::Report) -> Result<ReportItem, RefusedReport> {
    use pb::report::Report as Body;
    let (call, job_id, token, checked) = match &report.report {
        Some(Body::Complete(r)) => (Call::Complete, r.job_id, r.lease_token, complete(r)),
        Some(Body::Fail(r)) => (Call::Fail, r.job_id, r.lease_token, fail(r)),
        None => (
            Call::Complete,
            0,
            0,
            Err(invalid("report: complete or fail is required")),
        ),
    };
    match checked {
        Ok(report) => Ok(ReportItem {
            call,
            job_id,
            token,
            report,
        }),
        Err(error) => Err(RefusedReport {
            job_id,
            token,
            error,
        }),
    }
}

/// The retry policy a Simulate names: its retry block, or a playbook
/// step's (the named one, else the first with retries).
pub fn simulate(request: &pb::SimulateRequest) -> Result<RetryPolicy, Error> {
    if request.playbook_yaml.is_empty() {
        let block = request
            .retry
            .as_ref()
            .map(baton_proto::convert::from_value)
            .unwrap_or_default();
        return RetryPolicy::from_json(&block).map_err(|d| invalid(d.to_string()));
    }
    let playbook = playbook(&request.playbook_yaml)?;
    let step = if request.step.is_empty() {
        playbook.steps.iter().find(|s| s.retry.max_attempts > 1)
    } else {
        playbook.step(&request.step)
    };
    let step = step.ok_or_else(|| match request.step.as_str() {
        "" => invalid("no step of the playbook has a retry block"),
        name => invalid(format!("the playbook has no step `{name}`")),
    })?;
    Ok(step.retry.clone())
}
