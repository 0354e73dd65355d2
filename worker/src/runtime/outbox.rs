//! Results waiting to reach the broker.
//!
//! An attempt's report is queued here the moment it ends, whether or not
//! the broker is reachable, and delivered in order by one task that retries
//! transient failures with backoff. `Complete` and `Fail` are idempotent
//! for a lease token, so a report resent after a lost answer is harmless;
//! a FAILED_PRECONDITION answer means the lease is no longer ours (it
//! expired meanwhile) and the report is dropped. Each report, once
//! delivered or dropped, is announced on `settled`: the runtime frees the
//! attempt's slot only then, so fast tasks cannot pile up reports faster
//! than the broker takes them (and let their leases expire meanwhile).

use std::time::Duration;

use baton_proto::v1::{CompleteRequest, FailRequest, Resolution};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::{Code, Request, Status};

use super::Client;
use super::backoff::Backoff;

/// How long one delivery call may take before it is tried again.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The report of one finished attempt.
#[derive(Debug, Clone)]
pub(super) enum Report {
    Complete(CompleteRequest),
    Fail(FailRequest),
}

impl Report {
    fn job_id(&self) -> i64 {
        match self {
            Report::Complete(r) => r.job_id,
            Report::Fail(r) => r.job_id,
        }
    }
}

/// The queue of reports and the task delivering them.
#[derive(Debug)]
pub(super) struct Outbox {
    sender: mpsc::UnboundedSender<Report>,
    delivery: JoinHandle<()>,
}

impl Outbox {
    /// Starts delivering to the broker behind `client`, announcing each
    /// report settled on `settled`.
    pub(super) fn spawn(client: Client, settled: mpsc::UnboundedSender<()>) -> Outbox {
        let (sender, receiver) = mpsc::unbounded_channel();
        let delivery = tokio::spawn(deliver_all(client, receiver, settled));
        Outbox { sender, delivery }
    }

    /// A handle attempts queue their reports with.
    pub(super) fn sender(&self) -> mpsc::UnboundedSender<Report> {
        self.sender.clone()
    }

    /// Delivers what is queued, waiting at most `within`; what is left
    /// then is lost and logged (its leases will expire on the broker).
    /// Every other sender must be dropped first.
    pub(super) async fn flush(self, within: Duration) {
        drop(self.sender);
        let abort = self.delivery.abort_handle();
        if tokio::time::timeout(within, self.delivery).await.is_err() {
            abort.abort();
            tracing::warn!("Broker unreachable at shutdown: undelivered results dropped");
        }
    }
}

async fn deliver_all(
    mut client: Client,
    mut receiver: mpsc::UnboundedReceiver<Report>,
    settled: mpsc::UnboundedSender<()>,
) {
    while let Some(report) = receiver.recv().await {
        deliver(&mut client, &report).await;
        // Nobody listens any more once the worker is draining.
        let _ = settled.send(());
    }
}

/// Delivers one report, retrying as long as the failure is transient.
async fn deliver(client: &mut Client, report: &Report) {
    let job_id = report.job_id();
    let mut backoff = Backoff::default();
    loop {
        let status = match send(client, report).await {
            Ok(resolution) => return delivered(job_id, resolution),
            Err(status) => status,
        };
        if status.code() == Code::FailedPrecondition {
            tracing::info!(job_id, "Late result dropped: the lease is no longer ours");
            return;
        }
        if !transient(status.code()) {
            tracing::warn!(job_id, code = ?status.code(), error = status.message(),
                "Result refused by the broker");
            return;
        }
        tracing::debug!(job_id, error = status.message(), "Result not delivered yet");
        tokio::time::sleep(backoff.next_pause()).await;
    }
}

async fn send(client: &mut Client, report: &Report) -> Result<Option<Resolution>, Status> {
    match report {
        Report::Complete(body) => {
            let answer = client.complete(with_timeout(body.clone())).await?;
            Ok(answer.into_inner().resolution)
        }
        Report::Fail(body) => {
            let answer = client.fail(with_timeout(body.clone())).await?;
            Ok(answer.into_inner().resolution)
        }
    }
}

fn with_timeout<T>(body: T) -> Request<T> {
    let mut request = Request::new(body);
    request.set_timeout(CALL_TIMEOUT);
    request
}

fn delivered(job_id: i64, resolution: Option<Resolution>) {
    let resolution = resolution.unwrap_or_default();
    tracing::debug!(
        job_id,
        state = resolution.state().as_str_name(),
        reason = resolution.reason().as_str_name(),
        "Result delivered"
    );
}

/// Failures worth another try: the broker or the network may come back.
pub(super) fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Unknown
    )
}
