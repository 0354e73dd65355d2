//! What the tests ask a [`TestBroker`] through its public gRPC API:
//! playbooks to register and run, jobs and their attempts, and event
//! streams to wait on.

use std::collections::BTreeMap;

use baton_proto::convert::to_struct;
use baton_proto::v1 as pb;
use baton_proto::v1::executions_client::ExecutionsClient;
use baton_proto::v1::jobs_client::JobsClient;
use baton_proto::v1::playbooks_client::PlaybooksClient;
use serde_json::Value;
use tonic::transport::Channel;

use super::broker::TestBroker;
use super::within;

/// A playbook at `path` whose one task step, `task`, is `step`: its YAML
/// lines (type, fields, retry) indented by four spaces.
pub(crate) fn playbook(path: &str, step: &str) -> String {
    let name = path.replace('/', "_");
    format!(
        "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata:\n  name: {name}\n  path: {path}\n\
         workflow:\n  - step: start\n    next:\n      - task\n  - step: task\n{step}\
         \x20   next:\n      - end\n  - step: end\n"
    )
}

/// A one-step playbook that completes at once.
pub(crate) const NOOP_STEP: &str = "    type: noop\n    result: done\n";

impl TestBroker {
    fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("a valid broker URL")
            .connect_lazy()
    }

    /// Registers `yaml` and returns the playbook's path.
    pub(crate) async fn register(&self, yaml: &str) -> String {
        let request = pb::RegisterPlaybookRequest { yaml: yaml.into() };
        let mut client = PlaybooksClient::new(self.channel());
        let reply = within("Playbooks.Register", client.register(request)).await;
        reply
            .expect("the playbook registers")
            .into_inner()
            .playbook
            .unwrap()
            .path
    }

    /// Runs the playbook at `path` with `workload` merged over its own.
    pub(crate) async fn run(&self, path: &str, workload: Value) -> pb::Execution {
        let request = pb::RunExecutionRequest {
            path: path.into(),
            workload: workload.as_object().map(to_struct),
            ..Default::default()
        };
        let mut client = ExecutionsClient::new(self.channel());
        let reply = within("Executions.Run", client.run(request)).await;
        reply
            .expect("the execution starts")
            .into_inner()
            .execution
            .unwrap()
    }

    /// Runs a registered playbook and waits for it to complete.
    pub(crate) async fn run_to_completion(&self, path: &str) {
        let execution = self.run(path, Value::Null).await;
        let mut events = self.watch(execution.id).await;
        events.next_named("execution_completed").await;
    }

    /// Follows an execution's events from its start.
    pub(crate) async fn watch(&self, execution_id: i64) -> Events {
        let request = pb::WatchEventsRequest {
            execution_id,
            ..Default::default()
        };
        let mut client = ExecutionsClient::new(self.channel());
        let reply = within("Executions.WatchEvents", client.watch_events(request)).await;
        Events(reply.expect("the execution exists").into_inner())
    }

    /// The events stored for an execution so far.
    pub(crate) async fn history(&self, execution_id: i64) -> Vec<pb::Event> {
        let request = pb::WatchEventsRequest {
            execution_id,
            follow: Some(false),
            ..Default::default()
        };
        let mut client = ExecutionsClient::new(self.channel());
        let reply = within("Executions.WatchEvents", client.watch_events(request)).await;
        Events(reply.expect("the execution exists").into_inner())
            .rest()
            .await
    }

    /// A job and its attempts, oldest first.
    pub(crate) async fn job(&self, id: i64) -> (pb::Job, Vec<pb::Attempt>) {
        let mut client = JobsClient::new(self.channel());
        let reply = within("Jobs.Get", client.get(pb::GetJobRequest { id })).await;
        let reply = reply.expect("the job exists").into_inner();
        (reply.job.unwrap(), reply.attempts)
    }

    /// How many jobs are in each state.
    pub(crate) async fn job_states(&self) -> BTreeMap<pb::JobState, usize> {
        let mut client = JobsClient::new(self.channel());
        let reply = within("Jobs.List", client.list(pb::ListJobsRequest::default())).await;
        let mut states = BTreeMap::new();
        for job in reply.expect("jobs list").into_inner().jobs {
            *states.entry(job.state()).or_default() += 1;
        }
        states
    }

    /// Cancels a job.
    pub(crate) async fn cancel_job(&self, id: i64) -> pb::Job {
        let mut client = JobsClient::new(self.channel());
        let reply = within("Jobs.Cancel", client.cancel(pb::CancelJobRequest { id })).await;
        reply.expect("the job exists").into_inner().job.unwrap()
    }
}

/// An execution's event stream.
#[derive(Debug)]
pub(crate) struct Events(tonic::Streaming<pb::Event>);

impl Events {
    /// The next event, or `None` once the stream has ended.
    async fn next(&mut self) -> Option<pb::Event> {
        let next = within("the next event", self.0.message()).await;
        next.expect("the event stream does not fail")
    }

    /// Skips to the next event named `name` (`action_retry`, …).
    pub(crate) async fn next_named(&mut self, name: &str) -> pb::Event {
        while let Some(event) = self.next().await {
            if event.name == name {
                return event;
            }
        }
        panic!("the event stream ended before {name}")
    }

    /// Every event until the stream ends (after the execution's last one).
    pub(crate) async fn rest(&mut self) -> Vec<pb::Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

/// The names of `events`, in order.
pub(crate) fn names(events: &[pb::Event]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_str()).collect()
}
