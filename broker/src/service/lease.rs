//! The `Lease` stream: one session task per worker connection.
//!
//! The session leases only against credits: it reserves room in the
//! outbound channel first, then claims at most that many jobs in one
//! statement, so a stream never receives more jobs than credits granted.
//! It waits without polling: a notification of a queued job (from any
//! broker), a timer armed on the next known `available_at`, or new credits
//! wake it. Jobs still buffered when the worker disconnects were never sent
//! and are released without charging an attempt.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use baton_proto::v1 as pb;
use futures::{FutureExt, Stream};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tonic::{Status, Streaming};
use tracing::Instrument;

use super::commit::Committer;
use super::convert;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::model::{ClaimRequest, LeasedJob, Timestamp};
use crate::store::{JobWake, ReportItem, Store};
use crate::validate::{self, LeaseAsk, RefusedReport};

/// Most credits a stream may hold unspent.
const MAX_OUTSTANDING: u32 = 1_000_000;
/// Pause before claiming again when due jobs were skipped because their
/// execution was busy finishing another job.
const BUSY_RETRY: Duration = Duration::from_millis(20);

static SESSIONS: AtomicU64 = AtomicU64::new(1);

type Reply = Result<pb::LeaseResponse, Status>;

/// What every session of a broker shares.
#[derive(Debug, Clone)]
pub(crate) struct LeaseSettings {
    pub(crate) lease_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) claim_batch_size: u32,
    /// Counts leases as claims return them.
    pub(crate) metrics: Arc<Metrics>,
    /// Writes reports sent on the streams, with every other report.
    pub(crate) committer: Committer,
}

/// Starts a session over `inbound` and returns its outbound stream.
pub(crate) fn open(
    store: Store,
    settings: LeaseSettings,
    inbound: Streaming<pb::LeaseRequest>,
) -> Outbound {
    let capacity = settings.claim_batch_size as usize + 1;
    let (tx, rx) = mpsc::channel(capacity);
    let wakes = store.subscribe_jobs();
    let outbound = Outbound {
        rx,
        store: store.clone(),
        metrics: settings.metrics.clone(),
    };
    tokio::spawn(async move {
        if let Err(status) = run(store, settings, inbound, tx.clone(), wakes).await {
            // The worker may be gone already; nothing else to tell.
            let _ = tx.send(Err(status)).await;
        }
    });
    outbound
}

struct Session {
    store: Store,
    settings: LeaseSettings,
    tx: mpsc::Sender<Reply>,
    claim: ClaimRequest,
    credits: u32,
    due: Option<Instant>,
}

async fn run(
    store: Store,
    settings: LeaseSettings,
    mut inbound: Streaming<pb::LeaseRequest>,
    tx: mpsc::Sender<Reply>,
    mut wakes: broadcast::Receiver<JobWake>,
) -> Result<(), Status> {
    let hello = first_hello(&mut inbound).await?;
    let session_id = format!(
        "{}-{}",
        hello.worker,
        SESSIONS.fetch_add(1, Ordering::Relaxed)
    );
    let span = tracing::info_span!("lease_session", session = %session_id, worker = %hello.worker);
    let mut session = Session::new(store, settings, tx, hello);
    session.welcome(session_id).await?;
    session
        .serve(&mut inbound, &mut wakes)
        .instrument(span)
        .await
}

async fn first_hello(inbound: &mut Streaming<pb::LeaseRequest>) -> Result<pb::Hello, Status> {
    let first = inbound.message().await?.unwrap_or_default();
    Ok(validate::hello(&first)?.clone())
}

