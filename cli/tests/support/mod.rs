//! A session against a real deployment: start it, register and run
//! playbooks through the gRPC API, and read back what the broker stored.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub(crate) mod faults;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use baton_proto::convert::to_struct_value;
use baton_proto::v1;
use baton_proto::v1::{
    executions_client::ExecutionsClient, jobs_client::JobsClient, playbooks_client::PlaybooksClient,
};
use baton_testkit::cluster::Options;
use baton_testkit::{Backend, Cluster};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// How long an execution may take before a test gives up on it.
pub(crate) const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// A running deployment and clients of its API.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) cluster: Cluster,
    /// The connection the clients share, for other clients.
    pub(crate) channel: Channel,
    pub(crate) playbooks: PlaybooksClient<Channel>,
    pub(crate) executions: ExecutionsClient<Channel>,
    pub(crate) jobs: JobsClient<Channel>,
}

/// How an execution ended: its record and every event, in order.
#[derive(Debug)]
pub(crate) struct Ended {
    pub(crate) execution: v1::Execution,
    pub(crate) events: Vec<v1::Event>,
}

impl Ended {
    /// The glossary names of the events, in order.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.name.as_str()).collect()
    }

    /// The events called `name`.
    pub(crate) fn named(&self, name: &str) -> Vec<&v1::Event> {
        self.events.iter().filter(|e| e.name == name).collect()
    }
}

impl Session {
    /// Starts a deployment on `backend` with one worker.
    pub(crate) async fn start(backend: Backend) -> Result<Session> {
        Session::start_with(backend, &Options::default()).await
    }

    /// Starts a deployment on `backend` as `options` say.
    pub(crate) async fn start_with(backend: Backend, options: &Options) -> Result<Session> {
        let binary = Path::new(env!("CARGO_BIN_EXE_baton"));
        let cluster = Cluster::start(backend, binary, options).await?;
        let channel = Channel::from_shared(cluster.url())?.connect().await?;
        Ok(Session {
            cluster,
            channel: channel.clone(),
            playbooks: PlaybooksClient::new(channel.clone()),
            executions: ExecutionsClient::new(channel.clone()),
            jobs: JobsClient::new(channel),
        })
    }

    /// Registers playbook text and returns its path.
    pub(crate) async fn register(&mut self, yaml: &str) -> Result<String> {
        let request = v1::RegisterPlaybookRequest {
            yaml: yaml.to_owned(),
        };
        let reply = self.playbooks.register(request).await?.into_inner();
        Ok(reply.playbook.context("no playbook")?.path)
    }

    /// Registers a fixture of `fixtures/playbooks/` and returns its path.
    pub(crate) async fn register_fixture(&mut self, name: &str) -> Result<String> {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/playbooks")
            .join(name);
        let yaml = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
        self.register(&yaml).await
    }

    /// Runs a registered playbook with workload overrides and follows it to
    /// its end.
    pub(crate) async fn run(&mut self, path: &str, workload: serde_json::Value) -> Result<Ended> {
        let id = self.start_run(path, workload).await?;
        self.follow(id).await
    }

    /// Starts a registered playbook with workload overrides; returns the
    /// execution's id.
    pub(crate) async fn start_run(
        &mut self,
        path: &str,
        workload: serde_json::Value,
    ) -> Result<i64> {
        let request = v1::RunExecutionRequest {
            path: path.to_owned(),
            workload: Some(to_struct_value(&workload)),
            ..Default::default()
        };
        let reply = self.executions.run(request).await?.into_inner();
        Ok(reply.execution.context("no execution")?.id)
    }

    /// Waits for the first event of execution `id` called `name`.
    pub(crate) async fn wait_for_event(&mut self, id: i64, name: &str) -> Result<v1::Event> {
        let request = v1::WatchEventsRequest {
            execution_id: id,
            ..Default::default()
        };
        let mut stream = self.executions.watch_events(request).await?.into_inner();
        let find = async {
            while let Some(event) = stream.next().await {
                let event = event?;
                if event.name == name {
                    return Ok(event);
                }
            }
            bail!("execution {id} ended without {name}")
        };
        tokio::time::timeout(RUN_DEADLINE, find).await?
    }

    /// Streams an execution's events until it ends.
    pub(crate) async fn follow(&mut self, id: i64) -> Result<Ended> {
        let request = v1::WatchEventsRequest {
            execution_id: id,
            ..Default::default()
        };
        let mut stream = self.executions.watch_events(request).await?.into_inner();
        let mut events = Vec::new();
        let collect = async {
            while let Some(event) = stream.next().await {
                events.push(event?);
            }
            Ok::<_, tonic::Status>(())
        };
        match tokio::time::timeout(RUN_DEADLINE, collect).await {
            Ok(streamed) => streamed?,
            Err(_) => bail!("execution {id} did not end within {RUN_DEADLINE:?}: {events:#?}"),
        }
        let request = v1::GetExecutionRequest { id };
        let execution = self.executions.get(request).await?.into_inner().execution;
        Ok(Ended {
            execution: execution.context("no execution")?,
            events,
        })
    }

    /// The job that ran `step` in execution `id`, with its attempts.
    pub(crate) async fn job(&mut self, id: i64, step: &str) -> Result<(v1::Job, Vec<v1::Attempt>)> {
        let request = v1::ListJobsRequest {
            execution_id: id,
            ..Default::default()
        };
        let jobs = self.jobs.list(request).await?.into_inner().jobs;
        let job = jobs
            .into_iter()
            .find(|j| j.step == step)
            .with_context(|| format!("no job for step {step}"))?;
        let reply = self
            .jobs
            .get(v1::GetJobRequest { id: job.id })
            .await?
            .into_inner();
        Ok((reply.job.context("no job")?, reply.attempts))
    }
}

/// Runs `baton ARGS… --broker URL` against the session's deployment and
/// returns what it printed.
pub(crate) async fn baton(s: &Session, args: &[&str]) -> Result<Output> {
    let url = s.cluster.url();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .args(["--broker", &url])
        .env("NO_COLOR", "1")
        .output()
        .await?;
    Ok(output)
}

/// A process's output as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Declares a test body once and runs it on both deployments:
/// `name::on_postgres` (separate broker and worker processes) and
/// `name::on_dev_sqlite` (`baton dev`).
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                super::$name(baton_testkit::Backend::Postgres)
                    .await
                    .unwrap();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_dev_sqlite() {
                super::$name(baton_testkit::Backend::Dev).await.unwrap();
            }
        }
    };
}
