//! The broker's configuration: every field documented with its unit and
//! default, validated once before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::health::HealthConfig;
use crate::reaper::ReaperConfig;

/// How a broker connects, listens, leases and reaps.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The database URL, e.g. `postgres://user@host/db`. Required.
    pub database_url: String,
    /// The address `baton broker serve` binds. Default `127.0.0.1:50051`.
    /// [`crate::Broker::serve`] takes an already bound listener instead.
    pub listen: SocketAddr,
    /// How long a lease lasts without a heartbeat. Default 30 s.
    pub lease_timeout: Duration,
    /// How often workers are told to heartbeat. Default a third of
    /// `lease_timeout`, so two heartbeats can be lost before expiry.
    pub heartbeat_interval: Option<Duration>,
    /// Most jobs one claim statement leases for one stream. Default 500.
    pub claim_batch_size: u32,
    /// Largest gRPC message accepted, in bytes. Default 4 MiB.
    pub max_message_size: usize,
    /// Most database connections in the broker's pool (the listener takes
    /// one more of its own, and so does the health probe). Default 20.
    pub max_connections: u32,
    /// The reaper of expired leases.
    pub reaper: ReaperConfig,
    /// The probe that tells whether the database is reachable.
    pub health: HealthConfig,
    /// Where [`crate::Broker::serve`] serves Prometheus metrics at
    /// `/metrics` (see the glossary's "Metrics"); port 0 picks a free one,
    /// logged as `Metrics listening addr=…`. Default `None`: no endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// A file of accepted bearer tokens, one a line (blank lines and `#`
    /// comments ignored). When set, every `baton.v1` call must carry
    /// `authorization: Bearer <token>` with one of them; health and
    /// reflection stay open. Read once by [`crate::Broker::connect`].
    /// Default `None`: no authentication.
    pub auth_token_file: Option<PathBuf>,
    /// Serve gRPC over TLS with these files. Default `None`: plaintext.
    pub tls: Option<ServerTls>,
}

/// The PEM files of the broker's TLS, read once by
/// [`crate::Broker::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The certificate chain the broker presents, leaf first.
    pub cert: PathBuf,
    /// The private key of `cert`.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these
    /// CA certificates (mTLS). Default `None`: no client certificates.
    pub client_ca: Option<PathBuf>,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `database_url` is empty.
    #[error("database url is empty")]
    MissingDatabaseUrl,
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// A count is outside its allowed range.
    #[error("{field} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
    /// The heartbeat interval is not shorter than the lease timeout.
    #[error("heartbeat interval must be shorter than the lease timeout")]
    HeartbeatTooLong,
    /// A file the configuration names could not be read.
    #[error("reading the {what} {}: {reason}", path.display())]
    Unreadable {
        /// What the file is for: `auth token file`, `TLS key`, …
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be read or used.
        reason: String,
    },
}

impl BrokerConfig {
    /// A configuration with every default and the given database URL.
    pub fn new(database_url: impl Into<String>) -> Self {
        BrokerConfig {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            lease_timeout: Duration::from_secs(30),
            heartbeat_interval: None,
            claim_batch_size: 500,
            max_message_size: 4 * 1024 * 1024,
            max_connections: 20,
            reaper: ReaperConfig::default(),
            health: HealthConfig::default(),
            metrics_listen: None,
            auth_token_file: None,
            tls: None,
        }
    }

    /// The heartbeat interval workers are told to use.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval.unwrap_or(self.lease_timeout / 3)
    }

    /// Checks every field; call once before connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.database_url.trim().is_empty() {
            return Err(ConfigError::MissingDatabaseUrl);
        }
        if self.lease_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("lease_timeout"));
        }
        if self.heartbeat_interval() >= self.lease_timeout || self.heartbeat_interval().is_zero() {
            return Err(ConfigError::HeartbeatTooLong);
        }
        range("claim_batch_size", self.claim_batch_size.into(), 1, 10_000)?;
        range("max_connections", self.max_connections.into(), 2, 10_000)?;
        let size = u64::try_from(self.max_message_size).unwrap_or(u64::MAX);
        range("max_message_size", size, 1024, 1 << 30)?;
        self.reaper.validate()?;
        self.health.validate()
    }
}

fn range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = BrokerConfig::new("postgres://localhost/baton");
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.heartbeat_interval(), Duration::from_secs(10));
    }

    #[test]
    fn a_heartbeat_as_long_as_the_lease_is_refused() {
        let mut config = BrokerConfig::new("postgres://localhost/baton");
        config.heartbeat_interval = Some(config.lease_timeout);
        assert_eq!(config.validate(), Err(ConfigError::HeartbeatTooLong));
    }

    #[test]
    fn an_empty_claim_batch_is_refused() {
        let mut config = BrokerConfig::new("postgres://localhost/baton");
        config.claim_batch_size = 0;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutOfRange { .. })
        ));
    }
}
