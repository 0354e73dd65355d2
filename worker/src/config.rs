//! The worker's configuration, validated once at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::Error;

/// Most credits the broker accepts in one message; also the concurrency cap.
const MAX_CONCURRENCY: u32 = 10_000;

/// How one worker connects, what it takes and how it runs it.
///
/// `WorkerConfig::default()` gives every default listed on the fields.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// The broker's gRPC endpoint URL. Default `http://127.0.0.1:50051`.
    pub broker: String,
    /// The name shown in attempts and logs. Default `<hostname>-<pid>`.
    pub name: String,
    /// How many attempts run at once; 1 to 10,000. Default 4.
    pub concurrency: u32,
    /// The queues to take jobs from. Default `["default"]`.
    pub queues: Vec<String>,
    /// The task kinds to take; empty means every kind. Default empty.
    pub kinds: Vec<String>,
    /// On shutdown, how long running attempts may go on before they are
    /// stopped and handed back (not charged an attempt). Default 30 s.
    pub grace: Duration,
    /// The CPython executable for `python` tasks. Default `python3`.
    pub python: PathBuf,
    /// Address-space limit of each python process, in bytes (RLIMIT_AS, set
    /// by the runner script); `None` for no limit. Default 1 GiB.
    pub python_memory_limit: Option<u64>,
    /// Timeout of a task whose payload sets no `timeout`. Default 300 s.
    pub task_timeout: Duration,
    /// Where [`run`](crate::run) serves Prometheus metrics at `/metrics`
    /// (see the glossary's "Metrics"); port 0 picks a free one, logged as
    /// `Metrics listening addr=…`. Default `None`: no endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// A token file (one token a line, blank lines and `#` comments
    /// skipped); the first token is sent as `authorization: Bearer …` on
    /// every call. Default `None`: no token.
    pub auth_token_file: Option<PathBuf>,
    /// A PEM file of the CA certificates that sign the broker's
    /// certificate, for `https://` broker URLs. Default `None`.
    pub tls_ca: Option<PathBuf>,
    /// A PEM certificate presented to the broker (mTLS); needs `tls_key`.
    /// Default `None`.
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert`. Default `None`.
    pub tls_key: Option<PathBuf>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            broker: "http://127.0.0.1:50051".to_owned(),
            name: default_name(),
            concurrency: 4,
            queues: vec!["default".to_owned()],
            kinds: Vec::new(),
            grace: Duration::from_secs(30),
            python: PathBuf::from("python3"),
            python_memory_limit: Some(1 << 30),
            task_timeout: Duration::from_secs(300),
            metrics_listen: None,
            auth_token_file: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl WorkerConfig {
    /// A default configuration for the broker at `broker`.
    pub fn new(broker: impl Into<String>) -> Self {
        WorkerConfig {
            broker: broker.into(),
            ..WorkerConfig::default()
        }
    }

    /// Checks the fields [`run`](crate::run) relies on.
    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(Error::Config(format!(
                "concurrency must be 1 to {MAX_CONCURRENCY}, not {}",
                self.concurrency
            )));
        }
        if self.name.trim().is_empty() {
            return Err(Error::Config("name must not be empty".to_owned()));
        }
        if self.task_timeout.is_zero() {
            return Err(Error::Config("task timeout must be above zero".to_owned()));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Error::Config(
                "a TLS client certificate needs both a certificate and a key".to_owned(),
            ));
        }
        Endpoint::from_shared(self.broker.clone())
            .map(drop)
            .map_err(|err| Error::Config(format!("broker url `{}`: {err}", self.broker)))
    }

    /// The broker's endpoint, with TLS when a CA or client certificate is
    /// configured; reads those files, naming any it cannot read.
    pub(crate) fn endpoint(&self) -> Result<Endpoint, Error> {
        let endpoint = Endpoint::from_shared(self.broker.clone())
            .map_err(|err| Error::Config(format!("broker url `{}`: {err}", self.broker)))?;
        if self.tls_ca.is_none() && self.tls_cert.is_none() {
            return Ok(endpoint);
        }
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &self.tls_ca {
            tls = tls.ca_certificate(Certificate::from_pem(read("TLS CA", ca)?));
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let cert = read("TLS certificate", cert)?;
            tls = tls.identity(Identity::from_pem(cert, read("TLS key", key)?));
        }
        endpoint
            .tls_config(tls)
            .map_err(|err| Error::Config(format!("TLS settings: {err}")))
    }

    /// The `authorization` value to send, from the first token of
    /// `auth_token_file`.
    pub(crate) fn bearer(&self) -> Result<Option<AsciiMetadataValue>, Error> {
        let Some(path) = &self.auth_token_file else {
            return Ok(None);
        };
        let text = String::from_utf8(read("auth token file", path)?)
            .map_err(|_| file_error("auth token file", path, "it is not UTF-8"))?;
        let token = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'))
            .ok_or_else(|| file_error("auth token file", path, "it holds no token"))?;
        format!("Bearer {token}")
            .parse()
            .map(Some)
            .map_err(|_| file_error("auth token file", path, "the token is not printable ASCII"))
    }
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|err| file_error(what, path, &err.to_string()))
}

fn file_error(what: &str, path: &Path, reason: &str) -> Error {
    Error::Config(format!("reading the {what} {}: {reason}", path.display()))
}

/// `<hostname>-<pid>`, read without libc so no unsafe code is needed.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = WorkerConfig::default();
        assert_eq!(config.concurrency, 4);
        assert_eq!(config.queues, ["default"]);
        assert_eq!(config.grace, Duration::from_secs(30));
        assert_eq!(config.python_memory_limit, Some(1 << 30));
        assert!(config.name.ends_with(&format!("-{}", std::process::id())));
        config.validate().unwrap();
    }

    #[test]
    fn zero_concurrency_and_bad_urls_are_refused() {
        let zero = WorkerConfig {
            concurrency: 0,
            ..WorkerConfig::default()
        };
        assert!(matches!(zero.validate(), Err(Error::Config(_))));
        assert!(WorkerConfig::new("not a url").validate().is_err());
    }

    #[test]
    fn a_client_certificate_without_its_key_is_refused() {
        let config = WorkerConfig {
            tls_cert: Some(PathBuf::from("client.crt")),
            ..WorkerConfig::default()
        };
        assert!(matches!(config.validate(), Err(Error::Config(_))));
    }

    #[test]
    fn the_first_token_of_the_file_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# comment\n\n  first  \nsecond\n").unwrap();
        let config = WorkerConfig {
            auth_token_file: Some(path),
            ..WorkerConfig::default()
        };
        let value = config.bearer().unwrap().unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer first");
    }

    #[test]
    fn an_unreadable_token_file_is_named() {
        let config = WorkerConfig {
            auth_token_file: Some(PathBuf::from("/nonexistent/baton-tokens")),
            ..WorkerConfig::default()
        };
        let err = config.bearer().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/baton-tokens"), "{err}");
    }
}
