//! A Baton deployment for one test, made of real processes: either
//! `baton broker serve` processes sharing a fresh Postgres database with
//! `baton worker` processes beside them, or one `baton dev` on embedded
//! SQLite. Every broker and worker serves its metrics on a free port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::{PgPool, SqlitePool};
use tempfile::TempDir;

use crate::metrics::Scrape;
use crate::postgres::{admin_url, fresh_database_on};
use crate::process::Process;

/// How long a process may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Which store, and so which processes, a cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `baton broker serve` on Postgres plus separate `baton worker`s.
    Postgres,
    /// One `baton dev` process: SQLite, broker and workers together.
    Dev,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker processes (Postgres) or in-process workers (dev).
    pub workers: u32,
    /// The broker's `--lease-timeout`.
    pub lease_timeout: String,
    /// The administrative URL of the Postgres server the deployment's
    /// database is created on (a [`crate::pg_server::PgServer`]'s, for a
    /// test that stops it). Default `None`: the one `DATABASE_URL` names.
    pub admin_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 1,
            lease_timeout: "30s".to_owned(),
            admin_url: None,
        }
    }
}

/// Flags added to the `baton broker serve` and `baton worker` command
/// lines of [`Cluster::start_with_flags`], for token and TLS files.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// Added to every broker's command line.
    pub broker: Vec<String>,
    /// Added to every worker's command line.
    pub worker: Vec<String>,
    /// Whether the brokers serve TLS, so workers and [`Cluster::url`] use
    /// `https://`.
    pub tls: bool,
}

impl Flags {
    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

/// One broker (or `baton dev`) process and where it listens.
#[derive(Debug)]
pub struct Node {
    /// The process.
    pub process: Process,
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its metrics address (`/metrics`).
    pub metrics: SocketAddr,
}

impl Node {
    /// The broker's URL for gRPC clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Scrapes the broker's metrics.
    pub async fn scrape(&self) -> Result<Scrape> {
        Scrape::get(self.metrics).await
    }
}

/// A running deployment; dropping it kills every process.
#[derive(Debug)]
pub struct Cluster {
    /// Which store it runs on.
    pub backend: Backend,
    /// The first broker's gRPC address.
    pub addr: SocketAddr,
    /// The database every broker uses.
    pub database_url: String,
    /// The brokers (one `baton dev` for dev), in start order.
    pub brokers: Vec<Node>,
    /// The worker processes (empty for dev, whose workers are in-process).
    pub workers: Vec<Process>,
    binary: PathBuf,
    dir: TempDir,
    flags: Flags,
    options: Options,
    /// Brokers restarted so far, to name their new logs.
    restarts: u32,
}

impl Cluster {
    /// Starts a deployment of `binary` (the `baton` executable) with one
    /// broker and `options.workers` workers.
    pub async fn start(backend: Backend, binary: &Path, options: &Options) -> Result<Cluster> {
        match backend {
            Backend::Postgres => Cluster::start_shared(binary, &[options.workers], options).await,
            Backend::Dev => {
                let dir = tempfile::tempdir()?;
                let (database_url, dev) = start_dev(binary, dir.path(), options)?;
                let node = node(dev).await?;
                let mut cluster = Cluster::new(backend, database_url, vec![node], binary, dir);
                cluster.options = options.clone();
                Ok(cluster)
            }
        }
    }

    /// Starts one broker per entry of `workers` on one fresh Postgres
    /// database, each with that many workers of its own (`[2, 1, 1]`: three
    /// brokers, four workers); `options.workers` is not used.
    pub async fn start_shared(
        binary: &Path,
        workers: &[u32],
        options: &Options,
    ) -> Result<Cluster> {
        Cluster::start_with_flags(binary, workers, options, Flags::default()).await
    }

    /// [`Cluster::start_shared`] with `flags` added to the brokers' and
    /// workers' command lines.
    pub async fn start_with_flags(
        binary: &Path,
        workers: &[u32],
        options: &Options,
        flags: Flags,
    ) -> Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let admin = match &options.admin_url {
            Some(admin) => admin.clone(),
            None => admin_url()?,
        };
        let url = migrated_database(binary, dir.path(), &admin).await?;
        let mut brokers = Vec::with_capacity(workers.len());
        for n in 1..=workers.len() {
            let name = format!("broker-{n}");
            let listen = "127.0.0.1:0";
            let args = broker_args(&url, listen, options, &flags.broker);
            let broker = Process::spawn(binary, &args, dir.path(), &name)?;
            brokers.push(node(broker).await?);
        }
        let mut cluster = Cluster::new(Backend::Postgres, url, brokers, binary, dir);
        cluster.flags = flags;
        cluster.options = options.clone();
        for (broker, count) in workers.iter().enumerate() {
            for _ in 0..*count {
                cluster.add_worker_to(broker)?;
            }
        }
        Ok(cluster)
    }

    fn new(
        backend: Backend,
        database_url: String,
        brokers: Vec<Node>,
        binary: &Path,
        dir: TempDir,
    ) -> Cluster {
        Cluster {
            backend,
            addr: brokers[0].addr,
            database_url,
            brokers,
            workers: Vec::new(),
            binary: binary.to_owned(),
            dir,
            flags: Flags::default(),
            options: Options::default(),
            restarts: 0,
        }
    }

