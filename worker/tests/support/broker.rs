//! The real broker (`baton-broker`), served in-process on a fresh Postgres
//! database of its own, the way the broker's own tests start it.
//!
//! Each broker runs on a thread with its own Tokio runtime, so stopping it
//! is what a crashed broker process looks like to a worker: the runtime is
//! dropped, and with it every connection, lease stream and listener. A new
//! broker can then be started on the same database, on the same port (the
//! worker comes back to it) or on another one (the worker cannot see it).

use std::net::SocketAddr;
use std::time::Duration;

use baton_broker::{Broker, BrokerConfig};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

use super::within;

/// Lease settings of a test broker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leases {
    /// How long a lease lasts without a heartbeat.
    pub(crate) timeout: Duration,
    /// How often workers are told to heartbeat.
    pub(crate) heartbeat: Duration,
}

impl Leases {
    /// Leases that never expire during a test, heartbeated every 100 ms so
    /// a cancellation reaches the worker at once.
    pub(crate) const LONG: Leases = Leases {
        timeout: Duration::from_secs(60),
        heartbeat: Duration::from_millis(100),
    };

    /// Leases that expire 500 ms after the last heartbeat.
    pub(crate) const SHORT: Leases = Leases {
        timeout: Duration::from_millis(500),
        heartbeat: Duration::from_millis(100),
    };
}

/// A real broker serving on a loopback port, stopped when dropped.
#[derive(Debug)]
pub(crate) struct TestBroker {
    database_url: String,
    leases: Leases,
    addr: SocketAddr,
    serving: Option<Serving>,
}

impl TestBroker {
    /// A broker with [`Leases::LONG`] on a fresh, migrated database.
    pub(crate) async fn start() -> TestBroker {
        TestBroker::start_with(Leases::LONG).await
    }

    /// A broker with `leases` on a fresh, migrated database.
    pub(crate) async fn start_with(leases: Leases) -> TestBroker {
        let prefix = "baton_worker_test";
        let url = baton_testkit::postgres::fresh_database(prefix)
            .await
            .expect("a fresh database (is DATABASE_URL set?)");
        baton_broker::migrate(&url).await.expect("migrations apply");
        TestBroker::serve_on(url, leases, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    async fn serve_on(database_url: String, leases: Leases, addr: SocketAddr) -> TestBroker {
        let config = config(&database_url, leases);
        let (serving, addr) = within("the broker to start", Serving::spawn(config, addr)).await;
        TestBroker {
            database_url,
            leases,
            addr,
            serving: Some(serving),
        }
    }

    /// Another broker on the same database, on a port of its own.
    pub(crate) async fn elsewhere(&self) -> TestBroker {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        TestBroker::serve_on(self.database_url.clone(), self.leases, any_port).await
    }

    /// The URL workers and clients connect to.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the broker as a crash would: every connection is dropped.
    pub(crate) async fn stop(&mut self) {
        if let Some(serving) = self.serving.take() {
            within("the broker to stop", serving.stop()).await;
        }
    }

    /// Starts a new broker on the same database and the same port.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        let config = config(&self.database_url, self.leases);
        let (serving, _) = within("the broker to restart", Serving::spawn(config, self.addr)).await;
        self.serving = Some(serving);
    }
}

fn config(database_url: &str, leases: Leases) -> BrokerConfig {
    let mut config = BrokerConfig::new(database_url);
    config.lease_timeout = leases.timeout;
    config.heartbeat_interval = Some(leases.heartbeat);
    config.max_connections = 5;
    config
}

/// The thread a broker runs on, and how to stop it.
#[derive(Debug)]
struct Serving {
    stop: oneshot::Sender<()>,
    stopped: oneshot::Receiver<()>,
}

impl Serving {
    /// Starts a broker with `config` listening on `addr`; returns once it
    /// accepts connections, with the address it is bound to.
    async fn spawn(config: BrokerConfig, addr: SocketAddr) -> (Serving, SocketAddr) {
        let (ready, is_ready) = oneshot::channel();
        let (stop, stop_asked) = oneshot::channel();
        let (has_stopped, stopped) = oneshot::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a broker runtime");
            runtime.block_on(serve(config, addr, ready, stop_asked));
            // Dropping the runtime drops every task it still runs: the
            // connections and lease streams go the way they would if the
            // broker process died.
            drop(runtime);
            let _ = has_stopped.send(());
        });
        let bound = is_ready.await.expect("the broker thread answers");
        let addr = bound.unwrap_or_else(|err| panic!("broker did not start: {err}"));
        (Serving { stop, stopped }, addr)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.stopped.await;
    }
}

type Ready = oneshot::Sender<Result<SocketAddr, String>>;

async fn serve(config: BrokerConfig, addr: SocketAddr, ready: Ready, stop: oneshot::Receiver<()>) {
    let started = async {
        let listener = bind(addr).map_err(|err| format!("binding {addr}: {err}"))?;
        let bound = listener.local_addr().map_err(|err| err.to_string())?;
        let broker = Broker::connect(config)
            .await
            .map_err(|err| err.to_string())?;
        Ok::<_, String>((listener, bound, broker))
    };
    let (listener, bound, broker) = match started.await {
        Ok(started) => started,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let _ = ready.send(Ok(bound));
    tokio::select! {
        _ = stop => {}
        served = broker.serve(listener, std::future::pending()) => {
            if let Err(err) = served {
                eprintln!("test broker stopped: {err}");
            }
        }
    }
}

/// Binds with SO_REUSEADDR, so a restarted broker gets its port back while
/// the old connections linger in TIME_WAIT.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
