//! Connecting to a broker and turning gRPC failures into exit statuses.

use std::fmt;

use baton_proto::v1::{
    executions_client::ExecutionsClient, jobs_client::JobsClient,
    playbooks_client::PlaybooksClient, policies_client::PoliciesClient,
};
use tonic::transport::{Channel, Endpoint};

/// The clients of every user-facing service, on one connection.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    /// `baton.v1.Playbooks`.
    pub(crate) playbooks: PlaybooksClient<Channel>,
    /// `baton.v1.Executions`.
    pub(crate) executions: ExecutionsClient<Channel>,
    /// `baton.v1.Jobs`.
    pub(crate) jobs: JobsClient<Channel>,
    /// `baton.v1.Policies`.
    pub(crate) policies: PoliciesClient<Channel>,
}

impl Clients {
    /// Connects to the broker at `url`.
    pub(crate) async fn connect(url: &str) -> Result<Self, Failure> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| Failure::usage(format!("bad broker address {url:?}: {e}")))?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Failure::failed(format!("cannot reach the broker at {url}: {e}")))?;
        Ok(Self {
            playbooks: PlaybooksClient::new(channel.clone()),
            executions: ExecutionsClient::new(channel.clone()),
            jobs: JobsClient::new(channel.clone()),
            policies: PoliciesClient::new(channel),
        })
    }
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
            code => Self::failed(format!("{code:?}: {message}")),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::usage(e.to_string())
    }
}