    /// The first broker's URL for gRPC clients (`https://` when started
    /// with [`Flags::tls`]).
    pub fn url(&self) -> String {
        format!("{}://{}", self.flags.scheme(), self.addr)
    }

    /// The directory the cluster's processes run in, removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts one more `baton worker` process against the first broker.
    pub fn add_worker(&mut self) -> Result<&mut Process> {
        self.add_worker_to(0)
    }

    /// Starts one more `baton worker` process against broker `broker`.
    pub fn add_worker_to(&mut self, broker: usize) -> Result<&mut Process> {
        let name = format!("worker-{}", self.workers.len() + 1);
        let url = format!("{}://{}", self.flags.scheme(), self.brokers[broker].addr);
        let mut args = vec![
            "worker",
            "--broker",
            &url,
            "--name",
            &name,
            "--grace",
            "5s",
            "--metrics-listen",
            "127.0.0.1:0",
        ];
        args.extend(self.flags.worker.iter().map(String::as_str));
        let worker = Process::spawn(&self.binary, &args, self.dir.path(), &name)?;
        self.workers.push(worker);
        Ok(self.workers.last_mut().expect("just pushed"))
    }

    /// Kills broker `broker` with SIGKILL and starts it again on the same
    /// address and database, as a crashed broker restarted by its
    /// supervisor; returns once it listens. Its new log is
    /// `broker-N.restart-M.log`, M counting restarts in the cluster.
    pub async fn restart_broker(&mut self, broker: usize) -> Result<()> {
        let addr = self.brokers[broker].addr.to_string();
        self.brokers[broker].process.kill().await?;
        self.restarts += 1;
        let name = format!("broker-{}.restart-{}", broker + 1, self.restarts);
        let args = broker_args(&self.database_url, &addr, &self.options, &self.flags.broker);
        let process = Process::spawn(&self.binary, &args, self.dir.path(), &name)?;
        self.brokers[broker] = node(process).await?;
        Ok(())
    }

    /// The `attempts` counter of a job, read from the store itself.
    pub async fn stored_attempts(&self, job_id: i64) -> Result<i64> {
        const SQL: &str = "SELECT attempts FROM jobs WHERE id = $1";
        let attempts = match self.backend {
            Backend::Postgres => {
                let pool = PgPool::connect(&self.database_url).await?;
                let n: i32 = sqlx::query_scalar(SQL)
                    .bind(job_id)
                    .fetch_one(&pool)
                    .await?;
                pool.close().await;
                i64::from(n)
            }
            Backend::Dev => {
                let pool = SqlitePool::connect(&self.database_url).await?;
                let n: i64 = sqlx::query_scalar(SQL)
                    .bind(job_id)
                    .fetch_one(&pool)
                    .await?;
                pool.close().await;
                n
            }
        };
        Ok(attempts)
    }
}

/// Waits for the `addr=IP:PORT` a `baton` process logs when its metrics
/// endpoint listens.
pub async fn metrics_addr(process: &mut Process) -> Result<SocketAddr> {
    let line = process
        .wait_for_line("Metrics listening", START_DEADLINE)
        .await?;
    let addr = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("addr="))
        .with_context(|| format!("no addr= in {line:?}"))?;
    addr.parse().with_context(|| format!("parsing {addr:?}"))
}

async fn node(mut process: Process) -> Result<Node> {
    let addr = process.listening_addr(START_DEADLINE).await?;
    let metrics = metrics_addr(&mut process).await?;
    Ok(Node {
        process,
        addr,
        metrics,
    })
}

async fn migrated_database(binary: &Path, dir: &Path, admin: &str) -> Result<String> {
    let url = fresh_database_on(admin, "baton_e2e").await?;
    let mut migrate = Process::spawn(
        binary,
        &["broker", "migrate", "--database-url", &url],
        dir,
        "migrate",
    )?;
    if migrate.wait().await? != Some(0) {
        bail!("baton broker migrate failed:\n{}", migrate.log_text());
    }
    Ok(url)
}

/// The command line of a broker on `url` listening on `listen`.
fn broker_args<'a>(
    url: &'a str,
    listen: &'a str,
    options: &'a Options,
    extra: &'a [String],
) -> Vec<&'a str> {
    let mut args = vec![
        "broker",
        "serve",
        "--database-url",
        url,
        "--listen",
        listen,
        "--metrics-listen",
        "127.0.0.1:0",
        "--lease-timeout",
        &options.lease_timeout,
    ];
    args.extend(extra.iter().map(String::as_str));
    args
}

fn start_dev(binary: &Path, dir: &Path, options: &Options) -> Result<(String, Process)> {
    let data = dir.join("data");
    let data_dir = data.to_str().context("temp dir is not UTF-8")?;
    let workers = options.workers.to_string();
    let args = [
        "dev",
        "--data-dir",
        data_dir,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--workers",
        &workers,
        "--lease-timeout",
        &options.lease_timeout,
    ];
    let dev = Process::spawn(binary, &args, dir, "dev")?;
    Ok((format!("sqlite://{data_dir}/baton.db"), dev))
}
