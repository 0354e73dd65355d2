//! The worker runtime: the lease stream, attempts, shutdown and reconnects.
//!
//! One loop owns the lease stream. It grants a credit per free slot, spawns
//! an attempt task per leased job, sends finished attempts' reports on the
//! stream, and grants one more credit each time an attempt's slot frees:
//! when the broker acknowledged its report, or when it ended with nothing
//! to report. When the stream breaks it reconnects with backoff while
//! running attempts go on; their reports wait in the outbox. On shutdown it
//! stops asking for jobs, gives running attempts `grace` to finish, stops
//! and releases the rest, and delivers the outbox with unary calls.

mod attempt;
mod backoff;
mod heartbeat;
mod outbox;
mod session;
mod span;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::broker_client::BrokerClient;
use baton_proto::v1::{Hello, LeaseResponse, LeasedJob, ReleaseRequest};
use tokio::sync::watch;
use tokio::task::{Id, JoinError, JoinSet};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};

use self::backoff::Backoff;
use self::outbox::{Outbox, Report};
use self::session::{Inbound, Session};
use crate::executor::{ExecutorSettings, Executors, PythonSettings};
use crate::metrics::{self, Metrics};
use crate::{Error, WorkerConfig};

type Client = BrokerClient<InterceptedService<Channel, Bearer>>;

