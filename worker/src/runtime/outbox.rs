//! Results waiting to reach the broker.
//!
//! An attempt's report waits here from the moment it ends until the broker
//! acknowledges it. While a lease stream is open, reports travel on it,
//! every report waiting at that moment in one message, and the broker
//! answers each with an ack; reports sent on a stream that breaks are sent
//! again on the next one. `Complete` and `Fail` are idempotent for a lease
//! token, so a resent report is harmless. A report refused with
//! FAILED_PRECONDITION is dropped (the lease expired meanwhile); one refused
//! with a transient status waits out a backoff and goes again.
//!
//! An attempt's slot stays taken until its report is settled (acknowledged
//! or dropped), so fast tasks cannot pile up results faster than the broker
//! writes them and let their leases expire meanwhile. At shutdown, whatever
//! is left goes through the unary `Complete` and `Fail` calls.

use std::collections::HashMap;
use std::time::Duration;

use baton_proto::v1::{self as pb, Ack, CompleteRequest, FailRequest};
use futures::StreamExt;
use tokio::time::Instant;
use tonic::{Code, Request, Status};

use super::Client;
use super::backoff::Backoff;

/// How long one unary delivery call may take before it is tried again.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Most reports in one message, as the broker accepts.
const MAX_REPORTS: usize = 10_000;
/// Unary deliveries in flight at once when flushing at shutdown.
const FLUSH_CONCURRENCY: usize = 32;

/// The report of one finished attempt.
#[derive(Debug, Clone)]
pub(super) enum Report {
    Complete(CompleteRequest),
    Fail(FailRequest),
}

impl Report {
    pub(super) fn job_id(&self) -> i64 {
        match self {
            Report::Complete(r) => r.job_id,
            Report::Fail(r) => r.job_id,
        }
    }

    fn token(&self) -> i64 {
        match self {
            Report::Complete(r) => r.lease_token,
            Report::Fail(r) => r.lease_token,
        }
    }

    fn to_proto(&self) -> pb::Report {
        let report = match self {
            Report::Complete(r) => pb::report::Report::Complete(r.clone()),
            Report::Fail(r) => pb::report::Report::Fail(r.clone()),
        };
        pb::Report {
            report: Some(report),
        }
    }
}

/// Reports not yet acknowledged: waiting to be sent, or sent on the
/// current stream.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    waiting: Vec<Report>,
    /// Sent on the current stream, by lease token.
    sent: HashMap<i64, Report>,
    /// No sending before this, after a transient refusal.
    held_until: Option<Instant>,
    backoff: Backoff,
}

impl Outbox {
    /// Queues a finished attempt's report.
    pub(super) fn push(&mut self, report: Report) {
        self.waiting.push(report);
    }

