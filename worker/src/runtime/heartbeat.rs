//! Heartbeats of a running attempt, until the broker says to stop.

use std::time::Duration;

use baton_proto::v1::{Directive, HeartbeatRequest, LeasedJob};
use tokio::time::{Instant, MissedTickBehavior};
use tonic::{Code, Request};

use super::Client;

/// Why an attempt was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The job was cancelled (DIRECTIVE_CANCELLED).
    Cancelled,
    /// The lease is no longer ours (FAILED_PRECONDITION or NOT_FOUND).
    LeaseLost,
}

impl Stop {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Stop::Cancelled => "cancelled",
            Stop::LeaseLost => "lease_lost",
        }
    }
}

/// Heartbeats every `every` and returns only when the attempt must stop.
/// Transport errors are logged and the heartbeats go on: the broker may be
/// back before the lease expires.
pub(super) async fn until_stopped(mut client: Client, job: &LeasedJob, every: Duration) -> Stop {
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let mut request = Request::new(HeartbeatRequest {
            job_id: job.id,
            lease_token: job.lease_token,
        });
        request.set_timeout(every);
        match client.heartbeat(request).await {
            Ok(answer) if answer.get_ref().directive() == Directive::Cancelled => {
                return Stop::Cancelled;
            }
            Ok(_) => tracing::trace!("Lease extended"),
            Err(status) if matches!(status.code(), Code::FailedPrecondition | Code::NotFound) => {
                return Stop::LeaseLost;
            }
            Err(status) => tracing::warn!(error = status.message(), "Heartbeat failed"),
        }
    }
}