/// Adds the configured `authorization` header, if any, to every call.
#[derive(Debug, Clone)]
struct Bearer(Option<AsciiMetadataValue>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// How long results may take to reach the broker once attempts are done.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one Release call may take at shutdown.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs a worker until `shutdown` resolves, then drains it: running
/// attempts get `config.grace` to finish, the rest are handed back to the
/// broker with Release (not charged an attempt), and results are flushed.
///
/// Returns `Ok` after a shutdown, and an error only for a bad configuration
/// or a broker that refuses the worker for good (bad credentials, protocol
/// mismatch). An unreachable broker is retried with backoff forever.
///
/// With `config.metrics_listen` set, the metrics endpoint is bound first
/// (an address in use is an error) and served until `run` returns.
pub async fn run(config: WorkerConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    config.validate()?;
    let metrics = Arc::new(Metrics::default());
    let _endpoint = serve_metrics(config.metrics_listen, &metrics).await?;
    run_with(config, metrics, shutdown).await
}

/// [`run`] counting into `metrics`, which it does not serve.
async fn run_with(
    config: WorkerConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    config.validate()?;
    let channel = config
        .endpoint()?
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy();
    let client = BrokerClient::with_interceptor(channel, Bearer(config.bearer()?));
    let executors = Executors::new(executor_settings(&config))?;
    let env = Arc::new(attempt::Env {
        client: client.clone(),
        executors,
        metrics,
    });
    let mut worker = Worker::new(config, client.clone(), env);
    let shutdown = std::pin::pin!(shutdown);
    let ended = worker.serve(shutdown).await;

    let (responses, result) = match ended {
        Ended::Shutdown(responses) => (responses, Ok(())),
        Ended::Refused(err) => (None, Err(err)),
    };
    worker.drain(responses).await;
    let outbox = std::mem::take(&mut worker.outbox);
    drop(worker);
    outbox.flush(client, FLUSH_TIMEOUT).await;
    result
}

/// Runs `workers` workers in this process, named `<name>-1` … `<name>-N`,
/// until `shutdown` resolves (for `baton dev`). Each has its own lease
/// stream and `config.concurrency` slots; one metrics endpoint (if
/// `config.metrics_listen` is set) counts them all. Returns the first error.
pub async fn run_pool(
    config: WorkerConfig,
    workers: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    config.validate()?;
    let metrics = Arc::new(Metrics::default());
    let _endpoint = serve_metrics(config.metrics_listen, &metrics).await?;
    let (stop, stopped) = watch::channel(false);
    let runs = (1..=workers).map(|n| {
        let config = WorkerConfig {
            name: format!("{}-{n}", config.name),
            ..config.clone()
        };
        let mut stopped = stopped.clone();
        run_with(config, metrics.clone(), async move {
            // An error means the pool is gone: stop as well.
            let _ = stopped.wait_for(|stop| *stop).await;
        })
    });
    let all = futures::future::join_all(runs);
    let mut all = std::pin::pin!(all);
    let results = tokio::select! {
        results = &mut all => results,
        () = shutdown => {
            stop.send_replace(true);
            all.await
        }
    };
    results.into_iter().collect()
}

async fn serve_metrics(
    addr: Option<std::net::SocketAddr>,
    metrics: &Metrics,
) -> Result<Option<metrics::Exporter>, Error> {
    match addr {
        Some(addr) => Ok(Some(metrics::serve(addr, metrics).await?)),
        None => Ok(None),
    }
}

fn executor_settings(config: &WorkerConfig) -> ExecutorSettings {
    ExecutorSettings {
        default_timeout: config.task_timeout,
        python: PythonSettings {
            executable: config.python.clone(),
            memory_limit: config.python_memory_limit,
        },
    }
}

/// A leased job whose attempt task is running.
#[derive(Debug, Clone, Copy)]
struct Lease {
    job_id: i64,
    token: i64,
}

/// How serving ended.
#[derive(Debug)]
enum Ended {
    /// Asked to stop; the lease stream, half-closed, if one was open.
    Shutdown(Option<Streaming<LeaseResponse>>),
    Refused(Error),
}

/// The loop's state: the broker, the slots, the running attempts.
#[derive(Debug)]
struct Worker {
    config: WorkerConfig,
    client: Client,
    env: Arc<attempt::Env>,
    /// Each attempt task ends with its report, if it has one.
    attempts: JoinSet<Option<Report>>,
    running: HashMap<Id, Lease>,
    /// Reports not yet acknowledged: their slots are still taken.
    outbox: Outbox,
}

impl Worker {
    fn new(config: WorkerConfig, client: Client, env: Arc<attempt::Env>) -> Self {
        Worker {
            config,
            client,
            env,
            attempts: JoinSet::new(),
            running: HashMap::new(),
            outbox: Outbox::default(),
        }
    }

    /// Keeps a lease stream open until shutdown, reconnecting with backoff.
    async fn serve<F: Future<Output = ()>>(&mut self, mut shutdown: Pin<&mut F>) -> Ended {
        let mut backoff = Backoff::default();
        loop {
            self.reap();
            let hello = self.hello();
            let mut client = self.client.clone();
            let opened = tokio::select! {
                () = shutdown.as_mut() => return Ended::Shutdown(None),
                opened = Session::open(&mut client, hello, self.free_slots()) => opened,
            };
            let status = match opened {
                Ok(session) => {
                    backoff.reset();
                    match self.pump(session, shutdown.as_mut()).await {
                        Ok(responses) => return Ended::Shutdown(Some(responses)),
                        Err(status) => {
                            self.outbox.resend();
                            status
                        }
                    }
                }
                Err(status) if refused(&status) => return Ended::Refused(Error::refused(&status)),
                Err(status) => status,
            };

            let pause = backoff.next_pause();
            self.env.metrics.reconnecting();
            tracing::warn!(
                error = status.message(),
                retry_in_ms = pause.as_millis(),
                "Broker unreachable; reconnecting"
            );
            if self.wait_offline(pause, shutdown.as_mut()).await {
                return Ended::Shutdown(None);
            }
        }
    }

    /// Waits `pause` before reconnecting, queueing the reports of
    /// attempts that end meanwhile; true when shutdown came first.
    async fn wait_offline<F: Future<Output = ()>>(
        &mut self,
        pause: Duration,
        mut shutdown: Pin<&mut F>,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + pause;
        loop {
            tokio::select! {
                () = shutdown.as_mut() => return true,
                () = tokio::time::sleep_until(deadline) => return false,
                Some(joined) = self.attempts.join_next_with_id() => self.finished_offline(joined),
            }
        }
    }

    /// Runs one session: spawns leased jobs, sends reports as attempts
    /// end, and grants a credit per freed slot. Ends with the stream's
    /// responses on shutdown, or with the status that broke it.
    async fn pump<F: Future<Output = ()>>(
        &mut self,
        mut session: Session,
        mut shutdown: Pin<&mut F>,
    ) -> Result<Streaming<LeaseResponse>, Status> {
        loop {
            if let Some(reports) = self.outbox.next_message() {
                session.report(reports);
            }
            let held = self.outbox.held_until();
            tokio::select! {
                () = shutdown.as_mut() => return Ok(session.into_responses()),
                inbound = session.next() => match inbound {
                    Inbound::Job(job) => self.start(*job, session.heartbeat_every),
                    Inbound::Acks(acks) => session.grant(self.outbox.acknowledged(acks)),
                    Inbound::Closed(status) => return Err(status),
                },
                Some(joined) = self.attempts.join_next_with_id() => {
                    session.grant(self.finished_all(joined));
                }
                () = sleep_until(held), if held.is_some() => {}
            }
        }
    }

    /// Forgets `joined` and every other attempt already over, so that
    /// their reports leave in one message; returns the slots freed.
    fn finished_all(&mut self, joined: Result<(Id, Option<Report>), JoinError>) -> u32 {
        let mut freed = u32::from(self.finished(joined));
        while let Some(joined) = self.attempts.try_join_next_with_id() {
            freed += u32::from(self.finished(joined));
        }
        freed
    }

    fn hello(&self) -> Hello {
        Hello {
            worker: self.config.name.clone(),
            queues: self.config.queues.clone(),
            kinds: self.config.kinds.clone(),
        }
    }

    fn free_slots(&self) -> u32 {
        let running = u32::try_from(self.running.len()).unwrap_or(u32::MAX);
        let taken = running.saturating_add(self.outbox.unsettled());
        self.config.concurrency.saturating_sub(taken)
    }

    fn start(&mut self, job: LeasedJob, heartbeat_every: Duration) {
        let lease = Lease {
            job_id: job.id,
            token: job.lease_token,
        };
        let run = attempt::run(self.env.clone(), job, heartbeat_every);
        let handle = self.attempts.spawn(run);
        self.running.insert(handle.id(), lease);
    }

    /// Forgets attempts that ended while no stream was open; their
    /// reports wait in the outbox.
    fn reap(&mut self) {
        while let Some(joined) = self.attempts.try_join_next_with_id() {
            self.finished_offline(joined);
        }
    }

    fn finished_offline(&mut self, joined: Result<(Id, Option<Report>), JoinError>) {
        let job_id = joined
            .as_ref()
            .ok()
            .and_then(|(_, r)| r.as_ref().map(Report::job_id));
        self.finished(joined);
        if let Some(job_id) = job_id {
            tracing::debug!(job_id, "Result held until the broker is back");
        }
    }

    /// Forgets an ended attempt and queues its report; true when its slot
    /// is free now, false when it waits for its report to settle.
    fn finished(&mut self, joined: Result<(Id, Option<Report>), JoinError>) -> bool {
        let id = match joined {
            Ok((id, Some(report))) => {
                self.running.remove(&id);
                self.outbox.push(report);
                return false;
            }
            Ok((id, None)) => id,
            Err(err) => {
                if err.is_panic() {
                    tracing::error!(error = %err, "Attempt task panicked; its lease will expire");
                }
                err.id()
            }
        };
        self.running.remove(&id);
        true
    }
}

/// Shutdown: waiting for attempts, then stopping and releasing the rest.
impl Worker {
    async fn drain(&mut self, responses: Option<Streaming<LeaseResponse>>) {
        let mut responses = responses;
        let deadline = tokio::time::Instant::now() + self.config.grace;
        if !self.running.is_empty() {
            tracing::info!(
                running = self.running.len(),
                grace_ms = self.config.grace.as_millis(),
                "Shutting down; waiting for running attempts"
            );
        }
        loop {
            tokio::select! {
                joined = self.attempts.join_next_with_id() => match joined {
                    Some(joined) => {
                        self.finished(joined);
                    }
                    None => break,
                },
                Some(job) = late_job(&mut responses) => {
                    release(self.client.clone(), job.id, job.lease_token).await;
                }
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        self.release_running().await;
    }

    /// Stops every attempt still running and hands its job back.
    async fn release_running(&mut self) {
        if self.running.is_empty() {
            return;
        }
        tracing::info!(
            running = self.running.len(),
            "Grace over; releasing running attempts"
        );
        self.attempts.abort_all();
        let mut releases = Vec::new();
        while let Some(joined) = self.attempts.join_next_with_id().await {
            match joined {
                Err(err) if err.is_cancelled() => {
                    if let Some(lease) = self.running.remove(&err.id()) {
                        releases.push(release(self.client.clone(), lease.job_id, lease.token));
                    }
                }
                // It ended on its own before the abort: its report is queued.
                other => {
                    self.finished(other);
                }
            }
        }
        futures::future::join_all(releases).await;
    }
}

/// Resolves at `at`, or never when there is no `at`.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A job the broker pushed after the worker stopped asking; `None` once
/// the stream is over (and pending forever after that).
async fn late_job(responses: &mut Option<Streaming<LeaseResponse>>) -> Option<LeasedJob> {
    use baton_proto::v1::lease_response::Msg;
    let stream = responses.as_mut()?;
    loop {
        match stream.message().await {
            Ok(Some(LeaseResponse {
                msg: Some(Msg::Job(job)),
            })) => return Some(job),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                *responses = None;
                return None;
            }
        }
    }
}

/// Hands a job back unfinished; failures are logged (the lease expires).
async fn release(mut client: Client, job_id: i64, lease_token: i64) {
    let mut request = Request::new(ReleaseRequest {
        job_id,
        lease_token,
    });
    request.set_timeout(RELEASE_TIMEOUT);
    match client.release(request).await {
        Ok(_) => tracing::info!(job_id, "Job released"),
        Err(status) => {
            tracing::warn!(
                job_id,
                error = status.message(),
                "Release failed; the lease will expire"
            );
        }
    }
}

/// Refusals that reconnecting cannot fix.
fn refused(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unauthenticated
            | Code::PermissionDenied
            | Code::InvalidArgument
            | Code::Unimplemented
    )
}
