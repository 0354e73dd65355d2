//! One measured deployment: a fresh store, one `baton broker serve`, the
//! `baton worker`s beside it, and read access to the store for checking
//! what happened.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use baton_proto::v1::executions_client::ExecutionsClient;
use baton_proto::v1::jobs_client::JobsClient;
use baton_proto::v1::playbooks_client::PlaybooksClient;
use sqlx::{Executor, PgPool, SqlitePool};
use tempfile::TempDir;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::procs::{self, Proc};

/// How long a broker may take to answer its health check.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Which store a deployment runs on.
#[derive(Debug, Clone)]
pub(crate) enum StoreKind {
    /// Postgres, reached through this server URL (no database name).
    Postgres { server: String, postmaster: u32 },
    /// SQLite in a file of the deployment's directory.
    Sqlite,
}

/// A running deployment; dropping it stops every process.
#[derive(Debug)]
pub(crate) struct Deployment {
    /// The broker process.
    pub(crate) broker: Proc,
    /// The worker processes.
    pub(crate) workers: Vec<Proc>,
    /// Read access to the store.
    pub(crate) db: Db,
    /// A channel to the broker.
    pub(crate) channel: Channel,
    url: String,
    binary: PathBuf,
    dir: TempDir,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if procs::log_filter().is_some() {
            let dir = std::mem::replace(&mut self.dir, TempDir::new().expect("temp dir"));
            eprintln!("bench: logs kept in {}", dir.keep().display());
        }
    }
}

impl Deployment {
    /// A fresh store, migrated, with one broker serving it.
    pub(crate) async fn start(binary: &Path, store: &StoreKind, name: &str) -> Result<Deployment> {
        let dir = tempfile::tempdir()?;
        let database_url = fresh_store(store, dir.path(), name).await?;
        migrate(binary, dir.path(), &database_url)?;
        let addr = procs::free_addr()?;
        let listen = addr.to_string();
        let args = [
            "broker",
            "serve",
            "--database-url",
            &database_url,
            "--listen",
            &listen,
        ];
        let broker = Proc::spawn(binary, &args, dir.path(), "broker")?;
        let url = format!("http://{addr}");
        let channel = wait_serving(&url).await?;
        let db = Db::connect(store, &database_url).await?;
        Ok(Deployment {
            broker,
            workers: Vec::new(),
            db,
            channel,
            url,
            binary: binary.to_owned(),
            dir,
        })
    }

    /// Starts `count` worker processes of `concurrency` slots each.
    pub(crate) fn add_workers(&mut self, count: u32, concurrency: u32) -> Result<()> {
        for _ in 0..count {
            let name = format!("worker-{}", self.workers.len() + 1);
            let slots = concurrency.to_string();
            let args = [
                "worker",
                "--broker",
                &self.url,
                "--name",
                &name,
                "--concurrency",
                &slots,
            ];
            let worker = Proc::spawn(&self.binary, &args, self.dir.path(), &name)?;
            self.workers.push(worker);
        }
        Ok(())
    }

    /// The Jobs API.
    pub(crate) fn jobs(&self) -> JobsClient<Channel> {
        JobsClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }

    /// The Executions API.
    pub(crate) fn executions(&self) -> ExecutionsClient<Channel> {
        ExecutionsClient::new(self.channel.clone())
    }

    /// The Playbooks API.
    pub(crate) fn playbooks(&self) -> PlaybooksClient<Channel> {
        PlaybooksClient::new(self.channel.clone())
    }

    /// CPU seconds used so far by the broker and the workers.
    pub(crate) fn baton_cpu_s(&self) -> (f64, f64) {
        let workers = self.workers.iter().map(Proc::cpu_s).sum();
        (self.broker.cpu_s(), workers)
    }

    /// Fails when a process of the deployment has exited.
    pub(crate) fn check_running(&mut self) -> Result<()> {
        self.broker.check_running()?;
        self.workers.iter_mut().try_for_each(Proc::check_running)
    }
}

async fn fresh_store(store: &StoreKind, dir: &Path, name: &str) -> Result<String> {
    match store {
        StoreKind::Postgres { server, .. } => {
            let admin = PgPool::connect(&format!("{server}/postgres")).await?;
            let db = format!("baton_bench_{name}");
            // The name is ours, made of a fixed prefix and a workload name.
            let drop = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
            sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                .execute(&admin)
                .await?;
            let create = format!("CREATE DATABASE {db}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                .execute(&admin)
                .await?;
            admin.close().await;
            Ok(format!("{server}/{db}"))
        }
        StoreKind::Sqlite => {
            let path = dir.join("baton.db");
            let path = path.to_str().context("temp dir is not UTF-8")?;
            Ok(format!("sqlite://{path}?mode=rwc"))
        }
    }
}

fn migrate(binary: &Path, dir: &Path, database_url: &str) -> Result<()> {
    let status = std::process::Command::new(binary)
        .args(["broker", "migrate", "--database-url", database_url])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("baton broker migrate failed ({status})");
    }
    Ok(())
}

/// Connects to the broker at `url` once its health check says SERVING.
async fn wait_serving(url: &str) -> Result<Channel> {
    let started = Instant::now();
    loop {
        if let Ok(channel) = Channel::from_shared(url.to_owned())?.connect().await {
            let mut health = HealthClient::new(channel.clone());
            let answer = health.check(HealthCheckRequest::default()).await;
            if answer.is_ok_and(|a| a.get_ref().status() == ServingStatus::Serving) {
                return Ok(channel);
            }
        }
        if started.elapsed() > START_DEADLINE {
            bail!("the broker at {url} did not start within {START_DEADLINE:?}");
        }
        // The broker is a process starting up: nothing to wait on but time.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Read access to the deployment's store, for progress and checks.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    /// A Postgres database.
    Postgres(PgPool),
    /// An SQLite file.
    Sqlite(SqlitePool),
}

impl Db {
    async fn connect(store: &StoreKind, url: &str) -> Result<Db> {
        Ok(match store {
            StoreKind::Postgres { .. } => Db::Postgres(PgPool::connect(url).await?),
            StoreKind::Sqlite => Db::Sqlite(SqlitePool::connect(url).await?),
        })
    }

    /// One number from `sql`.
    pub(crate) async fn scalar(&self, sql: &'static str) -> Result<i64> {
        Ok(match self {
            Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
            Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
        })
    }

    /// One number per row from `sql`, as floats.
    pub(crate) async fn floats(&self, sql: &'static str) -> Result<Vec<f64>> {
        Ok(match self {
            Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await?,
            Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await?,
        })
    }

    /// Writes everything dirty to disk, so no checkpoint lands inside a
    /// measured window.
    pub(crate) async fn checkpoint(&self) -> Result<()> {
        match self {
            Db::Postgres(pool) => pool.execute("CHECKPOINT").await.map(|_| ())?,
            Db::Sqlite(pool) => pool
                .execute("PRAGMA wal_checkpoint(PASSIVE)")
                .await
                .map(|_| ())?,
        }
        Ok(())
    }
}
