//! Who may talk to a broker: bearer tokens on the `baton.v1` services
//! (health and reflection stay open), TLS, and mTLS, with real `baton`
//! processes and certificates made for each test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use baton_proto::v1;
use baton_proto::v1::executions_client::ExecutionsClient;
use baton_proto::v1::playbooks_client::PlaybooksClient;
use baton_testkit::Cluster;
use baton_testkit::cluster::{Flags, Options};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long a job may take to be done.
const JOB_DEADLINE: Duration = Duration::from_secs(60);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_baton"))
}

/// A CA, a server certificate for 127.0.0.1 and localhost, and a client
/// certificate, written as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn new() -> Result<Pki> {
        let dir = tempfile::tempdir()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let write = |name: &str, pem: String| -> Result<PathBuf> {
            let path = dir.path().join(name);
            std::fs::write(&path, pem)?;
            Ok(path)
        };
        let leaf = |names: Vec<String>, usage| -> Result<(String, String)> {
            let mut params = CertificateParams::new(names)?;
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &issuer)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let (server_cert, server_key) = leaf(names, ExtendedKeyUsagePurpose::ServerAuth)?;
        let names = vec!["worker".to_owned()];
        let (client_cert, client_key) = leaf(names, ExtendedKeyUsagePurpose::ClientAuth)?;
        Ok(Pki {
            ca: write("ca.crt", ca_cert.pem())?,
            server_cert: write("tls.crt", server_cert)?,
            server_key: write("tls.key", server_key)?,
            client_cert: write("client.crt", client_cert)?,
            client_key: write("client.key", client_key)?,
            _dir: dir,
        })
    }

    /// Client TLS that trusts the CA, with the client certificate when
    /// `with_cert`.
    fn client(&self, with_cert: bool) -> Result<ClientTlsConfig> {
        let ca = Certificate::from_pem(std::fs::read(&self.ca)?);
        let mut tls = ClientTlsConfig::new().ca_certificate(ca);
        if with_cert {
            let cert = std::fs::read(&self.client_cert)?;
            tls = tls.identity(Identity::from_pem(cert, std::fs::read(&self.client_key)?));
        }
        Ok(tls)
    }
}

fn path_arg(flag: &str, path: &Path) -> Result<String> {
    Ok(format!(
        "{flag}={}",
        path.to_str().context("path is not UTF-8")?
    ))
}

/// A token file listing `old` and `new`, with a comment and a blank line.
fn token_file(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("tokens");
    std::fs::write(
        &path,
        "# rotation: new added, old not removed yet\nold-token\n\nnew-token\n",
    )?;
    Ok(path)
}

/// Sends a bearer token, when it holds one, on every call.
#[derive(Debug, Clone)]
struct Token(Option<AsciiMetadataValue>);

