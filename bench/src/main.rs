//! Baton's benchmark driver. `bench/run` builds Baton in release mode,
//! starts a throwaway Postgres and calls this once per store; it runs each
//! workload on a deployment of its own (real `baton broker serve` and
//! `baton worker` processes over gRPC) and prints one JSON object with
//! the figures, in the field names of the peer harness's `peers.json`.

mod deploy;
mod procs;
mod stats;
mod wake;
mod workloads;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

use deploy::StoreKind;
use workloads::Setup;

/// Which store to measure.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Store {
    Postgres,
    Sqlite,
}

/// Measures one store and prints its figures as JSON.
#[derive(Debug, Parser)]
struct Args {
    /// The `baton` binary to run.
    #[arg(long)]
    baton: PathBuf,
    /// The store.
    #[arg(long, value_enum)]
    store: Store,
    /// Postgres server URL without a database (`postgres://user@host:port`).
    #[arg(long, required_if_eq("store", "postgres"))]
    postgres: Option<String>,
    /// The postmaster's pid, for its CPU.
    #[arg(long, default_value_t = 0)]
    postmaster: u32,
    /// Smaller counts.
    #[arg(long)]
    quick: bool,
    /// Worker processes.
    #[arg(long, default_value_t = 1)]
    workers: u32,
    /// Slots per worker process. A no-op attempt holds its slot until its
    /// report is written, so slots bound how many reports can share one
    /// group commit: 1,024 keeps the commit, not the slots, the limit.
    #[arg(long, default_value_t = 1024)]
    concurrency: u32,
    /// Only these workloads (all when none is named).
    #[arg(long = "only")]
    only: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let store = match args.store {
        Store::Postgres => StoreKind::Postgres {
            server: args.postgres.clone().unwrap_or_default(),
            postmaster: args.postmaster,
        },
        Store::Sqlite => StoreKind::Sqlite,
    };
    let setup = Setup {
        // Processes start in directories of their own.
        binary: std::fs::canonicalize(&args.baton)?,
        store,
        quick: args.quick,
        workers: args.workers,
        concurrency: args.concurrency,
    };
    let figures = measure(&setup, &args.only).await?;
    println!("{figures}");
    Ok(())
}

async fn measure(setup: &Setup, only: &[String]) -> Result<Value> {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let mut out = json!({});
    if wanted("throughput") {
        out["throughput"] = step("throughput", workloads::throughput(setup).await)?;
    }
    if wanted("executions") {
        out["executions"] = step("executions", workloads::executions(setup).await)?;
    }
    if wanted("wake") {
        out["wake"] = step("wake", workloads::wake(setup).await)?;
    }
    if wanted("retry") {
        out["retry_zero"] = step("retry zero", workloads::retry_zero(setup).await)?;
        out["retry_timing"] = step("retry timing", workloads::retry_timing(setup).await)?;
    }
    if wanted("memory") {
        out["memory"] = step("memory", workloads::leased_memory(setup).await)?;
    }
    Ok(out)
}

/// Logs a workload's figures on standard error as it ends.
fn step(name: &str, figures: Result<Value>) -> Result<Value> {
    let figures = figures.map_err(|e| e.context(format!("workload {name}")))?;
    eprintln!("bench: {name}: {figures}");
    Ok(figures)
}