impl Session {
    fn new(
        store: Store,
        settings: LeaseSettings,
        tx: mpsc::Sender<Reply>,
        hello: pb::Hello,
    ) -> Self {
        let queues = if hello.queues.is_empty() {
            vec!["default".to_owned()]
        } else {
            hello.queues
        };
        let claim = ClaimRequest {
            worker: Some(hello.worker)
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "unnamed".into()),
            queues,
            kinds: hello.kinds,
            limit: 0,
            lease_timeout: settings.lease_timeout,
        };
        Session {
            store,
            settings,
            tx,
            claim,
            credits: 0,
            due: None,
        }
    }

    async fn welcome(&self, session: String) -> Result<(), Status> {
        let welcome = pb::Welcome {
            session,
            lease_timeout: convert::duration(self.settings.lease_timeout),
            heartbeat_interval: convert::duration(self.settings.heartbeat_interval),
        };
        let reply = pb::LeaseResponse {
            msg: Some(pb::lease_response::Msg::Welcome(welcome)),
        };
        self.tx
            .send(Ok(reply))
            .await
            .map_err(|_| Status::cancelled("worker went away"))
    }

    async fn serve(
        &mut self,
        inbound: &mut Streaming<pb::LeaseRequest>,
        wakes: &mut broadcast::Receiver<JobWake>,
    ) -> Result<(), Status> {
        loop {
            if self.credits > 0 && self.due.is_none_or(|due| due <= Instant::now()) {
                self.fill().await.map_err(Status::from)?;
            }
            let hungry = self.credits > 0;
            let due = self.due.unwrap_or_else(far_future);
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(request)) => {
                        self.on_request(request)?;
                        if !self.take_ready(inbound)? {
                            return Ok(());
                        }
                    }
                    Ok(None) | Err(_) => return Ok(()),
                },
                wake = wakes.recv(), if hungry => self.on_wake(wake),
                () = tokio::time::sleep_until(due), if hungry && self.due.is_some() => {}
                () = self.tx.closed() => return Ok(()),
            }
        }
    }

    /// Takes every message already received, so that credits granted a
    /// few at a time are claimed in one statement; false when the stream
    /// ended.
    fn take_ready(&mut self, inbound: &mut Streaming<pb::LeaseRequest>) -> Result<bool, Status> {
        loop {
            match inbound.message().now_or_never() {
                None => return Ok(true),
                Some(Ok(Some(request))) => self.on_request(request)?,
                Some(Ok(None) | Err(_)) => return Ok(false),
            }
        }
    }

    fn on_request(&mut self, request: pb::LeaseRequest) -> Result<(), Status> {
        match validate::lease_request(&request)? {
            LeaseAsk::Credits(granted) => {
                self.credits = self.credits.saturating_add(granted).min(MAX_OUTSTANDING);
                self.due = None;
            }
            LeaseAsk::Reports(reports) => self.on_reports(reports),
        }
        Ok(())
    }

    /// Hands reports to the group commit and acknowledges them when
    /// written, without holding up this stream's leases meanwhile.
    fn on_reports(&self, reports: Vec<Result<ReportItem, RefusedReport>>) {
        let committer = self.settings.committer.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let acks = acknowledge(&committer, reports).await;
            let reply = pb::LeaseResponse {
                msg: Some(pb::lease_response::Msg::Acks(pb::Acks { acks })),
            };
            // A worker gone meanwhile resends on its next stream.
            let _ = tx.send(Ok(reply)).await;
        });
    }

    /// Claims now when the wake concerns this stream and is due; arms the
    /// timer when it is due later.
    fn on_wake(&mut self, wake: Result<JobWake, broadcast::error::RecvError>) {
        match wake {
            Ok(JobWake::Due { queue, at }) if self.claim.queues.contains(&queue) => {
                let at = instant_at(at);
                self.due = Some(self.due.map_or(at, |due| due.min(at)));
            }
            Ok(JobWake::Due { .. }) => {}
            // Lagged or told to look everywhere: look now.
            _ => self.due = None,
        }
    }

    /// Leases against credits, batch after batch, until credits run out or
    /// nothing is due; then arms the timer on the next due job.
    async fn fill(&mut self) -> Result<(), Error> {
        self.due = None;
        while self.credits > 0 {
            let want = self.credits.min(self.settings.claim_batch_size);
            let Ok(permits) = self.tx.reserve_many(want as usize).await else {
                return Ok(());
            };
            self.claim.limit = want;
            let jobs = self.store.claim(&self.claim).await?;
            self.settings.metrics.leased(&jobs);
            let leased = u32::try_from(jobs.len()).unwrap_or(want);
            for (permit, job) in permits.zip(jobs) {
                permit.send(Ok(leased_reply(&job)));
            }
            self.credits -= leased;
            if leased < want {
                return self.arm_timer().await;
            }
        }
        Ok(())
    }

    async fn arm_timer(&mut self) -> Result<(), Error> {
        let next = self
            .store
            .next_due(&self.claim.queues, &self.claim.kinds)
            .await?;
        self.due = next.map(|at| next_claim_at(instant_at(at)));
        Ok(())
    }
}

