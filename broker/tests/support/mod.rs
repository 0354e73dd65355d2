//! Test support: a fresh migrated database per test, brokers served
//! in-process on 127.0.0.1:0, typed clients, and a fake worker driving the
//! real Lease stream.
#![allow(dead_code, unreachable_pub)]

pub mod backend;
pub mod stream;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use baton_broker::{Broker, BrokerConfig};
use baton_proto::v1 as pb;
use baton_proto::v1::broker_client::BrokerClient;
use baton_proto::v1::executions_client::ExecutionsClient;
use baton_proto::v1::jobs_client::JobsClient;
use baton_proto::v1::playbooks_client::PlaybooksClient;
use baton_proto::v1::policies_client::PoliciesClient;
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// How long a test waits for something that should happen at once.
pub const DEADLINE: Duration = Duration::from_secs(10);

static DATABASES: AtomicU32 = AtomicU32::new(0);

/// Creates and migrates a database of its own; returns its URL.
pub async fn fresh_database() -> Result<String> {
    let admin = std::env::var("DATABASE_URL").context("DATABASE_URL must name a Postgres")?;
    let name = format!(
        "baton_test_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    let create = format!("CREATE DATABASE {name}");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let (base, _) = admin
        .rsplit_once('/')
        .context("DATABASE_URL has no database name")?;
    let url = format!("{base}/{name}");
    baton_broker::migrate(&url).await?;
    Ok(url)
}

/// A broker serving on a loopback port until dropped.
pub struct TestBroker {
    pub broker: Broker,
    pub url: String,
    pub endpoint: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A test configuration: short leases so expiry tests stay quick.
pub fn config(url: &str) -> BrokerConfig {
    let mut config = BrokerConfig::new(url);
    config.lease_timeout = Duration::from_secs(30);
    config.max_connections = 10;
    config
}

/// Starts a broker on a fresh database.
pub async fn start() -> Result<TestBroker> {
    let url = fresh_database().await?;
    start_on(config(&url)).await
}

/// Starts a broker with `config` (whose database is migrated).
pub async fn start_on(config: BrokerConfig) -> Result<TestBroker> {
    let url = config.database_url.clone();
    let broker = Broker::connect(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = broker.clone();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(err) = serving.serve(listener, shutdown).await {
            eprintln!("broker stopped: {err}");
        }
    });
    Ok(TestBroker {
        broker,
        url,
        endpoint,
        stop: Some(stop),
    })
}

impl TestBroker {
    async fn channel(&self) -> Result<Channel> {
        for _ in 0..100 {
            if let Ok(channel) = Channel::from_shared(self.endpoint.clone())?.connect().await {
                return Ok(channel);
            }
            tokio::task::yield_now().await;
        }
        bail!("broker at {} never accepted a connection", self.endpoint)
    }

    pub async fn worker_client(&self) -> Result<BrokerClient<Channel>> {
        Ok(BrokerClient::new(self.channel().await?))
    }

    pub async fn jobs(&self) -> Result<JobsClient<Channel>> {
        Ok(JobsClient::new(self.channel().await?))
    }

    pub async fn playbooks(&self) -> Result<PlaybooksClient<Channel>> {
        Ok(PlaybooksClient::new(self.channel().await?))
    }

    pub async fn executions(&self) -> Result<ExecutionsClient<Channel>> {
        Ok(ExecutionsClient::new(self.channel().await?))
    }

    pub async fn policies(&self) -> Result<PoliciesClient<Channel>> {
        Ok(PoliciesClient::new(self.channel().await?))
    }

    /// A pool on this broker's database, for assertions on stored rows.
    pub async fn db(&self) -> Result<backend::TestDb> {
        backend::TestDb::connect(&self.url).await
    }
}

/// A bare job spec of `kind` on `queue`.
pub fn spec(queue: &str, kind: &str) -> pb::JobSpec {
    pb::JobSpec {
        queue: queue.into(),
        kind: kind.into(),
        ..Default::default()
    }
}

/// A retry block as a protobuf value.
pub fn retry(json: serde_json::Value) -> Option<prost_types::Value> {
    Some(baton_proto::convert::to_value(&json))
}

/// Enqueues `specs` and returns the jobs.
pub async fn enqueue(broker: &TestBroker, specs: Vec<pb::JobSpec>) -> Result<Vec<pb::Job>> {
    let request = pb::EnqueueJobsRequest { jobs: specs };
    Ok(broker
        .jobs()
        .await?
        .enqueue(request)
        .await?
        .into_inner()
        .jobs)
}

/// A fake worker: one Lease stream driven by the test.
pub struct Worker {
    pub client: BrokerClient<Channel>,
    requests: mpsc::Sender<pb::LeaseRequest>,
    replies: tonic::Streaming<pb::LeaseResponse>,
}

impl Worker {
    /// Opens a stream naming `queues` and waits for the welcome.
    pub async fn connect(broker: &TestBroker, name: &str, queues: &[&str]) -> Result<Worker> {
        let mut client = broker.worker_client().await?;
        let (requests, rx) = mpsc::channel(16);
        let hello = pb::Hello {
            worker: name.into(),
            queues: queues.iter().map(|q| (*q).to_owned()).collect(),
            kinds: vec![],
        };
        requests
            .send(pb::LeaseRequest {
                msg: Some(pb::lease_request::Msg::Hello(hello)),
            })
            .await?;
        let mut replies = client.lease(ReceiverStream::new(rx)).await?.into_inner();
        match tokio::time::timeout(DEADLINE, replies.message()).await?? {
            Some(pb::LeaseResponse {
                msg: Some(pb::lease_response::Msg::Welcome(_)),
            }) => {}
            other => bail!("expected welcome, got {other:?}"),
        }
        Ok(Worker {
            client,
            requests,
            replies,
        })
    }

    /// Grants `n` more credits.
    pub async fn credit(&self, n: i32) -> Result<()> {
        let msg = pb::lease_request::Msg::Credits(pb::Credits { credits: n });
        self.requests
            .send(pb::LeaseRequest { msg: Some(msg) })
            .await?;
        Ok(())
    }

    /// The next leased job, within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Result<pb::LeasedJob> {
        match tokio::time::timeout(wait, self.replies.message()).await?? {
            Some(pb::LeaseResponse {
                msg: Some(pb::lease_response::Msg::Job(job)),
            }) => Ok(job),
            other => bail!("expected a job, got {other:?}"),
        }
    }

    /// The next leased job, within the default deadline.
    pub async fn next(&mut self) -> Result<pb::LeasedJob> {
        self.next_within(DEADLINE).await
    }

    /// Whether no job arrives within `wait`.
    pub async fn idle_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.replies.message())
            .await
            .is_err()
    }

    /// Completes `job` with `result`, letting the broker decide.
    pub async fn complete(
        &mut self,
        job: &pb::LeasedJob,
        result: serde_json::Value,
    ) -> Result<pb::Resolution> {
        let request = pb::CompleteRequest {
            job_id: job.id,
            lease_token: job.lease_token,
            outcome: Some(pb::Outcome {
                result: Some(baton_proto::convert::to_value(&result)),
                ..Default::default()
            }),
            decision: None,
        };
        let reply = self.client.complete(request).await?.into_inner();
        reply.resolution.context("no resolution")
    }

    /// Fails `job` with `message` and an optional worker decision.
    pub async fn fail(
        &mut self,
        job: &pb::LeasedJob,
        message: &str,
        decision: Option<pb::Decision>,
    ) -> Result<pb::Resolution> {
        let reply = self
            .client
            .fail(fail_request(job.id, job.lease_token, message, decision))
            .await?;
        reply.into_inner().resolution.context("no resolution")
    }
}

/// A Fail request for `job_id` under `token`.
pub fn fail_request(
    job_id: i64,
    token: i64,
    message: &str,
    decision: Option<pb::Decision>,
) -> pb::FailRequest {
    pb::FailRequest {
        job_id,
        lease_token: token,
        outcome: Some(pb::Outcome {
            error: Some(pb::TaskError {
                kind: pb::ErrorKind::Exception.into(),
                message: message.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        decision,
    }
}
