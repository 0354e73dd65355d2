//! The real worker runtime (`baton_worker::run` and `run_pool`), started
//! on the test's runtime and shut down on demand.

use std::time::Duration;

use baton_worker::{Error, WorkerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::broker::TestBroker;
use super::within;

/// The configuration the tests start from: named `test-worker`, with
/// `concurrency` slots and 10 s of grace.
pub(crate) fn config(broker: &TestBroker, concurrency: u32) -> WorkerConfig {
    WorkerConfig {
        name: "test-worker".to_owned(),
        concurrency,
        grace: Duration::from_secs(10),
        python_memory_limit: Some(256 << 20),
        ..WorkerConfig::new(broker.url())
    }
}

/// A running worker (or pool); shut down with [`TestWorker::stop`].
#[derive(Debug)]
pub(crate) struct TestWorker {
    shutdown: Option<oneshot::Sender<()>>,
    run: JoinHandle<Result<(), Error>>,
}

impl TestWorker {
    /// Starts `baton_worker::run` with `config`.
    pub(crate) fn start(config: WorkerConfig) -> TestWorker {
        let (shutdown, asked) = oneshot::channel::<()>();
        let run = tokio::spawn(baton_worker::run(config, async move {
            let _ = asked.await;
        }));
        TestWorker {
            shutdown: Some(shutdown),
            run,
        }
    }

    /// Starts `baton_worker::run_pool` with `workers` workers.
    pub(crate) fn pool(config: WorkerConfig, workers: usize) -> TestWorker {
        let (shutdown, asked) = oneshot::channel::<()>();
        let run = tokio::spawn(baton_worker::run_pool(config, workers, async move {
            let _ = asked.await;
        }));
        TestWorker {
            shutdown: Some(shutdown),
            run,
        }
    }

    /// Resolves the worker's shutdown future; it starts draining.
    pub(crate) fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.send(()).unwrap();
        }
    }

    /// Shuts the worker down and waits for `run` to return `Ok`.
    pub(crate) async fn stop(mut self) {
        self.shut_down();
        let ended = within("the worker to stop", self.run).await;
        ended
            .expect("the worker task")
            .expect("the worker stops cleanly");
    }
}
