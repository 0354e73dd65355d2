//! `baton dev`: a broker on embedded SQLite, in-process workers and the
//! gRPC port, in one process. With `--run` it registers and runs each
//! playbook, prints progress as events arrive and a summary, and exits with
//! the executions' outcome.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use baton_broker::{Broker, BrokerConfig};
use baton_proto::convert::to_struct;
use baton_proto::v1;
use baton_worker::{WorkerConfig, telemetry};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::args::DevArgs;
use crate::client::{Clients, Failure};
use crate::cmd::serve::shutdown_signal;
use crate::cmd::{playbook, progress, workload_overrides};
use crate::output::table;
use crate::render;

/// Runs `baton dev`.
pub(crate) async fn dev(args: DevArgs) -> Result<(), Failure> {
    // With --run the progress view is the output; logs say only what is wrong.
    let level = if args.run.is_empty() {
        telemetry::LogLevel::INFO
    } else {
        telemetry::LogLevel::WARN
    };
    let _telemetry = telemetry::init_logging_at("baton-dev", level);
    let overrides = workload_overrides(&args.set)?;
    let url = database_url(&args.data_dir)?;
    baton_broker::migrate(&url)
        .await
        .map_err(|e| Failure::failed(format!("preparing {url}: {e}")))?;

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::usage(format!("binding {}: {e}", args.listen)))?;
    let addr = listener.local_addr()?;
    tracing::info!(addr = %addr, "Listening");
    let (stop, stopped) = watch::channel(false);
    let services = start(&args, url, listener, stopped).await?;

    let outcome = if args.run.is_empty() {
        shutdown_signal().await;
        Ok(())
    } else {
        run_all(addr, &args.run, overrides).await
    };
    stop.send_replace(true);
    let _ = services.await;
    outcome
}

/// The SQLite URL inside the data directory, which is created if missing.
fn database_url(dir: &Path) -> Result<String, Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::usage(format!("creating {}: {e}", dir.display())))?;
    Ok(format!(
        "sqlite://{}?mode=rwc",
        dir.join("baton.db").display()
    ))
}

/// Starts the broker and the worker pool; the returned task ends once both
/// have stopped after `stopped` turns true.
async fn start(
    args: &DevArgs,
    url: String,
    listener: TcpListener,
    stopped: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let mut config = BrokerConfig::new(url);
    config.lease_timeout = args.lease_timeout;
    // One address serves the broker's metrics; the in-process workers'
    // would need a second one, and dev is a one-machine convenience.
    config.metrics_listen = args.metrics_listen;
    config
        .validate()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let broker = Broker::connect(config)
        .await
        .map_err(|e| Failure::failed(format!("starting the broker: {e}")))?;

    let addr = listener.local_addr()?;
    let workers = WorkerConfig::new(format!("http://{addr}"));
    let count = usize::try_from(args.workers).unwrap_or(1).max(1);
    let broker_stop = wait_for_stop(stopped.clone());
    let worker_stop = wait_for_stop(stopped);
    Ok(tokio::spawn(async move {
        let serving = broker.serve(listener, broker_stop);
        let working = baton_worker::run_pool(workers, count, worker_stop);
        let (served, worked) = tokio::join!(serving, working);
        if let Err(e) = served {
            tracing::error!(error = %e, "Broker stopped with an error");
        }
        if let Err(e) = worked {
            tracing::error!(error = %e, "Workers stopped with an error");
        }
    }))
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Registers every file first (so bad input changes nothing and exits 2),
/// then runs them all and follows each to its end.
async fn run_all(
    addr: SocketAddr,
    files: &[std::path::PathBuf],
    workload: Map<String, Value>,
) -> Result<(), Failure> {
    let mut clients = Clients::plain(&format!("http://{addr}")).await?;
    let mut paths = Vec::with_capacity(files.len());
    for file in files {
        paths.push(playbook::register_file(&mut clients, file).await?.path);
    }

    let mut all_completed = true;
    let mut summaries = Vec::with_capacity(paths.len());
    for path in paths {
        let summary = run_one(&mut clients, &path, &workload).await?;
        all_completed &= summary.completed;
        summaries.push(summary);
    }
    print_summary(&summaries);
    if all_completed {
        Ok(())
    } else {
        Err(Failure::silent())
    }
}

/// What `baton dev` reports about one execution when it ends.
#[derive(Debug)]
struct Summary {
    id: i64,
    path: String,
    steps: usize,
    attempts: u64,
    seconds: f64,
    state: String,
    completed: bool,
}

async fn run_one(
    clients: &mut Clients,
    path: &str,
    workload: &Map<String, Value>,
) -> Result<Summary, Failure> {
    let started = Instant::now();
    let request = v1::RunExecutionRequest {
        path: path.to_owned(),
        workload: Some(to_struct(workload)),
        ..Default::default()
    };
    let execution = clients.executions.run(request).await?.into_inner();
    let id = execution.execution.unwrap_or_default().id;
    println!("execution {id} of {path} started");

    progress::follow(clients, id).await?;
    let execution = clients
        .executions
        .get(v1::GetExecutionRequest { id })
        .await?
        .into_inner()
        .execution
        .unwrap_or_default();
    let jobs = clients
        .jobs
        .list(v1::ListJobsRequest {
            execution_id: id,
            limit: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .jobs;
    Ok(Summary {
        id,
        path: path.to_owned(),
        steps: jobs.len(),
        attempts: jobs.iter().map(|j| u64::from(j.attempts)).sum(),
        seconds: started.elapsed().as_secs_f64(),
        state: render::execution_state(execution.state),
        completed: execution.state() == v1::ExecutionState::Completed,
    })
}

fn print_summary(summaries: &[Summary]) {
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.path.clone(),
                s.steps.to_string(),
                s.attempts.to_string(),
                format!("{:.2}s", s.seconds),
                s.state.clone(),
            ]
        })
        .collect();
    println!();
    print!(
        "{}",
        table(
            &[
                "EXECUTION",
                "PLAYBOOK",
                "STEPS",
                "ATTEMPTS",
                "TIME",
                "OUTCOME"
            ],
            &rows
        )
    );
}
