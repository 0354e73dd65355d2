//! A fake worker that reports finished attempts on its Lease stream, many
//! in one `Reports` message, and waits for their acks; jobs leased while
//! it waits are kept for [`StreamWorker::next`].

use std::collections::VecDeque;

use anyhow::{Context, Result, bail, ensure};
use baton_proto::v1 as pb;
use baton_proto::v1::broker_client::BrokerClient;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::{DEADLINE, TestBroker, Worker, fail_request};

/// One Lease stream that carries both leases and reports.
pub struct StreamWorker {
    pub client: BrokerClient<Channel>,
    requests: mpsc::Sender<pb::LeaseRequest>,
    replies: tonic::Streaming<pb::LeaseResponse>,
    jobs: VecDeque<pb::LeasedJob>,
    acks: Vec<pb::Ack>,
}

impl StreamWorker {
    /// Opens a stream naming `queues` and waits for the welcome.
    pub async fn connect(broker: &TestBroker, name: &str, queues: &[&str]) -> Result<Self> {
        let Worker {
            client,
            requests,
            replies,
        } = Worker::connect(broker, name, queues).await?;
        Ok(StreamWorker {
            client,
            requests,
            replies,
            jobs: VecDeque::new(),
            acks: Vec::new(),
        })
    }

    /// Sends one message on the stream.
    pub async fn send(&self, msg: pb::lease_request::Msg) -> Result<()> {
        let request = pb::LeaseRequest { msg: Some(msg) };
        self.requests.send(request).await?;
        Ok(())
    }

    /// Grants `n` more credits.
    pub async fn credit(&self, n: i32) -> Result<()> {
        self.send(pb::lease_request::Msg::Credits(pb::Credits { credits: n }))
            .await
    }

    /// Sends `reports` in one `Reports` message.
    pub async fn report(&self, reports: Vec<pb::Report>) -> Result<()> {
        self.send(pb::lease_request::Msg::Reports(pb::Reports { reports }))
            .await
    }

    /// The next leased job, within the default deadline.
    pub async fn next(&mut self) -> Result<pb::LeasedJob> {
        let deadline = Instant::now() + DEADLINE;
        while self.jobs.is_empty() {
            self.receive(deadline).await?;
        }
        Ok(self.jobs.pop_front().expect("a buffered job"))
    }

    /// The next `n` leased jobs, within the default deadline.
    pub async fn take(&mut self, n: usize) -> Result<Vec<pb::LeasedJob>> {
        let mut jobs = Vec::with_capacity(n);
        for _ in 0..n {
            jobs.push(self.next().await?);
        }
        Ok(jobs)
    }

    /// Exactly `n` acks, in the order they came, within the default
    /// deadline: one per report of the messages sent and not yet
    /// acknowledged.
    pub async fn acks(&mut self, n: usize) -> Result<Vec<pb::Ack>> {
        let deadline = Instant::now() + DEADLINE;
        while self.acks.len() < n {
            self.receive(deadline).await?;
        }
        let acks = std::mem::take(&mut self.acks);
        ensure!(acks.len() == n, "expected {n} acks, got {acks:#?}");
        Ok(acks)
    }

    /// Closes the worker's side of the stream, as a worker shutting down
    /// does once it has sent its last reports.
    pub fn close_requests(&mut self) {
        let (closed, _) = mpsc::channel(1);
        self.requests = closed;
    }

    /// How the broker ended the stream, within the default deadline:
    /// `None` when it closed it cleanly, its status otherwise. Jobs and
    /// acks that come first are kept.
    pub async fn end(&mut self) -> Result<Option<tonic::Status>> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.replies.message()).await? {
                Err(status) => return Ok(Some(status)),
                Ok(None) => return Ok(None),
                Ok(Some(reply)) => self.keep(reply)?,
            }
        }
    }

    /// Waits for one message and keeps what it carries.
    async fn receive(&mut self, deadline: Instant) -> Result<()> {
        match tokio::time::timeout_at(deadline, self.replies.message()).await?? {
            Some(reply) => self.keep(reply),
            None => bail!("the stream ended"),
        }
    }

    fn keep(&mut self, reply: pb::LeaseResponse) -> Result<()> {
        match reply.msg {
            Some(pb::lease_response::Msg::Job(job)) => self.jobs.push_back(job),
            Some(pb::lease_response::Msg::Acks(acks)) => self.acks.extend(acks.acks),
            other => bail!("expected a job or acks, got {other:?}"),
        }
        Ok(())
    }
}

/// The report of a success of `job` under its lease, with `result`.
pub fn complete_report(job: &pb::LeasedJob, result: serde_json::Value) -> pb::Report {
    let complete = pb::CompleteRequest {
        job_id: job.id,
        lease_token: job.lease_token,
        outcome: Some(pb::Outcome {
            result: Some(baton_proto::convert::to_value(&result)),
            ..Default::default()
        }),
        decision: None,
    };
    pb::Report {
        report: Some(pb::report::Report::Complete(complete)),
    }
}

/// The report of a failure of `job` under its lease, with `message` and
/// an optional worker decision.
pub fn fail_report(
    job: &pb::LeasedJob,
    message: &str,
    decision: Option<pb::Decision>,
) -> pb::Report {
    let fail = fail_request(job.id, job.lease_token, message, decision);
    pb::Report {
        report: Some(pb::report::Report::Fail(fail)),
    }
}

/// Sends `report` as the unary Complete or Fail it stands for.
pub async fn unary(worker: &mut StreamWorker, report: pb::Report) -> Result<pb::Resolution> {
    let resolution = match report.report.context("an empty report")? {
        pb::report::Report::Complete(r) => worker.client.complete(r).await?.into_inner().resolution,
        pb::report::Report::Fail(r) => worker.client.fail(r).await?.into_inner().resolution,
    };
    resolution.context("no resolution")
}

/// The resolution of an accepted report's ack.
pub fn accepted(ack: &pb::Ack) -> Result<pb::Resolution> {
    ensure!(ack.code == 0, "report refused: {ack:?}");
    ensure!(ack.message.is_empty(), "{ack:?}");
    ack.resolution
        .clone()
        .context("an accepted ack without resolution")
}

/// The only ack about `job_id` among `acks`.
pub fn ack_about(acks: &[pb::Ack], job_id: i64) -> Result<&pb::Ack> {
    let mut about = acks.iter().filter(|a| a.job_id == job_id);
    let ack = about.next().context("no ack about the job")?;
    ensure!(about.next().is_none(), "two acks about job {job_id}");
    Ok(ack)
}
