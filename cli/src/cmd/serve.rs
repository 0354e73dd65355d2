//! The long-running commands: `baton broker serve | migrate` and
//! `baton worker`.

use baton_broker::{Broker, BrokerConfig, ServerTls};
use baton_worker::{WorkerConfig, telemetry};
use tokio::net::TcpListener;

use crate::args::{BrokerCommand, BrokerServeArgs, WorkerArgs};
use crate::client::Failure;

/// Runs `baton broker serve` or `baton broker migrate`.
pub(crate) async fn broker(cmd: BrokerCommand) -> Result<(), Failure> {
    match cmd {
        BrokerCommand::Serve(args) => serve(args).await,
        BrokerCommand::Migrate(args) => {
            let _telemetry = telemetry::init("baton-broker");
            baton_broker::migrate(&args.database_url)
                .await
                .map_err(|e| Failure::failed(format!("migrating: {e}")))
        }
    }
}

async fn serve(args: BrokerServeArgs) -> Result<(), Failure> {
    let telemetry = telemetry::init("baton-broker");
    let mut config = BrokerConfig::new(args.database_url);
    config.listen = args.listen;
    config.lease_timeout = args.lease_timeout;
    config.metrics_listen = args.metrics_listen;
    config.auth_token_file = args.auth_token_file;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(ServerTls {
            cert,
            key,
            client_ca: args.tls_client_ca,
        });
    }
    config
        .validate()
        .map_err(|e| Failure::usage(e.to_string()))?;

    if args.migrate {
        baton_broker::migrate(&config.database_url)
            .await
            .map_err(|e| Failure::failed(format!("migrating: {e}")))?;
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Failure::failed(format!("binding {}: {e}", config.listen)))?;
    tracing::info!(addr = %listener.local_addr()?, "Listening");
    let broker = Broker::connect(config)
        .await
        .map_err(|e| Failure::failed(format!("starting the broker: {e}")))?;
    let served = broker.serve(listener, shutdown_signal()).await;
    telemetry.flush();
    served.map_err(|e| Failure::failed(format!("serving: {e}")))
}

/// Runs `baton worker` until SIGTERM or Ctrl-C, then drains it.
pub(crate) async fn worker(args: WorkerArgs) -> Result<(), Failure> {
    let telemetry = telemetry::init("baton-worker");
    let mut config = WorkerConfig::new(args.broker);
    config.concurrency = args.concurrency;
    config.grace = args.grace;
    config.metrics_listen = args.metrics_listen;
    config.auth_token_file = args.connect.auth_token_file;
    config.tls_ca = args.connect.tls_ca;
    config.tls_cert = args.connect.tls_cert;
    config.tls_key = args.connect.tls_key;
    if !args.queues.is_empty() {
        config.queues = args.queues;
    }
    if let Some(name) = args.name {
        config.name = name;
    }
    let ran = baton_worker::run(config, shutdown_signal()).await;
    telemetry.flush();
    ran.map_err(|e| Failure::failed(e.to_string()))
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("Shutting down");
}
