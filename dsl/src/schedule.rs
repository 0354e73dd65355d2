//! What a policy yields before it runs: the delays it allows after each
//! attempt, with their bounds under jitter (`Policies.Simulate`).

use std::time::Duration;

use crate::retry::RetryPolicy;

/// The retry schedule of a policy, for failures that keep failing.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// One entry per retry: the wait after attempts 1 to `max_attempts - 1`.
    pub entries: Vec<ScheduleEntry>,
    /// The rule that ends the schedule.
    pub end: ScheduleEnd,
}

/// The wait after one attempt, and the time spent waiting so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEntry {
    /// The attempt just ended (1 for the first run).
    pub after_attempt: u32,
    /// The delay without jitter (factor 1.0), capped.
    pub nominal: Duration,
    /// The shortest possible delay (factor 0.5 with jitter).
    pub min: Duration,
    /// The longest possible delay (factor 1.5 with jitter, an exclusive
    /// bound before the cap), capped at `max_delay`.
    pub max: Duration,
    /// Shortest total wait up to and including this delay.
    pub cumulative_min: Duration,
    /// Longest total wait up to and including this delay.
    pub cumulative_max: Duration,
}

/// Why the schedule ends where it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleEnd {
    /// Failures are retried until `max_attempts` runs have been made.
    AttemptsExhausted {
        /// Total runs, the first included.
        max_attempts: u32,
    },
    /// As [`ScheduleEnd::AttemptsExhausted`], but `retry_when` or
    /// `stop_when` decide each attempt and may end it earlier (or retry a
    /// success); `max_attempts` is the latest end.
    Conditional {
        /// Total runs at most, the first included.
        max_attempts: u32,
        /// Whether the policy has a `retry_when`.
        retry_when: bool,
        /// Whether the policy has a `stop_when`.
        stop_when: bool,
    },
}

impl ScheduleEnd {
    /// The snake_case name used on the wire and in output.
    pub fn as_str(&self) -> &'static str {
        match self {
            ScheduleEnd::AttemptsExhausted { .. } => "attempts_exhausted",
            ScheduleEnd::Conditional { .. } => "conditional",
        }
    }

    /// The attempt budget that bounds the schedule in every case.
    pub fn max_attempts(&self) -> u32 {
        match self {
            ScheduleEnd::AttemptsExhausted { max_attempts }
            | ScheduleEnd::Conditional { max_attempts, .. } => *max_attempts,
        }
    }
}

/// The schedule `policy` yields when every attempt fails.
pub fn simulate(policy: &RetryPolicy) -> Schedule {
    let mut entries = Vec::new();
    let (mut total_min, mut total_max) = (Duration::ZERO, Duration::ZERO);
    for attempt in 1..policy.max_attempts {
        let entry = entry(policy, attempt, total_min, total_max);
        (total_min, total_max) = (entry.cumulative_min, entry.cumulative_max);
        entries.push(entry);
    }
    Schedule {
        entries,
        end: end(policy),
    }
}

fn entry(
    policy: &RetryPolicy,
    attempt: u32,
    before_min: Duration,
    before_max: Duration,
) -> ScheduleEntry {
    let nominal = policy.delay(attempt, 1.0);
    let (min, max) = if policy.jitter {
        (policy.delay(attempt, 0.5), policy.delay(attempt, 1.5))
    } else {
        (nominal, nominal)
    };
    ScheduleEntry {
        after_attempt: attempt,
        nominal,
        min,
        max,
        cumulative_min: before_min.saturating_add(min),
        cumulative_max: before_max.saturating_add(max),
    }
}

fn end(policy: &RetryPolicy) -> ScheduleEnd {
    let max_attempts = policy.max_attempts;
    let retry_when = policy.retry_when.is_some();
    let stop_when = policy.stop_when.is_some();
    if retry_when || stop_when {
        ScheduleEnd::Conditional {
            max_attempts,
            retry_when,
            stop_when,
        }
    } else {
        ScheduleEnd::AttemptsExhausted { max_attempts }
    }
}
