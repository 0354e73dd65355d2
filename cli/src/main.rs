//! The `baton` command: one binary for the broker, the worker, the embedded
//! dev mode and the client commands.
//!
//! Exit status: 0 on success, 1 when what it ran or waited for failed, 2 on
//! bad usage or input.

mod args;
mod client;
mod cmd;
mod output;
mod render;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, ExecutionCommand, JobCommand, PlaybookCommand, PolicyCommand};
use crate::client::Failure;
use crate::cmd::{dev, execution, job, playbook, policy, serve};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("baton: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("baton: {failure}");
            }
            ExitCode::from(failure.code)
        }
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Dev(args) => dev::dev(args).await,
        Command::Broker(cmd) => serve::broker(cmd).await,
        Command::Worker(args) => serve::worker(args).await,
        Command::Playbook(cmd) => run_playbook(cmd).await,
        Command::Execution(cmd) => run_execution(cmd).await,
        Command::Job(cmd) => run_job(cmd).await,
        Command::Policy(PolicyCommand::Simulate { file, step, client }) => {
            policy::simulate(&file, step.as_deref(), &client).await
        }
    }
}

async fn run_playbook(cmd: PlaybookCommand) -> Result<(), Failure> {
    match cmd {
        PlaybookCommand::Register { file, client } => playbook::register(&file, &client).await,
        PlaybookCommand::List { client } => playbook::list(&client).await,
        PlaybookCommand::Get {
            path,
            version,
            client,
        } => playbook::get(&path, version, &client).await,
    }
}

async fn run_execution(cmd: ExecutionCommand) -> Result<(), Failure> {
    match cmd {
        ExecutionCommand::Run {
            playbook,
            set,
            watch,
            client,
        } => execution::run(&playbook, &set, watch, &client).await,
        ExecutionCommand::Get { id, client } => execution::get(id, &client).await,
        ExecutionCommand::List {
            state,
            limit,
            client,
        } => execution::list(state.as_deref(), limit, &client).await,
        ExecutionCommand::Events { id, follow, client } => {
            execution::events(id, follow, &client).await
        }
        ExecutionCommand::Cancel { id, client } => execution::cancel(id, &client).await,
    }
}

async fn run_job(cmd: JobCommand) -> Result<(), Failure> {
    match cmd {
        JobCommand::List {
            state,
            execution,
            queue,
            limit,
            client,
        } => {
            let filter = job::Filter {
                state: state.as_deref(),
                execution,
                queue: queue.as_deref(),
                limit,
            };
            job::list(filter, &client).await
        }
        JobCommand::Get { id, client } => job::get(id, &client).await,
        JobCommand::Requeue { id, client } => job::requeue(id, &client).await,
        JobCommand::Cancel { id, client } => job::cancel(id, &client).await,
    }
}
