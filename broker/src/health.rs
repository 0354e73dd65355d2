//! Whether the broker can reach its database, and what follows from it.
//!
//! A [`Probe`] asks Postgres `SELECT 1` on a connection of its own every
//! [`HealthConfig::interval`]. While no answer comes, `grpc.health.v1`
//! says NOT_SERVING for the broker as a whole and for every service that
//! needs the database, and the [`Gate`] in front of those services answers
//! UNAVAILABLE at once, instead of letting each call wait for a pool
//! connection that cannot be made. The first answer turns both back and
//! wakes every lease stream: jobs came due while nobody could claim them,
//! and notifications may have been lost with the listener's connection.
//!
//! The probe keeps a connection of its own so that a pool busy with work
//! is never taken for an outage. SQLite lives in the process and has no
//! outage to probe: its broker stays SERVING.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::time::MissedTickBehavior;
use tonic::service::Interceptor;
use tonic::{Request, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::auth::Authenticator;
use crate::config::ConfigError;
use crate::error::Error;
use crate::store::{Scheme, Signals};

/// The names whose status follows the database: the broker as a whole
/// (`""`, what a readiness probe asks) and every service that needs it.
const DATABASE_SERVICES: &[&str] = &[
    "",
    "baton.v1.Broker",
    "baton.v1.Playbooks",
    "baton.v1.Executions",
    "baton.v1.Jobs",
];

/// Services that need no database. They stay SERVING as long as the
/// process serves, so a liveness probe that names one does not restart a
/// broker because its database is away.
const PURE_SERVICES: &[&str] = &["baton.v1.Policies"];

/// How the database probe works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// Time between two probes. Default 250 ms: the start and the end of
    /// an outage are noticed within about that long.
    pub interval: Duration,
    /// Longest wait for the probe's connection and its answer before the
    /// database counts as unreachable. Default 2 s.
    pub timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: Duration::from_millis(250),
            timeout: Duration::from_secs(2),
        }
    }
}

impl HealthConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::ZeroDuration("health.interval"));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("health.timeout"));
        }
        Ok(())
    }
}

/// What the broker knows of its database, shared by the health service,
/// the gate and the probe; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    reporter: HealthReporter,
    reachable: Arc<AtomicBool>,
}

impl Health {
    /// A broker that has just connected: its database is reachable.
    pub(crate) fn new() -> Self {
        Health {
            reporter: HealthReporter::new(),
            reachable: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The `grpc.health.v1` service, with every Baton service registered.
    pub(crate) async fn service(&self) -> HealthServer<HealthService> {
        let status = serving(self.reachable.load(Ordering::Acquire));
        for name in DATABASE_SERVICES {
            self.reporter.set_service_status(*name, status).await;
        }
        for name in PURE_SERVICES {
            let serving = ServingStatus::Serving;
            self.reporter.set_service_status(*name, serving).await;
        }
        HealthServer::new(HealthService::from_health_reporter(self.reporter.clone()))
    }

    /// The interceptor for services that need the database.
    pub(crate) fn gate(&self, auth: Authenticator) -> Gate {
        Gate {
            auth,
            reachable: self.reachable.clone(),
        }
    }

    /// Records what a probe found; true when that changed anything.
    async fn set_reachable(&self, reachable: bool) -> bool {
        // The flag first: the gate must refuse calls before health says
        // why, so that a client seeing NOT_SERVING is also refused.
        if self.reachable.swap(reachable, Ordering::AcqRel) == reachable {
            return false;
        }
        for name in DATABASE_SERVICES {
            let status = serving(reachable);
            self.reporter.set_service_status(*name, status).await;
        }
        true
    }
}

fn serving(reachable: bool) -> ServingStatus {
    if reachable {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// The interceptor in front of every `baton.v1` service that needs the
/// database: the bearer token first, then UNAVAILABLE while the database
/// is unreachable.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    auth: Authenticator,
    reachable: Arc<AtomicBool>,
}

impl Interceptor for Gate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let request = self.auth.call(request)?;
        if self.reachable.load(Ordering::Acquire) {
            Ok(request)
        } else {
            Err(Status::unavailable(
                "the broker cannot reach its database; try again later",
            ))
        }
    }
}

/// Why a probe got no answer.
#[derive(Debug, thiserror::Error)]
enum Unanswered {
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Asks the database, on its own connection, whether it answers, and
/// tells [`Health`]. Its loop calls [`Probe::run_once`], which tests call
/// directly.
#[derive(Debug)]
pub(crate) struct Probe {
    options: PgConnectOptions,
    config: HealthConfig,
    health: Health,
    signals: Signals,
    /// Kept between probes while it answers, so that a probe costs one
    /// round trip and not one connection.
    connection: Option<PgConnection>,
}

impl Probe {
    /// A probe of the database `url` names when it is Postgres; `None` for
    /// SQLite. `signals` are woken when the database comes back.
    pub(crate) fn new(
        url: &str,
        config: HealthConfig,
        health: Health,
        signals: Signals,
    ) -> Result<Option<Probe>, Error> {
        if Scheme::of(url)? != Scheme::Postgres {
            return Ok(None);
        }
        let options = PgConnectOptions::from_str(url)?
            .application_name("baton-broker health")
            .disable_statement_logging();
        Ok(Some(Probe {
            options,
            config,
            health,
            signals,
            connection: None,
        }))
    }

