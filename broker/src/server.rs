//! The broker process: one store, the gRPC services over it, the listener
//! that wakes lease streams, and the reaper.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use baton_proto::v1::broker_server::BrokerServer;
use baton_proto::v1::executions_server::ExecutionsServer;
use baton_proto::v1::jobs_server::JobsServer;
use baton_proto::v1::playbooks_server::PlaybooksServer;
use baton_proto::v1::policies_server::PoliciesServer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::auth::{self, Authenticator};
use crate::config::{BrokerConfig, ConfigError, ServerTls};
use crate::error::Error;
use crate::health::{Gate, Health, Probe};
use crate::metrics::{self, Exporter, Metrics};
use crate::reaper::Reaper;
use crate::service::{
    BrokerService, Committer, ExecutionsService, JobsService, LeaseSettings, PlaybooksService,
    PoliciesService,
};
use crate::store::Store;

/// A broker, connected to its database and ready to serve.
#[derive(Debug, Clone)]
pub struct Broker {
    config: BrokerConfig,
    store: Store,
    metrics: Arc<Metrics>,
    auth: Authenticator,
    tls: Option<ServerTlsConfig>,
    health: Health,
}

/// Aborts a background task when the server stops.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Broker {
    /// Validates `config`, reads its token and TLS files (a file that
    /// cannot be read or used is an [`Error::Config`] naming it) and
    /// connects to its database (which must be migrated; see
    /// [`crate::migrate`]).
    pub async fn connect(config: BrokerConfig) -> Result<Broker, Error> {
        config.validate()?;
        let auth = match &config.auth_token_file {
            Some(path) => Authenticator::new(auth::read_tokens(path)?),
            None => Authenticator::default(),
        };
        let tls = config.tls.as_ref().map(tls_config).transpose()?;
        let store = Store::connect(&config).await?;
        Ok(Broker {
            config,
            store,
            metrics: Arc::default(),
            auth,
            tls,
            health: Health::new(),
        })
    }

    /// The broker's store, for embedding and tests.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A reaper over this broker's store and configuration; tests call its
    /// [`Reaper::run_once`] instead of waiting for the loop.
    pub fn reaper(&self) -> Reaper {
        let config = self.config.reaper.clone();
        let shortest_lease = self.config.lease_timeout;
        Reaper::with_metrics(
            self.store.clone(),
            config,
            self.metrics.clone(),
            shortest_lease,
        )
    }

    /// Serves gRPC on `listener` until `shutdown` completes, with the
    /// notification listener, the reaper, the database probe and, when
    /// `metrics_listen` is set, the metrics endpoint running alongside.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let _metrics = self.serve_metrics().await?;
        let forward = self.store.listen().await?;
        let _listen = AbortOnDrop(tokio::spawn(forward));
        let _reap = AbortOnDrop(tokio::spawn(self.reaper().run()));
        let address = listener.local_addr().ok();
        let router = self.router().await?;
        let _probe = self
            .probe()?
            .map(|probe| AbortOnDrop(tokio::spawn(probe.run())));
        tracing::info!(address = ?address, "Broker serving");
        // Replies and pushed jobs are small writes: holding one back until
        // the last is acknowledged (Nagle) meets the peer's delayed ACK and
        // adds up to 40 ms to a call.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        tracing::info!("Broker stopped");
        Ok(())
    }

    /// Binds and starts the metrics endpoint, if one is configured.
    async fn serve_metrics(&self) -> Result<Option<AbortOnDrop>, Error> {
        let Some(addr) = self.config.metrics_listen else {
            return Ok(None);
        };
        let listener = metrics::bind(addr).await?;
        let bound = listener.local_addr().unwrap_or(addr);
        // Tests read the address from this line, so its wording is fixed.
        tracing::info!(addr = %bound, "Metrics listening");
        let exporter = Exporter::new(self.metrics.clone(), self.store.clone());
        Ok(Some(AbortOnDrop(tokio::spawn(exporter.serve(listener)))))
    }

    async fn router(&self) -> Result<Router, Error> {
        let limit = self.config.max_message_size;
        let store = self.store.clone();
        let broker = BrokerService {
            store: store.clone(),
            settings: LeaseSettings {
                lease_timeout: self.config.lease_timeout,
                heartbeat_interval: self.config.heartbeat_interval(),
                claim_batch_size: self.config.claim_batch_size,
                metrics: self.metrics.clone(),
                committer: Committer::spawn(store.clone(), self.metrics.clone()),
            },
        };
        let health_service = self.health.service().await;
        let mut server = Server::builder();
        if let Some(tls) = self.tls.clone() {
            server = server.tls_config(tls)?;
        }
        Ok(server
            .add_service(health_service)
            .add_service(reflection_v1()?)
            .add_service(reflection_v1alpha()?)
            .add_service(self.guarded(BrokerServer::new(broker).max_decoding_message_size(limit)))
            .add_service(
                self.guarded(
                    PlaybooksServer::new(PlaybooksService {
                        store: store.clone(),
                    })
                    .max_decoding_message_size(limit),
                ),
            )
            .add_service(
                self.guarded(
                    ExecutionsServer::new(ExecutionsService {
                        store: store.clone(),
                    })
                    .max_decoding_message_size(limit),
                ),
            )
            .add_service(
                self.guarded(
                    JobsServer::new(JobsService { store }).max_decoding_message_size(limit),
                ),
            )
            .add_service(self.authenticated(
                PoliciesServer::new(PoliciesService).max_decoding_message_size(limit),
            )))
    }
}

/// Reads the PEM files of `tls` into tonic's server configuration.
fn tls_config(tls: &ServerTls) -> Result<ServerTlsConfig, ConfigError> {
    let cert = read_pem("TLS certificate", &tls.cert)?;
    let key = read_pem("TLS key", &tls.key)?;
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(path) = &tls.client_ca {
        let ca = read_pem("TLS client CA", path)?;
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(config)
}

/// Reads a PEM file, refusing one without a PEM block so that a wrong
/// path fails here, naming the file, rather than in the handshake.
fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let unreadable = |reason: String| ConfigError::Unreadable {
        what,
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|err| unreadable(err.to_string()))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(unreadable("no PEM block in it".to_owned()));
    }
    Ok(pem)
}

impl Broker {
    /// Wraps a `baton.v1` service that needs the database in the token
    /// check and the database gate.
    fn guarded<S>(&self, service: S) -> InterceptedService<S, Gate> {
        InterceptedService::new(service, self.health.gate(self.auth.clone()))
    }

    /// Wraps a `baton.v1` service that needs no database in the token check.
    fn authenticated<S>(&self, service: S) -> InterceptedService<S, Authenticator> {
        InterceptedService::new(service, self.auth.clone())
    }

    /// The probe of this broker's database; `None` on SQLite.
    fn probe(&self) -> Result<Option<Probe>, Error> {
        let config = self.config.health.clone();
        let signals = self.store.signals().clone();
        Probe::new(
            &self.config.database_url,
            config,
            self.health.clone(),
            signals,
        )
    }
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

fn reflection_v1() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    Error,
> {
    reflection()
        .build_v1()
        .map_err(|err| Error::Corrupt(format!("reflection descriptors: {err}")))
}

fn reflection_v1alpha() -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    Error,
> {
    reflection()
        .build_v1alpha()
        .map_err(|err| Error::Corrupt(format!("reflection descriptors: {err}")))
}
