//! Connecting to a broker and turning gRPC failures into exit statuses.

use std::fmt;
use std::path::Path;

use baton_proto::v1::{
    executions_client::ExecutionsClient, jobs_client::JobsClient,
    playbooks_client::PlaybooksClient, policies_client::PoliciesClient,
};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use crate::args::{ClientArgs, ConnectArgs};

/// A connection to the broker that sends the bearer token, if any.
pub(crate) type Transport = InterceptedService<Channel, Bearer>;

/// The clients of every user-facing service, on one connection.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    /// `baton.v1.Playbooks`.
    pub(crate) playbooks: PlaybooksClient<Transport>,
    /// `baton.v1.Executions`.
    pub(crate) executions: ExecutionsClient<Transport>,
    /// `baton.v1.Jobs`.
    pub(crate) jobs: JobsClient<Transport>,
    /// `baton.v1.Policies`.
    pub(crate) policies: PoliciesClient<Transport>,
}

/// Adds `authorization: Bearer …` to every call when a token is set.
#[derive(Clone)]
pub(crate) struct Bearer(Option<AsciiMetadataValue>);

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer(set)"
        } else {
            "Bearer(none)"
        })
    }
}

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

impl Clients {
    /// Connects to the broker `args` name, with its token and TLS files.
    pub(crate) async fn connect(args: &ClientArgs) -> Result<Self, Failure> {
        let endpoint = endpoint(&args.broker)?;
        let endpoint = match tls(&args.connect)? {
            Some(tls) => endpoint
                .tls_config(tls)
                .map_err(|e| Failure::usage(format!("TLS settings: {e}")))?,
            None => endpoint,
        };
        let bearer = match &args.connect.auth_token_file {
            Some(path) => Some(bearer(path)?),
            None => None,
        };
        Clients::over(&args.broker, endpoint, Bearer(bearer)).await
    }

    /// Connects to the plaintext, tokenless broker at `url` (`baton dev`).
    pub(crate) async fn plain(url: &str) -> Result<Self, Failure> {
        Clients::over(url, endpoint(url)?, Bearer(None)).await
    }

    async fn over(url: &str, endpoint: Endpoint, bearer: Bearer) -> Result<Self, Failure> {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Failure::failed(format!("cannot reach the broker at {url}: {e}")))?;
        let transport = InterceptedService::new(channel, bearer);
        Ok(Self {
            playbooks: PlaybooksClient::new(transport.clone()),
            executions: ExecutionsClient::new(transport.clone()),
            jobs: JobsClient::new(transport.clone()),
            policies: PoliciesClient::new(transport),
        })
    }
}

fn endpoint(url: &str) -> Result<Endpoint, Failure> {
    Endpoint::from_shared(url.to_owned())
        .map_err(|e| Failure::usage(format!("bad broker address {url:?}: {e}")))
}

/// The TLS settings of `args`, or `None` when it names no TLS file.
fn tls(args: &ConnectArgs) -> Result<Option<ClientTlsConfig>, Failure> {
    if args.tls_ca.is_none() && args.tls_cert.is_none() {
        return Ok(None);
    }
    let mut tls = ClientTlsConfig::new();
    if let Some(ca) = &args.tls_ca {
        tls = tls.ca_certificate(Certificate::from_pem(read("TLS CA", ca)?));
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let cert = read("TLS certificate", cert)?;
        tls = tls.identity(Identity::from_pem(cert, read("TLS key", key)?));
    }
    Ok(Some(tls))
}

/// `Bearer <first token of the file>`.
fn bearer(path: &Path) -> Result<AsciiMetadataValue, Failure> {
    let refuse = |why: &str| Failure::usage(format!("auth token file {}: {why}", path.display()));
    let text =
        String::from_utf8(read("auth token file", path)?).map_err(|_| refuse("it is not UTF-8"))?;
    let tokens = baton_broker::auth::parse_tokens(&text);
    let token = tokens.first().ok_or_else(|| refuse("it holds no token"))?;
    format!("Bearer {token}")
        .parse()
        .map_err(|_| refuse("the token is not printable ASCII"))
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|e| Failure::usage(format!("reading the {what} {}: {e}", path.display())))
}

/// Why a command failed, and so which exit status it ends with.
#[derive(Debug)]
pub(crate) struct Failure {
    /// 1 when what ran failed, 2 for bad usage or input.
    pub(crate) code: u8,
    /// What to print on standard error.
    pub(crate) message: String,
}

impl Failure {
    /// Bad usage or input: exit status 2.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// What ran or was waited for failed: exit status 1.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// Ends quietly with status 1 (the output already said why).
    pub(crate) fn silent() -> Self {
        Self::failed(String::new())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<tonic::Status> for Failure {
    /// Input the broker refused exits 2; everything else exits 1.
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            tonic::Code::InvalidArgument => Self::usage(message),
            tonic::Code::NotFound => Self::usage(format!("not found: {message}")),
            tonic::Code::Unauthenticated => Self::failed(format!(
                "unauthenticated: {message} (pass the broker's token with --auth-token-file)"
            )),
            code => Self::failed(format!("{code:?}: {message}")),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::usage(e.to_string())
    }
}