    /// Reports not settled yet; each holds its attempt's slot.
    pub(super) fn unsettled(&self) -> u32 {
        let count = self.waiting.len() + self.sent.len();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// When held reports may go again, if they are held.
    pub(super) fn held_until(&self) -> Option<Instant> {
        self.held_until
            .filter(|_| !self.waiting.is_empty())
            .filter(|until| *until > Instant::now())
    }

    /// The waiting reports as one message, now counted as sent; `None`
    /// when nothing waits or a backoff holds them.
    pub(super) fn next_message(&mut self) -> Option<pb::Reports> {
        if self.waiting.is_empty() || self.held_until().is_some() {
            return None;
        }
        let count = self.waiting.len().min(MAX_REPORTS);
        let batch: Vec<Report> = self.waiting.drain(..count).collect();
        let reports = batch.iter().map(Report::to_proto).collect();
        self.sent
            .extend(batch.into_iter().map(|report| (report.token(), report)));
        Some(pb::Reports { reports })
    }

    /// Settles acknowledged reports; returns how many slots that frees.
    pub(super) fn acknowledged(&mut self, acks: Vec<Ack>) -> u32 {
        let mut settled = 0;
        for ack in acks {
            let Some(report) = self.sent.remove(&ack.lease_token) else {
                continue;
            };
            if transient(Code::from(ack.code)) {
                tracing::debug!(
                    job_id = ack.job_id,
                    error = ack.message,
                    "Result not written yet"
                );
                self.hold(report);
                continue;
            }
            self.backoff.reset();
            settle(&ack);
            settled += 1;
        }
        settled
    }

    fn hold(&mut self, report: Report) {
        self.waiting.push(report);
        if self.held_until().is_none() {
            self.held_until = Some(Instant::now() + self.backoff.next_pause());
        }
    }

    /// The stream broke: what was sent on it goes again on the next one.
    pub(super) fn resend(&mut self) {
        self.waiting
            .extend(self.sent.drain().map(|(_, report)| report));
    }

    /// Delivers everything left with unary calls, waiting at most
    /// `within`; what is left then is lost and logged (its leases will
    /// expire on the broker).
    pub(super) async fn flush(mut self, client: Client, within: Duration) {
        self.resend();
        if self.waiting.is_empty() {
            return;
        }
        let deliveries = futures::stream::iter(self.waiting)
            .map(|report| deliver(client.clone(), report))
            .buffer_unordered(FLUSH_CONCURRENCY)
            .collect::<Vec<()>>();
        if tokio::time::timeout(within, deliveries).await.is_err() {
            tracing::warn!("Broker unreachable at shutdown: undelivered results dropped");
        }
    }
}

fn settle(ack: &Ack) {
    let job_id = ack.job_id;
    match Code::from(ack.code) {
        Code::Ok => delivered(job_id, ack.resolution.as_ref()),
        Code::FailedPrecondition => {
            tracing::info!(job_id, "Late result dropped: the lease is no longer ours");
        }
        code => tracing::warn!(
            job_id,
            ?code,
            error = ack.message,
            "Result refused by the broker"
        ),
    }
}

/// Delivers one report with a unary call, retrying while the failure is
/// transient.
async fn deliver(mut client: Client, report: Report) {
    let job_id = report.job_id();
    let mut backoff = Backoff::default();
    loop {
        let status = match send(&mut client, &report).await {
            Ok(resolution) => return delivered(job_id, resolution.as_ref()),
            Err(status) => status,
        };
        if !transient(status.code()) {
            let ack = Ack {
                job_id,
                code: status.code() as i32,
                message: status.message().to_owned(),
                ..Ack::default()
            };
            return settle(&ack);
        }
        tracing::debug!(job_id, error = status.message(), "Result not delivered yet");
        tokio::time::sleep(backoff.next_pause()).await;
    }
}

async fn send(client: &mut Client, report: &Report) -> Result<Option<pb::Resolution>, Status> {
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

fn delivered(job_id: i64, resolution: Option<&pb::Resolution>) {
    let resolution = resolution.cloned().unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(job_id: i64, token: i64) -> Report {
        Report::Complete(CompleteRequest {
            job_id,
            lease_token: token,
            ..CompleteRequest::default()
        })
    }

    fn ack(token: i64, code: Code) -> Ack {
        Ack {
            job_id: token,
            lease_token: token,
            code: code as i32,
            ..Ack::default()
        }
    }

    #[test]
    fn everything_waiting_goes_in_one_message() {
        let mut outbox = Outbox::default();
        for n in 1..=3 {
            outbox.push(complete(n, n));
        }
        let message = outbox.next_message().expect("a message");
        assert_eq!(message.reports.len(), 3);
        assert!(outbox.next_message().is_none());
        assert_eq!(outbox.unsettled(), 3);
    }

    #[test]
    fn acks_settle_reports_and_refusals_for_good_settle_too() {
        let mut outbox = Outbox::default();
        outbox.push(complete(1, 1));
        outbox.push(complete(2, 2));
        outbox.next_message();
        let freed = outbox.acknowledged(vec![ack(1, Code::Ok), ack(2, Code::FailedPrecondition)]);
        assert_eq!(freed, 2);
        assert_eq!(outbox.unsettled(), 0);
        // An ack for a report no longer held changes nothing.
        assert_eq!(outbox.acknowledged(vec![ack(1, Code::Ok)]), 0);
    }

    #[test]
    fn a_transient_refusal_holds_the_report_for_a_backoff() {
        let mut outbox = Outbox::default();
        outbox.push(complete(1, 1));
        outbox.next_message();
        assert_eq!(outbox.acknowledged(vec![ack(1, Code::Unavailable)]), 0);
        assert_eq!(outbox.unsettled(), 1);
        assert!(outbox.held_until().is_some());
        assert!(outbox.next_message().is_none());
    }

    #[test]
    fn reports_sent_on_a_broken_stream_go_again() {
        let mut outbox = Outbox::default();
        outbox.push(complete(1, 1));
        outbox.next_message();
        outbox.resend();
        let message = outbox.next_message().expect("sent again");
        assert_eq!(message.reports.len(), 1);
    }
}
