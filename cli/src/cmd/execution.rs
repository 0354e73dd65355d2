//! `baton execution run | get | list | events | cancel`.

use std::path::Path;

use baton_proto::convert::to_struct;
use baton_proto::v1;
use serde_json::Value;
use tokio_stream::StreamExt;

use crate::args::ClientArgs;
use crate::client::{Clients, Failure};
use crate::cmd::{playbook, workload_overrides};
use crate::output::{Printer, cell};
use crate::render;

const COLUMNS: &[(&str, &str)] = &[
    ("id", "ID"),
    ("playbook_path", "PLAYBOOK"),
    ("state", "STATE"),
    ("created_at", "STARTED"),
    ("finished_at", "FINISHED"),
    ("error", "ERROR"),
];

/// Starts an execution of a registered path, or of a file registered first;
/// with `watch`, follows it and exits with its outcome.
pub(crate) async fn run(
    target: &str,
    set: &[String],
    watch: bool,
    client: &ClientArgs,
) -> Result<(), Failure> {
    let mut clients = Clients::connect(client).await?;
    let path = resolve_path(&mut clients, target).await?;
    let workload = workload_overrides(set)?;
    let request = v1::RunExecutionRequest {
        path,
        workload: Some(to_struct(&workload)),
        ..Default::default()
    };
    let reply = clients.executions.run(request).await?.into_inner();
    let execution = reply.execution.unwrap_or_default();

    let printer = Printer::new(client.output);
    if !watch {
        printer.record(&render::execution(&execution));
        return Ok(());
    }
    if !printer.is_json() {
        println!("execution {} started", execution.id);
    }
    follow_to_end(&mut clients, execution.id, printer).await
}

/// A target naming an existing file is registered and run by its path.
async fn resolve_path(clients: &mut Clients, target: &str) -> Result<String, Failure> {
    let file = Path::new(target);
    if !file.is_file() {
        return Ok(target.to_owned());
    }
    Ok(playbook::register_file(clients, file).await?.path)
}

/// Shows one execution.
pub(crate) async fn get(id: i64, client: &ClientArgs) -> Result<(), Failure> {
    let mut clients = Clients::connect(client).await?;
    let reply = clients
        .executions
        .get(v1::GetExecutionRequest { id })
        .await?
        .into_inner();
    Printer::new(client.output).record(&render::execution(&reply.execution.unwrap_or_default()));
    Ok(())
}

/// Lists executions, newest first.
pub(crate) async fn list(
    state: Option<&str>,
    limit: u32,
    client: &ClientArgs,
) -> Result<(), Failure> {
    let state = match state {
        None => v1::ExecutionState::Unspecified,
        Some(word) => parse_state(word)?,
    };
    let mut clients = Clients::connect(client).await?;
    let request = v1::ListExecutionsRequest {
        state: state.into(),
        limit,
        ..Default::default()
    };
    let reply = clients.executions.list(request).await?.into_inner();
    let records: Vec<_> = reply.executions.iter().map(render::execution).collect();
    Printer::new(client.output).records(&records, COLUMNS);
    Ok(())
}

fn parse_state(word: &str) -> Result<v1::ExecutionState, Failure> {
    let name = format!("EXECUTION_STATE_{}", word.to_ascii_uppercase());
    v1::ExecutionState::from_str_name(&name)
        .filter(|s| *s != v1::ExecutionState::Unspecified)
        .ok_or_else(|| {
            Failure::usage(format!(
                "unknown execution state {word:?}: expected running, completed, failed or cancelled"
            ))
        })
}

/// Prints an execution's events; with `follow`, until it ends, exiting with
/// its outcome.
pub(crate) async fn events(id: i64, follow: bool, client: &ClientArgs) -> Result<(), Failure> {
    let mut clients = Clients::connect(client).await?;
    let printer = Printer::new(client.output);
    if follow {
        return follow_to_end(&mut clients, id, printer).await;
    }
    let request = v1::WatchEventsRequest {
        execution_id: id,
        follow: Some(false),
        ..Default::default()
    };
    let mut stream = clients.executions.watch_events(request).await?.into_inner();
    while let Some(event) = stream.next().await {
        print_event(printer, &render::event(&event?));
    }
    Ok(())
}

/// Streams events until the execution's final one, then exits 0 when it
/// completed and 1 otherwise.
async fn follow_to_end(clients: &mut Clients, id: i64, printer: Printer) -> Result<(), Failure> {
    let request = v1::WatchEventsRequest {
        execution_id: id,
        follow: Some(true),
        ..Default::default()
    };
    let mut stream = clients.executions.watch_events(request).await?.into_inner();
    while let Some(event) = stream.next().await {
        print_event(printer, &render::event(&event?));
    }

    let reply = clients
        .executions
        .get(v1::GetExecutionRequest { id })
        .await?
        .into_inner();
    let execution = reply.execution.unwrap_or_default();
    if execution.state() == v1::ExecutionState::Completed {
        return Ok(());
    }
    if !printer.is_json() {
        eprintln!(
            "execution {id} {}",
            render::execution_state(execution.state)
        );
    }
    Err(Failure::silent())
}

/// One event: a JSON line, or a readable line with what matters for its kind.
pub(crate) fn print_event(printer: Printer, event: &Value) {
    if printer.is_json() {
        println!("{event}");
        return;
    }
    let mut line = format!("{}  {:<20}", cell(&event["at"]), cell(&event["name"]));
    if let Some(step) = event["step"].as_str().filter(|s| !s.is_empty()) {
        line.push_str(&format!(" {step}"));
    }
    if event["attempt"].as_u64().unwrap_or(0) > 0 {
        line.push_str(&format!(
            " attempt {}/{}",
            event["attempt"], event["max_attempts"]
        ));
    }
    line.push_str(&event_detail(event));
    println!("{line}");
}

fn event_detail(event: &Value) -> String {
    let mut detail = String::new();
    if !event["error"].is_null() {
        detail.push_str(&format!(": {}", cell(&event["error"])));
    }
    // A decision explains a failure or a retry; after a success the state
    // already says it all.
    let decision = &event["decision"];
    let explains = event["name"] == "action_error" || event["name"] == "action_retry";
    if explains && decision["reason"] != "" {
        detail.push_str(&format!(" [{}]", cell(&decision["reason"])));
    }
    if !event["available_at"].is_null() {
        detail.push_str(&format!(
            " retry in {} ms at {}",
            cell(&decision["delay_ms"]),
            cell(&event["available_at"])
        ));
    }
    detail
}

/// Cancels an execution and its unfinished jobs.
pub(crate) async fn cancel(id: i64, client: &ClientArgs) -> Result<(), Failure> {
    let mut clients = Clients::connect(client).await?;
    let reply = clients
        .executions
        .cancel(v1::CancelExecutionRequest { id })
        .await?
        .into_inner();
    Printer::new(client.output).record(&render::execution(&reply.execution.unwrap_or_default()));
    Ok(())
}
