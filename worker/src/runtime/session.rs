//! One lease stream: Hello, Welcome, then credits and reports out, jobs
//! and acks in.

use std::time::Duration;

use baton_proto::v1::lease_request::Msg as Ask;
use baton_proto::v1::lease_response::Msg as Answer;
use baton_proto::v1::{Ack, Credits, Hello, LeaseRequest, LeaseResponse, LeasedJob, Reports};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Status, Streaming};

use super::Client;

/// Heartbeat interval when the broker's Welcome leaves it unset.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

/// Shortest heartbeat interval accepted, whatever the broker says.
const MIN_HEARTBEAT: Duration = Duration::from_millis(10);

/// An open lease stream.
#[derive(Debug)]
pub(super) struct Session {
    /// Unbounded so that sending never waits on the broker while the
    /// broker waits on this worker to read: what goes out is bounded by
    /// the slots anyway.
    requests: mpsc::UnboundedSender<LeaseRequest>,
    pub(super) responses: Streaming<LeaseResponse>,
    /// How often running attempts heartbeat, from the broker's Welcome.
    pub(super) heartbeat_every: Duration,
}

/// What arrived on a lease stream.
#[derive(Debug)]
pub(super) enum Inbound {
    Job(Box<LeasedJob>),
    Acks(Vec<Ack>),
    Closed(Status),
}

impl Session {
    /// Opens a stream, says Hello, waits for Welcome and grants `credits`.
    pub(super) async fn open(
        client: &mut Client,
        hello: Hello,
        credits: u32,
    ) -> Result<Self, Status> {
        let (requests, outgoing) = mpsc::unbounded_channel();
        // Queued before the call so a broker that answers headers only after
        // the first message still answers.
        let hello = LeaseRequest {
            msg: Some(Ask::Hello(hello)),
        };
        requests
            .send(hello)
            .map_err(|_| Status::internal("lease queue closed"))?;

        let mut responses = client
            .lease(UnboundedReceiverStream::new(outgoing))
            .await?
            .into_inner();
        let welcome = match responses.message().await? {
            Some(LeaseResponse {
                msg: Some(Answer::Welcome(welcome)),
            }) => welcome,
            _ => return Err(Status::internal("broker did not answer hello with welcome")),
        };
        tracing::info!(
            session = welcome.session.as_str(),
            "Connected to the broker"
        );

        let heartbeat_every = welcome
            .heartbeat_interval
            .as_ref()
            .map(baton_proto::convert::from_duration)
            .filter(|every| !every.is_zero())
            .unwrap_or(DEFAULT_HEARTBEAT)
            .max(MIN_HEARTBEAT);
        let session = Session {
            requests,
            responses,
            heartbeat_every,
        };
        session.grant(credits);
        Ok(session)
    }

    /// Grants more credits; a closed stream shows up on the next read.
    pub(super) fn grant(&self, credits: u32) {
        let Ok(credits) = i32::try_from(credits) else {
            return;
        };
        if credits > 0 {
            let ask = LeaseRequest {
                msg: Some(Ask::Credits(Credits { credits })),
            };
            let _ = self.requests.send(ask);
        }
    }

    /// Sends finished attempts' reports; a closed stream shows up on the
    /// next read.
    pub(super) fn report(&self, reports: Reports) {
        let ask = LeaseRequest {
            msg: Some(Ask::Reports(reports)),
        };
        let _ = self.requests.send(ask);
    }

    /// Waits for the next leased job or acks, or for the stream to end.
    pub(super) async fn next(&mut self) -> Inbound {
        loop {
            match self.responses.message().await {
                Ok(Some(LeaseResponse {
                    msg: Some(Answer::Job(job)),
                })) => return Inbound::Job(Box::new(job)),
                Ok(Some(LeaseResponse {
                    msg: Some(Answer::Acks(acks)),
                })) => return Inbound::Acks(acks.acks),
                Ok(Some(_)) => tracing::debug!("Unexpected lease message ignored"),
                Ok(None) => return Inbound::Closed(Status::unavailable("lease stream ended")),
                Err(status) => return Inbound::Closed(status),
            }
        }
    }

    /// Stops asking for jobs (half-closes the stream) and keeps reading what
    /// the broker already sent.
    pub(super) fn into_responses(self) -> Streaming<LeaseResponse> {
        self.responses
    }
}