/// When to claim again for the earliest job a claim left behind: at its
/// due time, or after [`BUSY_RETRY`] when it is due already (a claim
/// skips due jobs only while their execution or row is locked elsewhere,
/// and claiming again at once would spin).
fn next_claim_at(due: Instant) -> Instant {
    let now = Instant::now();
    if due > now { due } else { now + BUSY_RETRY }
}

/// Writes the well-formed reports and answers every report, refused ones
/// with the status their unary call would have got.
async fn acknowledge(
    committer: &Committer,
    reports: Vec<Result<ReportItem, RefusedReport>>,
) -> Vec<pb::Ack> {
    let mut acks = Vec::with_capacity(reports.len());
    let mut items = Vec::with_capacity(reports.len());
    for report in reports {
        match report {
            Ok(item) => items.push(item),
            Err(refused) => {
                let status = Status::from(refused.error);
                acks.push(ack(refused.job_id, refused.token, Err(status)));
            }
        }
    }
    let keys: Vec<(i64, i64)> = items.iter().map(|i| (i.job_id, i.token)).collect();
    let answers = committer.submit(items).await;
    let written = keys.into_iter().zip(answers);
    acks.extend(written.map(|((job_id, token), answer)| ack(job_id, token, answer)));
    acks
}

fn ack(job_id: i64, lease_token: i64, answer: Result<crate::model::Resolution, Status>) -> pb::Ack {
    match answer {
        Ok(resolution) => pb::Ack {
            job_id,
            lease_token,
            resolution: Some(convert::resolution(&resolution)),
            code: 0,
            message: String::new(),
        },
        Err(status) => pb::Ack {
            job_id,
            lease_token,
            resolution: None,
            code: status.code() as i32,
            message: status.message().to_owned(),
        },
    }
}

fn leased_reply(leased: &LeasedJob) -> pb::LeaseResponse {
    let span = tracing::info_span!(
        "baton.lease",
        job_id = leased.job.id,
        attempt = leased.job.attempts,
        max_attempts = leased.job.max_attempts,
        lease_token = leased.lease_token,
    );
    let _entered = span.enter();
    tracing::debug!(queue = %leased.job.queue, kind = %leased.job.kind, "Leased job");
    pb::LeaseResponse {
        msg: Some(pb::lease_response::Msg::Job(convert::leased_job(leased))),
    }
}

/// The monotonic instant of a wall-clock time (now, if it has passed).
fn instant_at(at: Timestamp) -> Instant {
    let ahead = (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + ahead
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

/// The outbound half of a lease stream. Dropped when the worker goes away;
/// leased jobs still buffered then were never sent, so they are released.
#[derive(Debug)]
pub(crate) struct Outbound {
    rx: mpsc::Receiver<Reply>,
    store: Store,
    metrics: Arc<Metrics>,
}

impl Stream for Outbound {
    type Item = Reply;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Reply>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        self.rx.close();
        let mut unsent = Vec::new();
        while let Ok(reply) = self.rx.try_recv() {
            if let Ok(pb::LeaseResponse {
                msg: Some(pb::lease_response::Msg::Job(job)),
            }) = reply
            {
                unsent.push((job.id, job.lease_token));
            }
        }
        if unsent.is_empty() {
            return;
        }
        let store = self.store.clone();
        for (_, token) in &unsent {
            self.metrics.released(*token);
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(release_all(store, unsent));
        }
    }
}

async fn release_all(store: Store, jobs: Vec<(i64, i64)>) {
    for (job_id, token) in jobs {
        match store.release(job_id, token).await {
            Ok(_) => tracing::info!(job_id, "Released a job its worker never received"),
            Err(err) => tracing::warn!(job_id, error = %err, "Releasing an unsent job failed"),
        }
    }
}
