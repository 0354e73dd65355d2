//! Live progress of an execution for `baton dev`: each event on its own
//! line and, on a terminal, a status line that counts down to the next
//! retry while a step waits for it.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use baton_proto::v1;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_stream::StreamExt;

use crate::args::OutputFormat;
use crate::client::{Clients, Failure};
use crate::cmd::execution::print_event;
use crate::output::{Printer, cell};
use crate::render;

/// How often the countdown is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// A step waiting for its next attempt.
#[derive(Debug)]
struct Waiting {
    step: String,
    next_attempt: u64,
    max_attempts: u64,
    last_error: String,
    due: DateTime<Utc>,
}

impl Waiting {
    /// The step an `action_retry` event puts to wait, if it is one.
    fn from_retry(event: &Value, last_error: &str) -> Option<Waiting> {
        if event["name"] != "action_retry" {
            return None;
        }
        let due = event["available_at"].as_str()?.parse().ok()?;
        Some(Waiting {
            step: cell(&event["step"]),
            next_attempt: event["attempt"].as_u64()? + 1,
            max_attempts: event["max_attempts"].as_u64()?,
            last_error: last_error.to_owned(),
            due,
        })
    }

    fn status(&self) -> String {
        let left = (self.due - Utc::now()).num_milliseconds().max(0);
        #[allow(clippy::cast_precision_loss)] // a countdown needs no precision
        let seconds = left as f64 / 1000.0;
        format!(
            "  {}: attempt {} of {} in {seconds:.1}s (last error: {})",
            self.step, self.next_attempt, self.max_attempts, self.last_error
        )
    }
}

/// Prints an execution's events until it ends, with a retry countdown when
/// standard output is a terminal.
pub(crate) async fn follow(clients: &mut Clients, id: i64) -> Result<(), Failure> {
    let request = v1::WatchEventsRequest {
        execution_id: id,
        follow: Some(true),
        ..Default::default()
    };
    let mut stream = clients.executions.watch_events(request).await?.into_inner();
    let printer = Printer::new(OutputFormat::Table);
    let live = std::io::stdout().is_terminal();
    let mut tick = tokio::time::interval(TICK);
    let mut waiting: Option<Waiting> = None;
    let mut last_error = String::new();
    loop {
        tokio::select! {
            event = stream.next() => {
                let Some(event) = event else { break };
                let event = render::event(&event?);
                if live { clear_status(); }
                print_event(printer, &event);
                if event["name"] == "action_error" {
                    last_error = cell(&event["error"]);
                }
                waiting = Waiting::from_retry(&event, &last_error);
            }
            _ = tick.tick(), if live && waiting.is_some() => {
                if let Some(w) = &waiting { draw_status(&w.status()); }
            }
        }
    }
    Ok(())
}

fn draw_status(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "\r\x1b[K{text}");
    let _ = out.flush();
}

fn clear_status() {
    draw_status("");
}
