//! The job store: the one type the services call for everything that
//! touches the database (enqueue, claim, complete, fail, heartbeat,
//! release, reap, executions, events, playbooks).
//!
//! [`Store`] hides its backend behind an enum: Postgres for production
//! (several brokers, one database) and embedded SQLite for one machine.
//! The URL's scheme picks one; both behave the same and
//! pass the same tests. Wake-ups (a job queued, an event recorded) travel
//! as [`Signals`], fed by Postgres's listener or by SQLite's commits.
//!
//! What does not depend on the database lives here, beside the backends:
//! rows and their conversion ([`rows`]), events ([`events`]), the end of
//! an attempt ([`resolve`]), lease tokens ([`leases`]), workflow rules
//! ([`workflow`]) and the playbook catalog's ([`catalog`]). Each backend
//! keeps only its SQL and how it binds and decodes values.

mod batch;
mod catalog;
mod events;
mod leases;
mod postgres;
mod resolve;
mod rows;
mod scheme;
mod signals;
mod sqlite;
mod workflow;

use std::sync::Arc;

use baton_dsl::Playbook;
use futures::future::Either;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::broadcast;

use crate::config::BrokerConfig;
use crate::error::Error;
use crate::model::{
    ClaimRequest, Event, Execution, ExecutionFilter, HeartbeatAnswer, Job, JobFilter, JobState,
    LeasedJob, NewJob, PlaybookRecord, Report, Resolution, Timestamp,
};

pub use batch::{Answers, ReportItem};
pub(crate) use scheme::Scheme;
pub use signals::{JobWake, Signals};

pub(crate) use sqlite::options as sqlite_options;

/// The store's answer to one reaped lease.
pub use resolve::Reaped;

/// The job store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    signals: Signals,
}

#[derive(Debug, Clone)]
enum Backend {
    Postgres(Arc<postgres::Pg>),
    Sqlite(Arc<sqlite::Lite>),
}

/// Runs the same call on whichever backend the store has: both backends
/// expose the same methods with the same signatures.
macro_rules! dispatch {
    ($store:expr, $backend:ident => $call:expr) => {
        match &$store.backend {
            Backend::Postgres($backend) => $call,
            Backend::Sqlite($backend) => $call,
        }
    };
}

/// The report of a finished attempt: `Complete` or `Fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// The attempt succeeded.
    Complete,
    /// The attempt failed.
    Fail,
}

impl Store {
    /// Connects to the database named by `config.database_url`:
    /// `postgres://` or `postgresql://` for Postgres, `sqlite:` for an
    /// embedded SQLite file (created with its directory when the URL says
    /// `mode=rwc`). Migrations are not run here (see [`crate::migrate`]).
    pub async fn connect(config: &BrokerConfig) -> Result<Store, Error> {
        let url = &config.database_url;
        match Scheme::of(url)? {
            Scheme::Postgres => {
                // No ping before each acquire: it would add a round trip to
                // every call, and the health probe already notices a lost
                // database (a dead connection fails its statement and is
                // dropped).
                let pool = PgPoolOptions::new()
                    .max_connections(config.max_connections)
                    .test_before_acquire(false)
                    .connect(url)
                    .await?;
                Ok(Store::from_pool(pool))
            }
            Scheme::Sqlite => {
                let (writer, reader) = sqlite::pools(url, config.max_connections).await?;
                Ok(Store::from_sqlite(writer, reader))
            }
        }
    }

    /// A store over an existing Postgres pool.
    pub fn from_pool(pool: PgPool) -> Store {
        Store {
            backend: Backend::Postgres(Arc::new(postgres::Pg::new(pool))),
            signals: Signals::new(),
        }
    }

    /// A store over SQLite pools: `writer` of exactly one connection (it
    /// serializes every write), `reader` for reads outside transactions.
    fn from_sqlite(writer: sqlx::SqlitePool, reader: sqlx::SqlitePool) -> Store {
        let signals = Signals::new();
        let lite = sqlite::Lite::new(writer, reader, signals.clone());
        Store {
            backend: Backend::Sqlite(Arc::new(lite)),
            signals,
        }
    }