    /// Probes every `interval` until dropped.
    pub(crate) async fn run(mut self) {
        let mut ticks = tokio::time::interval(self.config.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.run_once().await;
        }
    }

    /// Probes once and reports what it found, logging only a change;
    /// returns whether the database answered.
    pub(crate) async fn run_once(&mut self) -> bool {
        let answered = self.ask().await;
        if self.health.set_reachable(answered.is_ok()).await {
            match &answered {
                Ok(()) => {
                    self.signals.wake_all();
                    // Tests wait for this line, so its wording is fixed.
                    tracing::info!("Database reachable again");
                }
                Err(error) => {
                    // Tests wait for this line, so its wording is fixed.
                    tracing::warn!(%error, "Database unreachable; refusing the calls that need it");
                }
            }
        }
        answered.is_ok()
    }

    async fn ask(&mut self) -> Result<(), Unanswered> {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.select_one()).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(Unanswered::Timeout(timeout)),
        }
    }

    /// `SELECT 1` on the kept connection, or on a new one; the connection
    /// is kept again only once it has answered.
    async fn select_one(&mut self) -> Result<(), sqlx::Error> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => PgConnection::connect_with(&self.options).await?,
        };
        sqlx::query("SELECT 1").execute(&mut connection).await?;
        self.connection = Some(connection);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_server::Health as _;

    use super::*;

    async fn status(service: &HealthService, name: &str) -> ServingStatus {
        let request = Request::new(HealthCheckRequest {
            service: name.to_owned(),
        });
        let answer = service.check(request).await.expect("registered");
        match answer.into_inner().status {
            1 => ServingStatus::Serving,
            2 => ServingStatus::NotServing,
            other => panic!("unexpected status {other}"),
        }
    }

    fn call(gate: &mut Gate) -> Result<(), Code> {
        gate.call(Request::new(())).map(drop).map_err(|s| s.code())
    }

    /// A URL on which nothing listens: connections are refused at once.
    fn refusing_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        format!("postgres://baton@127.0.0.1:{port}/baton")
    }

    #[tokio::test]
    async fn health_follows_the_database_and_policies_stay_serving() {
        let health = Health::new();
        let service = HealthService::from_health_reporter(health.reporter.clone());
        health.service().await;
        assert_eq!(status(&service, "").await, ServingStatus::Serving);

        assert!(health.set_reachable(false).await);
        assert!(!health.set_reachable(false).await, "no change, no news");
        for name in DATABASE_SERVICES {
            assert_eq!(status(&service, name).await, ServingStatus::NotServing);
        }
        let policies = status(&service, "baton.v1.Policies").await;
        assert_eq!(policies, ServingStatus::Serving);

        assert!(health.set_reachable(true).await);
        assert_eq!(
            status(&service, "baton.v1.Jobs").await,
            ServingStatus::Serving
        );
    }

    #[tokio::test]
    async fn calls_are_unavailable_while_the_database_is_unreachable() {
        let health = Health::new();
        let mut gate = health.gate(Authenticator::default());
        assert_eq!(call(&mut gate), Ok(()));
        health.set_reachable(false).await;
        assert_eq!(call(&mut gate), Err(Code::Unavailable));
        health.set_reachable(true).await;
        assert_eq!(call(&mut gate), Ok(()));
    }

    #[tokio::test]
    async fn the_token_is_checked_before_the_database() {
        let health = Health::new();
        let mut gate = health.gate(Authenticator::new(vec!["secret".to_owned()]));
        health.set_reachable(false).await;
        assert_eq!(call(&mut gate), Err(Code::Unauthenticated));
    }

    #[tokio::test]
    async fn a_database_that_refuses_connections_is_unreachable() {
        let health = Health::new();
        let config = HealthConfig::default();
        let probe = Probe::new(&refusing_url(), config, health.clone(), Signals::new());
        let mut probe = probe.expect("a postgres url").expect("a probe");
        assert!(!probe.run_once().await);
        let mut gate = health.gate(Authenticator::default());
        assert_eq!(call(&mut gate), Err(Code::Unavailable));
    }

    #[test]
    fn sqlite_has_no_probe() {
        let config = HealthConfig::default();
        let probe = Probe::new("sqlite://x.db", config, Health::new(), Signals::new());
        assert!(probe.expect("a valid url").is_none());
    }
}
