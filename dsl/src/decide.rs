//! The retry decision after one attempt, in DESIGN §4's order.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

use crate::expr::{Expression, retry_context};
use crate::retry::RetryPolicy;

/// How one attempt ended, as the policy sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether the task succeeded (no exception, a 2xx status, …).
    pub success: bool,
    /// The task's whole result; null when it produced none.
    pub result: serde_json::Value,
    /// The HTTP status, for HTTP tasks that got a response.
    pub status_code: Option<u16>,
    /// The error message of a failed attempt.
    pub error: Option<String>,
}

impl Outcome {
    /// A successful attempt that returned `result`.
    pub fn success(result: serde_json::Value) -> Self {
        Outcome {
            success: true,
            result,
            status_code: None,
            error: None,
        }
    }

    /// A failed attempt with `error` and no result.
    pub fn failure(error: impl Into<String>) -> Self {
        Outcome {
            success: false,
            result: serde_json::Value::Null,
            status_code: None,
            error: Some(error.into()),
        }
    }
}

/// Where jitter factors come from; a trait so tests can fix them.
pub trait JitterSource {
    /// A factor in [0.5, 1.5).
    fn factor(&mut self) -> f64;
}

/// Jitter from the thread-local random generator; the production source.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomJitter;

impl JitterSource for RandomJitter {
    fn factor(&mut self) -> f64 {
        rand::rng().random_range(0.5..1.5)
    }
}

/// Always the same factor; for tests and reproducible simulations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedJitter(pub f64);

impl JitterSource for FixedJitter {
    fn factor(&mut self) -> f64 {
        self.0
    }
}

/// What the policy decided after one attempt, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether to run the task again.
    pub retry: bool,
    /// The rule that decided.
    pub reason: Reason,
    /// The delay before jitter, capped at `max_delay`; zero without retry.
    pub raw_delay: Duration,
    /// The jitter factor applied; 1.0 when jitter is off or without retry.
    pub jitter_factor: f64,
    /// The delay to wait before the next attempt; zero without retry.
    pub delay: Duration,
    /// Extra detail, e.g. the message of an expression that failed.
    pub message: Option<String>,
}

impl Decision {
    /// A decision not to run the job again, for `reason`, with an optional
    /// detail (such as an expression's error).
    pub fn no_retry(reason: Reason, message: Option<String>) -> Decision {
        Decision {
            retry: false,
            reason,
            raw_delay: Duration::ZERO,
            jitter_factor: 1.0,
            delay: Duration::ZERO,
            message,
        }
    }
}

/// The rule behind a [`Decision`]; one word each in every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The attempt was the last one allowed: no retry, even on success.
    AttemptsExhausted,
    /// `stop_when` held: no retry; a failed attempt is final.
    StopWhen,
    /// `retry_when` held: retry, even after a success (polling).
    RetryWhen,
    /// `retry_when` did not hold: a success completes, a failure is final.
    RetryWhenFalse,
    /// No `retry_when`: a failure is retried, a success completes.
    Default,
    /// An expression failed at run time: no retry; see the message.
    ExpressionError,
}

impl Reason {
    /// Every reason, in decision order.
    pub fn all() -> &'static [Reason] {
        &[
            Reason::AttemptsExhausted,
            Reason::StopWhen,
            Reason::RetryWhen,
            Reason::RetryWhenFalse,
            Reason::Default,
            Reason::ExpressionError,
        ]
    }

    /// The snake_case name used in proto, SQL, JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AttemptsExhausted => "attempts_exhausted",
            Reason::StopWhen => "stop_when",
            Reason::RetryWhen => "retry_when",
            Reason::RetryWhenFalse => "retry_when_false",
            Reason::Default => "default",
            Reason::ExpressionError => "expression_error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::all()
            .iter()
            .copied()
            .find(|reason| reason.as_str() == s)
            .ok_or_else(|| format!("unknown retry reason `{s}`"))
    }
}

/// Decides whether to retry after `attempt` (1 for the first run) ended
/// with `outcome`. Order: attempts exhausted, `stop_when`, `retry_when`,
/// then the default (retry failures only). An expression that fails to
/// evaluate makes the attempt final with [`Reason::ExpressionError`].
pub fn decide(
    policy: &RetryPolicy,
    outcome: &Outcome,
    attempt: u32,
    jitter: &mut dyn JitterSource,
) -> Decision {
    if attempt >= policy.max_attempts {
        return Decision::no_retry(Reason::AttemptsExhausted, None);
    }

    let ctx = retry_context(outcome, attempt);
    if let Some(stop_when) = &policy.stop_when {
        match stop_when.is_true(&ctx) {
            Err(message) => return Decision::no_retry(Reason::ExpressionError, Some(message)),
            Ok(true) => return Decision::no_retry(Reason::StopWhen, None),
            Ok(false) => {}
        }
    }

    let (retry, reason) = match retry_when(policy.retry_when.as_ref(), &ctx, outcome) {
        Ok(rule) => rule,
        Err(message) => return Decision::no_retry(Reason::ExpressionError, Some(message)),
    };
    if retry {
        go(policy, attempt, reason, jitter)
    } else {
        Decision::no_retry(reason, None)
    }
}

/// Rows 3 and 4: `retry_when` when set, otherwise retry failures.
fn retry_when(
    expression: Option<&Expression>,
    ctx: &serde_json::Value,
    outcome: &Outcome,
) -> Result<(bool, Reason), String> {
    match expression {
        Some(expression) if expression.is_true(ctx)? => Ok((true, Reason::RetryWhen)),
        Some(_) => Ok((false, Reason::RetryWhenFalse)),
        None => Ok((!outcome.success, Reason::Default)),
    }
}

fn go(
    policy: &RetryPolicy,
    attempt: u32,
    reason: Reason,
    jitter: &mut dyn JitterSource,
) -> Decision {
    // Clamped so a misbehaving source cannot break the documented bounds.
    let jitter_factor = if policy.jitter {
        sane_factor(jitter.factor())
    } else {
        1.0
    };
    Decision {
        retry: true,
        reason,
        raw_delay: policy.delay(attempt, 1.0),
        jitter_factor,
        delay: policy.delay(attempt, jitter_factor),
        message: None,
    }
}

fn sane_factor(factor: f64) -> f64 {
    if factor.is_finite() {
        factor.clamp(0.5, 1.5)
    } else {
        1.0
    }
}
