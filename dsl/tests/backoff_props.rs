//! Property tests of the backoff arithmetic and the simulated schedule.

use std::time::Duration;

use baton_dsl::{RetryPolicy, ScheduleEnd, simulate};
use proptest::prelude::*;

fn policy() -> impl Strategy<Value = RetryPolicy> {
    (
        1u32..50,
        0u64..100_000,
        0.01f64..50.0,
        0u64..100_000_000,
        any::<bool>(),
    )
        .prop_map(
            |(max_attempts, initial_ms, multiplier, max_ms, jitter)| RetryPolicy {
                max_attempts,
                initial_delay: Duration::from_millis(initial_ms),
                backoff_multiplier: multiplier,
                max_delay: Duration::from_millis(max_ms),
                jitter,
                ..RetryPolicy::defaults()
            },
        )
}

proptest! {
    #[test]
    fn a_delay_never_exceeds_max_delay(
        p in policy(), attempt in any::<u32>(), factor in 0.5f64..1.5,
    ) {
        prop_assert!(p.delay(attempt, factor) <= p.max_delay);
    }

    #[test]
    fn any_factor_at_all_never_panics(
        p in policy(), attempt in any::<u32>(), factor in any::<f64>(),
    ) {
        prop_assert!(p.delay(attempt, factor) <= p.max_delay);
    }

    #[test]
    fn without_jitter_delays_grow_with_the_attempt(p in policy(), attempt in 1u32..1000) {
        prop_assume!(p.backoff_multiplier >= 1.0);
        prop_assert!(p.delay(attempt, 1.0) <= p.delay(attempt + 1, 1.0));
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half_of_nominal(
        p in policy(), attempt in 1u32..60, factor in 0.5f64..1.5,
    ) {
        let nominal = p.delay(attempt, 1.0).as_secs_f64();
        let jittered = p.delay(attempt, factor).as_secs_f64();
        let cap = p.max_delay.as_secs_f64();
        // One millisecond of slack for rounding on each side.
        prop_assert!(jittered + 0.001 >= (nominal * 0.5).min(cap));
        prop_assert!(jittered <= (nominal * 1.5).min(cap) + 0.001);
    }

    #[test]
    fn a_schedule_has_one_entry_per_retry_and_sums_its_bounds(p in policy()) {
        let schedule = simulate(&p);
        prop_assert_eq!(schedule.entries.len(), p.max_attempts as usize - 1);
        prop_assert_eq!(schedule.end.max_attempts(), p.max_attempts);
        let mut total = Duration::ZERO;
        for entry in &schedule.entries {
            prop_assert!(entry.min <= entry.nominal && entry.nominal <= entry.max);
            prop_assert!(entry.max <= p.max_delay);
            total += entry.max;
            prop_assert_eq!(entry.cumulative_max, total);
        }
    }
}

#[test]
fn the_documented_formula_gives_the_textbook_sequence() {
    let policy = RetryPolicy {
        jitter: false,
        max_attempts: 8,
        ..RetryPolicy::defaults()
    };
    let delays: Vec<u64> = (1..8).map(|n| policy.delay(n, 1.0).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60]);
}

#[test]
fn delays_are_kept_to_the_millisecond() {
    let policy = RetryPolicy::from_yaml("initial_delay: 0.2\nbackoff_multiplier: 1.5").unwrap();
    assert_eq!(policy.delay(2, 1.0), Duration::from_millis(300));
    assert_eq!(policy.delay(3, 1.0), Duration::from_millis(450));
    assert_eq!(policy.delay(1, 0.5), Duration::from_millis(100));
}

#[test]
fn huge_attempts_saturate_at_max_delay() {
    let policy = RetryPolicy::from_yaml("backoff_multiplier: 1000").unwrap();
    assert_eq!(policy.delay(u32::MAX, 1.0), Duration::from_secs(60));
}

#[test]
fn simulate_names_the_rule_that_ends_it() {
    let plain = simulate(&RetryPolicy::defaults());
    assert_eq!(
        plain.end,
        ScheduleEnd::AttemptsExhausted { max_attempts: 3 }
    );
    assert_eq!(plain.end.as_str(), "attempts_exhausted");
    let conditional = simulate(&RetryPolicy::from_yaml("stop_when: success").unwrap());
    assert_eq!(conditional.end.as_str(), "conditional");
    assert!(simulate(&RetryPolicy::default()).entries.is_empty());
}

#[test]
fn simulate_gives_jitter_bounds_and_cumulative_time() {
    let schedule = simulate(&RetryPolicy::defaults());
    let first = &schedule.entries[0];
    assert_eq!(first.after_attempt, 1);
    assert_eq!(
        (first.min, first.nominal, first.max),
        (
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_millis(1500),
        )
    );
    let second = &schedule.entries[1];
    assert_eq!(second.cumulative_min, Duration::from_millis(1500));
    assert_eq!(second.cumulative_max, Duration::from_millis(4500));
}
