//! The broker's side of retry decisions: the worker's decision checked
//! against the job's stored policy (the broker is the authority on
//! `max_attempts` and `max_delay`), or the policy evaluated by the broker
//! itself with the same `dsl` code the worker runs.

use std::time::Duration;

use baton_dsl::{Decision, Outcome, RandomJitter, Reason, RetryPolicy, decide};

use crate::model::{DecidedBy, DecisionRecord, WorkerDecision};

/// What the job's policy says after `attempt` of `max_attempts` ended.
pub(crate) fn resolve(
    policy: &RetryPolicy,
    attempt: u32,
    max_attempts: u32,
    outcome: &Outcome,
    worker: Option<&WorkerDecision>,
) -> DecisionRecord {
    match worker {
        Some(decision) => DecisionRecord {
            decision: check(policy, attempt, max_attempts, decision),
            decided_by: DecidedBy::Worker,
        },
        None => DecisionRecord {
            decision: evaluate(policy, attempt, max_attempts, outcome),
            decided_by: DecidedBy::Broker,
        },
    }
}

/// Runs `dsl::decide` with the job's persisted attempt budget.
fn evaluate(policy: &RetryPolicy, attempt: u32, max_attempts: u32, outcome: &Outcome) -> Decision {
    let policy = RetryPolicy {
        max_attempts,
        ..policy.clone()
    };
    decide(&policy, outcome, attempt, &mut RandomJitter)
}

/// Honours the worker's decision within the budget and the delay cap.
fn check(
    policy: &RetryPolicy,
    attempt: u32,
    max_attempts: u32,
    worker: &WorkerDecision,
) -> Decision {
    if worker.retry && attempt >= max_attempts {
        let message = format!(
            "worker asked to retry after attempt {attempt} but max_attempts is {max_attempts}"
        );
        return Decision::no_retry(Reason::AttemptsExhausted, Some(message));
    }
    if !worker.retry {
        return Decision::no_retry(worker.reason, worker.message.clone());
    }
    let (delay, clamp) = clamp_delay(worker.delay_ms, policy.max_delay);
    Decision {
        retry: true,
        reason: worker.reason,
        raw_delay: millis(worker.raw_delay_ms).min(policy.max_delay),
        jitter_factor: worker.jitter_factor,
        delay,
        message: join(worker.message.clone(), clamp),
    }
}

/// A negative delay becomes zero and one above `max_delay` becomes
/// `max_delay`; the second value says what was clamped.
fn clamp_delay(delay_ms: i64, max_delay: Duration) -> (Duration, Option<String>) {
    if delay_ms < 0 {
        return (
            Duration::ZERO,
            Some(format!("delay {delay_ms}ms clamped to 0ms")),
        );
    }
    let delay = millis(delay_ms);
    if delay > max_delay {
        let message = format!(
            "delay {delay_ms}ms clamped to max_delay {}ms",
            max_delay.as_millis()
        );
        return (max_delay, Some(message));
    }
    (delay, None)
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn join(first: Option<String>, second: Option<String>) -> Option<String> {
    match (first, second) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(retry: bool, delay_ms: i64) -> WorkerDecision {
        WorkerDecision {
            retry,
            reason: Reason::Default,
            delay_ms,
            raw_delay_ms: delay_ms,
            jitter_factor: 1.0,
            message: None,
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_delay: Duration::from_secs(10),
            ..RetryPolicy::defaults()
        }
    }

    #[test]
    fn a_retry_past_the_budget_is_attempts_exhausted() {
        let outcome = Outcome::failure("boom");
        let record = resolve(&policy(), 3, 3, &outcome, Some(&worker(true, 5)));
        assert!(!record.decision.retry);
        assert_eq!(record.decision.reason, Reason::AttemptsExhausted);
        assert_eq!(record.decided_by, DecidedBy::Worker);
    }

    #[test]
    fn delays_are_clamped_into_zero_to_max_delay() {
        let outcome = Outcome::failure("boom");
        let low = resolve(&policy(), 1, 3, &outcome, Some(&worker(true, -5))).decision;
        assert_eq!(low.delay, Duration::ZERO);
        assert!(low.message.unwrap().contains("clamped to 0ms"));
        let high = resolve(&policy(), 1, 3, &outcome, Some(&worker(true, 99_000))).decision;
        assert_eq!(high.delay, Duration::from_secs(10));
        assert!(high.message.unwrap().contains("max_delay 10000ms"));
    }

    #[test]
    fn without_a_worker_decision_the_broker_decides() {
        let outcome = Outcome::failure("boom");
        let record = resolve(&policy(), 1, 3, &outcome, None);
        assert!(record.decision.retry);
        assert_eq!(record.decided_by, DecidedBy::Broker);
    }
}