    /// Wake-ups for lease streams and event watchers.
    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// Starts listening for the database's notifications and returns the
    /// loop that forwards them to [`Store::signals`] until dropped. Jobs
    /// and events committed after this returns wake subscribers. SQLite
    /// has nobody else to hear from: its commits fire the signals
    /// themselves, and its loop stays pending.
    pub async fn listen(
        &self,
    ) -> Result<impl std::future::Future<Output = ()> + Send + 'static, Error> {
        Ok(match &self.backend {
            Backend::Postgres(pg) => Either::Left(pg.listen(&self.signals).await?),
            Backend::Sqlite(lite) => Either::Right(lite.listen(&self.signals).await?),
        })
    }

    /// Enqueues bare jobs in one transaction; idempotency keys used before
    /// return the earlier job.
    pub async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>, Error> {
        dispatch!(self, backend => backend.enqueue(jobs).await)
    }

    /// Leases up to `request.limit` due jobs in one statement.
    pub async fn claim(&self, request: &ClaimRequest) -> Result<Vec<LeasedJob>, Error> {
        let leased = dispatch!(self, backend => backend.claim(request).await)?;
        if !leased.is_empty() {
            self.signals.leased.notify_one();
        }
        Ok(leased)
    }

    /// Resolves once this store grants a lease (at once if one was granted
    /// since the last call).
    pub async fn lease_granted(&self) {
        self.signals.leased.notified().await;
    }

    /// The earliest `available_at` among queued jobs a claim could take.
    pub async fn next_due(
        &self,
        queues: &[String],
        kinds: &[String],
    ) -> Result<Option<Timestamp>, Error> {
        dispatch!(self, backend => backend.next_due(queues, kinds).await)
    }

    /// Records how an attempt ended and applies the retry policy.
    pub async fn report(
        &self,
        call: Call,
        job_id: i64,
        token: i64,
        report: Report,
    ) -> Result<Resolution, Error> {
        let item = ReportItem {
            call,
            job_id,
            token,
            report,
        };
        let mut answers = self.report_many(vec![item]).await?;
        answers.pop().unwrap_or_else(|| Err(batch::unanswered()))
    }

    /// Records many reports in one transaction (a group commit) and
    /// answers each as [`Store::report`] would, in order. An `Err` means
    /// the transaction failed and nothing of the batch was written.
    pub async fn report_many(&self, items: Vec<ReportItem>) -> Result<Answers, Error> {
        dispatch!(self, backend => backend.report_many(items).await)
    }

    /// Extends a lease by `lease_timeout`.
    pub async fn heartbeat(
        &self,
        job_id: i64,
        token: i64,
        lease_timeout: std::time::Duration,
    ) -> Result<HeartbeatAnswer, Error> {
        dispatch!(self, backend => backend.heartbeat(job_id, token, lease_timeout).await)
    }

    /// Hands a leased job back without charging an attempt.
    pub async fn release(&self, job_id: i64, token: i64) -> Result<JobState, Error> {
        dispatch!(self, backend => backend.release(job_id, token).await)
    }

    /// Ids of up to `limit` jobs whose lease has expired.
    pub async fn expired(&self, limit: u32) -> Result<Vec<i64>, Error> {
        dispatch!(self, backend => backend.expired(limit).await)
    }

    /// Expires one lease through the retry policy, if it is still expired.
    pub async fn reap(&self, job_id: i64) -> Result<Option<Reaped>, Error> {
        dispatch!(self, backend => backend.reap(job_id).await)
    }

    /// When the earliest current lease expires.
    pub async fn next_expiry(&self) -> Result<Option<Timestamp>, Error> {
        dispatch!(self, backend => backend.next_expiry().await)
    }

    /// Jobs matching `filter`, newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, Error> {
        dispatch!(self, backend => backend.list_jobs(filter).await)
    }

    /// One job and its attempts, oldest first.
    pub async fn get_job(&self, id: i64) -> Result<(Job, Vec<crate::model::Attempt>), Error> {
        dispatch!(self, backend => backend.get_job(id).await)
    }

    /// Puts a dead or cancelled job back in its queue.
    pub async fn requeue(&self, id: i64) -> Result<Job, Error> {
        dispatch!(self, backend => backend.requeue(id).await)
    }

    /// Cancels a queued or leased job.
    pub async fn cancel_job(&self, id: i64) -> Result<Job, Error> {
        dispatch!(self, backend => backend.cancel_job(id).await)
    }

    /// Stores a validated playbook as the next version of its path.
    pub async fn register_playbook(
        &self,
        playbook: &Playbook,
        yaml: &str,
    ) -> Result<PlaybookRecord, Error> {
        dispatch!(self, backend => backend.register_playbook(playbook, yaml).await)
    }

    /// One playbook version by path (`version` 0 for the latest).
    pub async fn get_playbook(&self, path: &str, version: u32) -> Result<PlaybookRecord, Error> {
        dispatch!(self, backend => backend.get_playbook(path, version).await)
    }

    /// One playbook version by id.
    pub async fn get_playbook_by_id(&self, id: i64) -> Result<PlaybookRecord, Error> {
        dispatch!(self, backend => backend.get_playbook_by_id(id).await)
    }

    /// The latest version of every playbook whose path starts with `prefix`.
    pub async fn list_playbooks(&self, prefix: &str) -> Result<Vec<PlaybookRecord>, Error> {
        dispatch!(self, backend => backend.list_playbooks(prefix).await)
    }

    /// Starts an execution of `playbook` and reaches its `start` step.
    pub async fn run(
        &self,
        playbook: &PlaybookRecord,
        overrides: Option<serde_json::Map<String, serde_json::Value>>,
        traceparent: &str,
    ) -> Result<Execution, Error> {
        dispatch!(self, backend => backend.run(playbook, overrides, traceparent).await)
    }

    /// One execution.
    pub async fn get_execution(&self, id: i64) -> Result<Execution, Error> {
        dispatch!(self, backend => backend.get_execution(id).await)
    }

    /// Executions matching `filter`, newest first.
    pub async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>, Error> {
        dispatch!(self, backend => backend.list_executions(filter).await)
    }

    /// Cancels a running execution and its unfinished jobs.
    pub async fn cancel_execution(&self, id: i64) -> Result<Execution, Error> {
        dispatch!(self, backend => backend.cancel_execution(id).await)
    }

    /// Up to `limit` events of an execution with ids above `after_id`.
    pub async fn events(
        &self,
        execution_id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Event>, Error> {
        dispatch!(self, backend => backend.events(execution_id, after_id, limit).await)
    }

    /// Subscribes to job wake-ups (see [`Signals`]).
    pub fn subscribe_jobs(&self) -> broadcast::Receiver<JobWake> {
        self.signals.jobs.subscribe()
    }

    /// Subscribes to execution ids that gained events.
    pub fn subscribe_events(&self) -> broadcast::Receiver<i64> {
        self.signals.events.subscribe()
    }
}

impl Store {
    /// Unfinished jobs per queue and state, and the start of the oldest
    /// current lease, for the metrics; read-only.
    pub async fn backlog(&self) -> Result<crate::model::Backlog, Error> {
        dispatch!(self, backend => backend.backlog().await)
    }
}