impl Interceptor for Token {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

fn with_token(channel: Channel, token: Option<&str>) -> InterceptedService<Channel, Token> {
    let header = token.map(|t| format!("Bearer {t}").parse().expect("ascii token"));
    InterceptedService::new(channel, Token(header))
}

async fn list_playbooks(channel: Channel, token: Option<&str>) -> Result<(), Status> {
    let mut client = PlaybooksClient::new(with_token(channel, token));
    client
        .list(v1::ListPlaybooksRequest::default())
        .await
        .map(drop)
}

async fn plain_channel(cluster: &Cluster) -> Result<Channel> {
    Ok(Endpoint::from_shared(cluster.url())?.connect().await?)
}

/// A one-step playbook whose noop step succeeds.
const ONE_STEP: &str = "apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: access, path: access/one-step}
workflow:
  - step: start
    type: noop
    next: [end]
  - step: end
";

/// Runs a one-step playbook through the broker and waits, on its event
/// stream, until it ends; it must complete.
async fn run_a_job(channel: Channel, token: Option<&str>) -> Result<()> {
    let mut playbooks = PlaybooksClient::new(with_token(channel.clone(), token));
    let mut executions = ExecutionsClient::new(with_token(channel, token));
    let request = v1::RegisterPlaybookRequest {
        yaml: ONE_STEP.to_owned(),
    };
    playbooks.register(request).await?;
    let request = v1::RunExecutionRequest {
        path: "access/one-step".to_owned(),
        ..Default::default()
    };
    let run = executions.run(request).await?.into_inner();
    let id = run.execution.context("no execution")?.id;

    let request = v1::WatchEventsRequest {
        execution_id: id,
        ..Default::default()
    };
    let mut events = executions.watch_events(request).await?.into_inner();
    let last = tokio::time::timeout(JOB_DEADLINE, async {
        let mut last = String::new();
        while let Some(event) = events.message().await? {
            last = event.name;
        }
        Ok::<_, Status>(last)
    })
    .await
    .context("the execution did not end in time")??;
    ensure!(
        last == "execution_completed",
        "execution {id} ended with {last}"
    );
    Ok(())
}

fn baton_cli(args: &[&str]) -> Result<std::process::Output> {
    let output = std::process::Command::new(binary())
        .args(args)
        .env_remove("BATON_AUTH_TOKEN_FILE")
        .output()?;
    Ok(output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_guards_the_baton_services_and_either_listed_token_works() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let tokens = token_file(dir.path())?;
    let flags = Flags {
        broker: vec![path_arg("--auth-token-file", &tokens)?],
        worker: vec![path_arg("--auth-token-file", &tokens)?],
        tls: false,
    };
    let cluster = Cluster::start_with_flags(binary(), &[1], &Options::default(), flags).await?;
    let channel = plain_channel(&cluster).await?;

    let missing = list_playbooks(channel.clone(), None).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    let wrong = list_playbooks(channel.clone(), Some("guessed"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    assert!(!wrong.message().contains("guessed"), "{wrong:?}");
    list_playbooks(channel.clone(), Some("old-token")).await?;
    list_playbooks(channel.clone(), Some("new-token")).await?;

    // The worker sends the file's first token and runs the job.
    run_a_job(channel, Some("new-token")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer_without_a_token() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let flags = Flags {
        broker: vec![path_arg("--auth-token-file", &token_file(dir.path())?)?],
        ..Flags::default()
    };
    let cluster = Cluster::start_with_flags(binary(), &[0], &Options::default(), flags).await?;
    let channel = plain_channel(&cluster).await?;

    let mut health = HealthClient::new(channel.clone());
    let request = HealthCheckRequest {
        service: "baton.v1.Playbooks".to_owned(),
    };
    let reply = health.check(request).await?.into_inner();
    assert_eq!(reply.status(), ServingStatus::Serving);

    let services = reflected_services(channel).await?;
    assert!(
        services.iter().any(|s| s == "baton.v1.Playbooks"),
        "{services:?}"
    );
    Ok(())
}

/// The services reflection v1 lists.
async fn reflected_services(channel: Channel) -> Result<Vec<String>> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::once(request))
        .await?
        .into_inner();
    let reply = replies.message().await?.context("no reflection reply")?;
    match reply.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => bail!("unexpected reflection reply {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_the_token_file_and_says_unauthenticated_without_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let tokens = token_file(dir.path())?;
    let flags = Flags {
        broker: vec![path_arg("--auth-token-file", &tokens)?],
        ..Flags::default()
    };
    let cluster = Cluster::start_with_flags(binary(), &[0], &Options::default(), flags).await?;
    let url = cluster.url();
    let token_arg = path_arg("--auth-token-file", &tokens)?;

    let with = baton_cli(&["playbook", "list", "--broker", &url, &token_arg])?;
    let stderr = String::from_utf8_lossy(&with.stderr);
    assert_eq!(with.status.code(), Some(0), "{stderr}");

    let without = baton_cli(&["playbook", "list", "--broker", &url])?;
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert_eq!(without.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unauthenticated"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_broker_serves_clients_that_trust_its_ca_and_refuses_plaintext() -> Result<()> {
    let pki = Pki::new()?;
    let flags = Flags {
        broker: vec![
            path_arg("--tls-cert", &pki.server_cert)?,
            path_arg("--tls-key", &pki.server_key)?,
        ],
        worker: Vec::new(),
        tls: true,
    };
    let cluster = Cluster::start_with_flags(binary(), &[0], &Options::default(), flags).await?;

    let tls = Endpoint::from_shared(cluster.url())?.tls_config(pki.client(false)?)?;
    list_playbooks(tls.connect().await?, None).await?;

    let plain = Endpoint::from_shared(format!("http://{}", cluster.addr))?;
    let refused = match plain.connect().await {
        Ok(channel) => list_playbooks(channel, None).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a plaintext client was served");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_clients_without_a_certificate_and_workers_with_one_run_jobs() -> Result<()> {
    let pki = Pki::new()?;
    let flags = Flags {
        broker: vec![
            path_arg("--tls-cert", &pki.server_cert)?,
            path_arg("--tls-key", &pki.server_key)?,
            path_arg("--tls-client-ca", &pki.ca)?,
        ],
        worker: vec![
            path_arg("--tls-ca", &pki.ca)?,
            path_arg("--tls-cert", &pki.client_cert)?,
            path_arg("--tls-key", &pki.client_key)?,
        ],
        tls: true,
    };
    let cluster = Cluster::start_with_flags(binary(), &[1], &Options::default(), flags).await?;
    let endpoint = Endpoint::from_shared(cluster.url())?;

    let anonymous = endpoint.clone().tls_config(pki.client(false)?)?;
    let refused = match anonymous.connect().await {
        Ok(channel) => list_playbooks(channel, None).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a client without a certificate was served");

    let channel = endpoint.tls_config(pki.client(true)?)?.connect().await?;
    list_playbooks(channel.clone(), None).await?;
    run_a_job(channel, None).await?;
    Ok(())
}
