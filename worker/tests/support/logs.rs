//! The worker's own log events, recorded so a test can wait for one: the
//! worker logs what it does, and some of what it does (retrying a report
//! the broker did not take) shows nowhere else while the broker is away.

use std::fmt::Debug;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::field::{Field, Visit};
use tracing::subscriber::DefaultGuard;
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

use super::within;

/// The messages logged so far, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct Logs(Arc<watch::Sender<Vec<String>>>);

impl Logs {
    /// Records every event logged on this thread until the guard drops. A
    /// `#[tokio::test]` runs every task it spawns, the worker's included,
    /// on its own thread.
    pub(crate) fn record() -> (Logs, DefaultGuard) {
        let logs = Logs(Arc::new(watch::Sender::new(Vec::new())));
        let subscriber = tracing_subscriber::registry().with(Recorder(logs.clone()));
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// How many times `message` has been logged so far.
    pub(crate) fn count(&self, message: &str) -> usize {
        self.0.borrow().iter().filter(|m| *m == message).count()
    }

    /// Waits until a message equal to `message` has been logged.
    pub(crate) async fn logged(&self, message: &str) {
        let mut messages = self.0.subscribe();
        let seen = |all: &Vec<String>| all.iter().any(|m| m == message);
        let waited = within(message, messages.wait_for(seen)).await;
        waited.expect("the recorder outlives the wait");
    }
}

struct Recorder(Logs);

impl<S: Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.0.send_modify(|all| all.push(message.0));
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
