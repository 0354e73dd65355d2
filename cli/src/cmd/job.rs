//! `baton job list | get | requeue | cancel`.

use baton_proto::v1;
use chrono::DateTime;
use serde_json::Value;

use crate::args::ClientArgs;
use crate::client::{Clients, Failure};
use crate::output::{Printer, cell, table};
use crate::render;

const COLUMNS: &[(&str, &str)] = &[
    ("id", "ID"),
    ("execution_id", "EXECUTION"),
    ("step", "STEP"),
    ("kind", "KIND"),
    ("state", "STATE"),
    ("attempts", "ATTEMPTS"),
    ("max_attempts", "MAX"),
    ("available_at", "DUE"),
    ("last_error", "LAST ERROR"),
];

/// Filters for `baton job list`.
#[derive(Debug, Default)]
pub(crate) struct Filter<'a> {
    /// A job state word.
    pub(crate) state: Option<&'a str>,
    /// An execution id.
    pub(crate) execution: Option<i64>,
    /// A queue name.
    pub(crate) queue: Option<&'a str>,
    /// The most records to print.
    pub(crate) limit: u32,
}

/// Lists jobs, newest first.
pub(crate) async fn list(filter: Filter<'_>, client: &ClientArgs) -> Result<(), Failure> {
    let state = filter.state.map(parse_state).transpose()?;
    let mut clients = Clients::connect(client).await?;
    let request = v1::ListJobsRequest {
        state: state.unwrap_or_default().into(),
        execution_id: filter.execution.unwrap_or(0),
        queue: filter.queue.unwrap_or_default().to_owned(),
        limit: filter.limit,
        before_id: 0,
    };
    let reply = clients.jobs.list(request).await?.into_inner();
    let records: Vec<_> = reply.jobs.iter().map(render::job).collect();
    Printer::new(client.output).records(&records, COLUMNS);
    Ok(())
}

fn parse_state(word: &str) -> Result<v1::JobState, Failure> {
    let name = format!("JOB_STATE_{}", word.to_ascii_uppercase());
    v1::JobState::from_str_name(&name)
        .filter(|s| *s != v1::JobState::Unspecified)
        .ok_or_else(|| {
            Failure::usage(format!(
                "unknown job state {word:?}: expected queued, leased, done, dead or cancelled"
            ))
        })
}

/// Shows a job and its attempt history.
pub(crate) async fn get(id: i64, client: &ClientArgs) -> Result<(), Failure> {
    let mut clients = Clients::connect(client).await?;
    let reply = clients
        .jobs
        .get(v1::GetJobRequest { id })
        .await?
        .into_inner();
    let job = render::job(&reply.job.unwrap_or_default());
    let attempts: Vec<Value> = reply.attempts.iter().map(render::attempt).collect();

    let printer = Printer::new(client.output);
    if printer.is_json() {
        let mut record = job;
        record["attempts_history"] = Value::Array(attempts);
        printer.record(&record);
        return Ok(());
    }
    printer.record(&job);
    println!();
    print!("{}", attempt_table(&attempts));
    Ok(())
}

/// The attempt history: one row per attempt with its decision.
fn attempt_table(attempts: &[Value]) -> String {
    let headers = [
        "ATTEMPT", "STARTED", "DURATION", "OUTCOME", "ERROR", "DECISION", "DELAY", "NEXT DUE",
    ];
    let rows: Vec<Vec<String>> = attempts.iter().map(attempt_row).collect();
    table(&headers, &rows)
}

fn attempt_row(a: &Value) -> Vec<String> {
    let decision = &a["decision"];
    let verdict = match decision["retry"].as_bool() {
        None => String::new(),
        Some(retry) => format!(
            "{} ({})",
            if retry { "retry" } else { "final" },
            cell(&decision["reason"])
        ),
    };
    let delay = match decision["delay_ms"].as_u64() {
        Some(ms) if decision["retry"] == true => format!("{ms} ms"),
        _ => String::new(),
    };
    vec![
        a["number"].to_string(),
        cell(&a["started_at"]),
        duration(&a["started_at"], &a["finished_at"]),
        cell(&a["outcome"]),
        cell(&a["error"]),
        verdict,
        delay,
        cell(&a["rescheduled_at"]),
    ]
}

/// The time between two RFC 3339 stamps, in milliseconds.
fn duration(start: &Value, end: &Value) -> String {
    let parse = |v: &Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    };
    match (parse(start), parse(end)) {
        (Some(s), Some(e)) => format!("{} ms", (e - s).num_milliseconds()),
        _ => String::new(),
    }
}

/// Puts a dead or cancelled job back in its queue.
pub(crate) async fn requeue(id: i64, client: &ClientArgs) -> Result<(), Failure> {
    let mut clients = Clients::connect(client).await?;
    let reply = clients
        .jobs
        .requeue(v1::RequeueJobRequest { id })
        .await?
        .into_inner();
    Printer::new(client.output).record(&render::job(&reply.job.unwrap_or_default()));
    Ok(())
}

/// Cancels a queued or leased job.
pub(crate) async fn cancel(id: i64, client: &ClientArgs) -> Result<(), Failure> {
    let mut clients = Clients::connect(client).await?;
    let reply = clients
        .jobs
        .cancel(v1::CancelJobRequest { id })
        .await?
        .into_inner();
    Printer::new(client.output).record(&render::job(&reply.job.unwrap_or_default()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_attempt_row_shows_the_decision_and_its_delay() {
        let attempt = json!({
            "number": 2,
            "started_at": "2026-01-01T00:00:00.000Z",
            "finished_at": "2026-01-01T00:00:00.250Z",
            "outcome": "failed",
            "error": {"message": "HTTP 503: Service Unavailable"},
            "decision": {"retry": true, "reason": "retry_when", "delay_ms": 2000},
            "rescheduled_at": "2026-01-01T00:00:02.250Z",
        });
        let row = attempt_row(&attempt);
        assert_eq!(row[2], "250 ms");
        assert_eq!(row[4], "HTTP 503: Service Unavailable");
        assert_eq!(row[5], "retry (retry_when)");
        assert_eq!(row[6], "2000 ms");
    }

    #[test]
    fn unknown_states_are_bad_usage() {
        assert_eq!(parse_state("zombie").unwrap_err().code, 2);
        assert_eq!(parse_state("dead").unwrap(), v1::JobState::Dead);
    }
}
