//! The command line, as clap reads it. Every flag that a deployment sets has
//! an environment variable too, so the Helm chart and containers can use
//! either.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Baton: a distributed job broker for YAML playbooks with real retries.
#[derive(Debug, Parser)]
#[command(name = "baton", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a broker and workers on an embedded SQLite store, on one machine.
    Dev(DevArgs),
    /// Run or migrate a production broker.
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// Run a worker process.
    Worker(WorkerArgs),
    /// Register and read playbooks.
    #[command(subcommand)]
    Playbook(PlaybookCommand),
    /// Start, follow and cancel executions.
    #[command(subcommand)]
    Execution(ExecutionCommand),
    /// Read, requeue and cancel jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Explain retry policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Readable tables and live views.
    Table,
    /// One JSON object per line, for scripts.
    Json,
}

/// Flags shared by every command that talks to a broker.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClientArgs {
    /// The broker's gRPC address.
    #[arg(long, env = "BATON_BROKER", default_value = "http://127.0.0.1:50051")]
    pub(crate) broker: String,
    /// How records are printed.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
    /// How to authenticate to the broker.
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// How a client or a worker proves itself to a broker: its bearer token and
/// TLS files. The same flags and variables for every command that connects.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectArgs {
    /// A file whose first token is sent as the bearer token.
    #[arg(long, env = "BATON_AUTH_TOKEN_FILE", value_name = "FILE")]
    pub(crate) auth_token_file: Option<PathBuf>,
    /// CA certificates (PEM) that sign the broker's certificate.
    #[arg(long, env = "BATON_TLS_CA", value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) to present to a broker that requires one
    /// (mTLS).
    #[arg(
        long,
        env = "BATON_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(
        long,
        env = "BATON_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(crate) tls_key: Option<PathBuf>,
}

/// `baton dev`.
#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Where the SQLite database lives.
    #[arg(long, default_value = ".baton")]
    pub(crate) data_dir: PathBuf,
    /// The gRPC address to serve.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub(crate) listen: SocketAddr,
    /// How many in-process workers to run.
    #[arg(long, default_value_t = 2)]
    pub(crate) workers: u32,
    /// Register and run this playbook, then exit with its outcome. Repeatable.
    #[arg(long = "run", value_name = "FILE")]
    pub(crate) run: Vec<PathBuf>,
    /// Set a workload key for every run (`KEY=VALUE`; VALUE is JSON when it parses, else text).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// How long a lease lasts without a heartbeat.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub(crate) lease_timeout: Duration,
    /// Serve the broker's Prometheus metrics at `/metrics` on this address.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_listen: Option<SocketAddr>,
}

/// `baton broker …`.
#[derive(Debug, Subcommand)]
pub(crate) enum BrokerCommand {
    /// Serve the gRPC API.
    Serve(BrokerServeArgs),
    /// Apply the database migrations, then exit.
    Migrate(MigrateArgs),
}

/// `baton broker serve`.
#[derive(Debug, Args)]
pub(crate) struct BrokerServeArgs {
    /// The database (`postgres://…` or `sqlite://…`).
    #[arg(long, env = "BATON_DATABASE_URL")]
    pub(crate) database_url: String,
    /// The gRPC address to serve.
    #[arg(long, env = "BATON_LISTEN", default_value = "0.0.0.0:50051")]
    pub(crate) listen: SocketAddr,
    /// How long a lease lasts without a heartbeat (`30s`, `500ms`).
    #[arg(long, env = "BATON_LEASE_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub(crate) lease_timeout: Duration,
    /// Apply pending migrations before serving.
    #[arg(long, env = "BATON_MIGRATE")]
    pub(crate) migrate: bool,
    /// Serve Prometheus metrics at `/metrics` on this address.
    #[arg(long, env = "BATON_METRICS_LISTEN", value_name = "ADDR")]
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// Require a bearer token from this file (one a line) on every
    /// `baton.v1` call; health and reflection stay open.
    #[arg(long, env = "BATON_AUTH_TOKEN_FILE", value_name = "FILE")]
    pub(crate) auth_token_file: Option<PathBuf>,
    /// Serve TLS with this certificate chain (PEM).
    #[arg(
        long,
        env = "BATON_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(
        long,
        env = "BATON_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(crate) tls_key: Option<PathBuf>,
    /// Require client certificates signed by these CA certificates (mTLS).
    #[arg(
        long,
        env = "BATON_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(crate) tls_client_ca: Option<PathBuf>,
}

/// `baton broker migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The database (`postgres://…` or `sqlite://…`).
    #[arg(long, env = "BATON_DATABASE_URL")]
    pub(crate) database_url: String,
}

/// `baton worker`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// The broker's gRPC address.
    #[arg(long, env = "BATON_BROKER", default_value = "http://127.0.0.1:50051")]
    pub(crate) broker: String,
    /// How many attempts run at once.
    #[arg(long, env = "BATON_CONCURRENCY", default_value_t = 4)]
    pub(crate) concurrency: u32,
    /// A queue to take jobs from. Repeatable; default `default`.
    #[arg(long = "queue", env = "BATON_QUEUES", value_delimiter = ',')]
    pub(crate) queues: Vec<String>,
    /// How long running attempts may take to finish on shutdown.
    #[arg(long, env = "BATON_GRACE", value_parser = parse_duration, default_value = "30s")]
    pub(crate) grace: Duration,
    /// The worker's name in attempts and logs. Default: host and process id.
    #[arg(long, env = "BATON_WORKER_NAME")]
    pub(crate) name: Option<String>,
    /// Serve Prometheus metrics at `/metrics` on this address.
    #[arg(long, env = "BATON_METRICS_LISTEN", value_name = "ADDR")]
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// How to authenticate to the broker.
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// `baton playbook …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PlaybookCommand {
    /// Validate and register a playbook file.
    Register {
        /// The playbook's YAML file.
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the catalog.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one playbook.
    Get {
        /// The playbook's path.
        path: String,
        /// The version; the latest when unset.
        #[arg(long, default_value_t = 0)]
        version: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `baton execution …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ExecutionCommand {
    /// Start an execution of a registered path, or of a file (registered first).
    Run {
        /// A registered playbook path, or a YAML file.
        playbook: String,
        /// Set a workload key (`KEY=VALUE`; VALUE is JSON when it parses, else text).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Follow it to the end and exit with its outcome.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one execution.
    Get {
        /// The execution's id.
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List executions, newest first.
    List {
        /// Only executions in this state.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print an execution's events.
    Events {
        /// The execution's id.
        id: i64,
        /// Keep streaming until the execution ends, then exit with its outcome.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel an execution and its unfinished jobs.
    Cancel {
        /// The execution's id.
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `baton job …`.
#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state (queued, leased, done, dead, cancelled).
        #[arg(long)]
        state: Option<String>,
        /// Only jobs of this execution.
        #[arg(long)]
        execution: Option<i64>,
        /// Only jobs of this queue.
        #[arg(long)]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a job and its attempt history.
    Get {
        /// The job's id.
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Put a dead or cancelled job back in its queue.
    Requeue {
        /// The job's id.
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a queued or leased job.
    Cancel {
        /// The job's id.
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `baton policy …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Print the retry schedule a step's policy yields.
    Simulate {
        /// A playbook file.
        file: PathBuf,
        /// The step; the first step with a retry block when unset.
        #[arg(long)]
        step: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Reads durations such as `30s`, `500ms` or `2m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (try `30s` or `500ms`)"))
}
