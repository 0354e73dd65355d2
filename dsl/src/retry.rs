//! The retry policy of a step or bare job, and its backoff arithmetic.

use std::time::Duration;

use crate::diag::{Diagnostics, Limits};
use crate::expr::Expression;
use crate::node::{Node, parse_yaml};
use crate::retry_parse::parse_retry;

/// Largest accepted `max_attempts`. Beyond it a policy is a mistake rather
/// than a plan, and attempt counters stay far from overflow.
pub const MAX_ATTEMPTS_LIMIT: u32 = 10_000;

/// Largest accepted delay, in seconds (one year). Longer delays are refused
/// so `Duration` arithmetic and database timestamps never overflow.
pub const MAX_DELAY_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// How a failed (or polling) attempt is retried. DESIGN §4.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total runs, the first included; at least 1.
    pub max_attempts: u32,
    /// Delay before the second attempt, before jitter.
    pub initial_delay: Duration,
    /// Growth of the delay per attempt; finite and > 0.
    pub backoff_multiplier: f64,
    /// Ceiling of every delay, jitter included.
    pub max_delay: Duration,
    /// Whether delays are multiplied by a factor drawn from [0.5, 1.5).
    pub jitter: bool,
    /// Retry when this holds, even after a success (polling).
    pub retry_when: Option<Expression>,
    /// Never retry when this holds; wins over `retry_when`.
    pub stop_when: Option<Expression>,
}

impl Default for RetryPolicy {
    /// The policy of a step without `retry` (or `retry: false`): one attempt.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::defaults()
        }
    }
}

impl RetryPolicy {
    /// The policy of `retry: true`: 3 attempts, 1 s doubling up to 60 s,
    /// with jitter.
    pub fn defaults() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_secs(1),
            backoff_multiplier: 2.0,
            max_delay: Duration::from_secs(60),
            jitter: true,
            retry_when: None,
            stop_when: None,
        }
    }

    /// Reads a retry block given as JSON, in the same forms as YAML
    /// (null/false, true, an integer, a mapping). Used for bare jobs and
    /// the wire; diagnostics carry the key path and no position.
    pub fn from_json(value: &serde_json::Value) -> Result<RetryPolicy, Diagnostics> {
        parse_retry(&Node::from_json(value), "retry").map_err(Diagnostics)
    }

    /// Reads a retry block alone from YAML, e.g. `5` or
    /// `"max_attempts: 4\ninitial_delay: 0.5"`.
    pub fn from_yaml(text: &str) -> Result<RetryPolicy, Diagnostics> {
        let node = parse_yaml(text, &Limits::default())?;
        parse_retry(&node, "retry").map_err(Diagnostics)
    }

    /// The canonical mapping form; [`RetryPolicy::from_json`] reads it back
    /// to an equal policy. Delays are seconds with millisecond precision.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("max_attempts".into(), self.max_attempts.into());
        map.insert("initial_delay".into(), seconds(self.initial_delay).into());
        map.insert("backoff_multiplier".into(), self.backoff_multiplier.into());
        map.insert("max_delay".into(), seconds(self.max_delay).into());
        map.insert("jitter".into(), self.jitter.into());
        let expression = |e: &Option<Expression>| e.as_ref().map(|e| e.source().to_owned());
        map.insert("retry_when".into(), expression(&self.retry_when).into());
        map.insert("stop_when".into(), expression(&self.stop_when).into());
        serde_json::Value::Object(map)
    }

    /// The delay after attempt `attempt` (1 for the first run):
    /// `min(initial_delay * multiplier^(attempt-1) * jitter_factor, max_delay)`
    /// to the millisecond. Saturates at `max_delay` instead of overflowing;
    /// a non-finite or negative factor counts as 1.0 and 0 respectively.
    pub fn delay(&self, attempt: u32, jitter_factor: f64) -> Duration {
        let exponent = f64::from(attempt.max(1) - 1);
        let growth = self.backoff_multiplier.powf(exponent);
        let factor = sanitize_factor(jitter_factor);
        let raw = self.initial_delay.as_secs_f64() * growth * factor;
        let cap = self.max_delay.as_secs_f64();
        let capped = if raw.is_nan() { cap } else { raw.min(cap) };
        millis(capped)
    }
}

fn sanitize_factor(factor: f64) -> f64 {
    if factor.is_nan() {
        1.0
    } else {
        factor.max(0.0)
    }
}

/// Seconds as f64, rounded to the millisecond so the JSON form is stable.
pub(crate) fn seconds(duration: Duration) -> f64 {
    let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    // Millisecond counts below 2^53 are exact in f64; delays are capped at a
    // year, far below that.
    #[allow(clippy::cast_precision_loss)]
    let ms = ms as f64;
    ms / 1000.0
}

/// A non-negative finite number of seconds as a Duration rounded to the
/// millisecond (so `0.0015` becomes 2 ms, never whole seconds).
pub(crate) fn millis(secs: f64) -> Duration {
    let ms = (secs.max(0.0) * 1000.0).round();
    // Callers bound `secs` by a validated max_delay (at most a year), so the
    // value fits in u64; the clamp keeps it safe on any input anyway.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = ms.min(u64::MAX as f64) as u64;
    Duration::from_millis(ms)
}
