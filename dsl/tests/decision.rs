//! The decision order of DESIGN §4, one table row per case.

use std::time::Duration;

use baton_dsl::{FixedJitter, Outcome, Reason, RetryPolicy, decide};
use serde_json::json;

fn policy(yaml: &str) -> RetryPolicy {
    RetryPolicy::from_yaml(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn http(status: u16) -> Outcome {
    Outcome {
        success: (200..300).contains(&status),
        result: json!({"status_code": status, "data": {"state": "pending"}}),
        status_code: Some(status),
        error: (status >= 300).then(|| format!("HTTP {status}")),
    }
}

struct Row {
    name: &'static str,
    policy: &'static str,
    outcome: Outcome,
    attempt: u32,
    retry: bool,
    reason: Reason,
}

fn rows() -> Vec<Row> {
    let failed = Outcome::failure("boom");
    let ok = Outcome::success(json!({"data": {"state": "pending"}}));
    let row = |name, policy, outcome: &Outcome, attempt, retry, reason| Row {
        name,
        policy,
        outcome: outcome.clone(),
        attempt,
        retry,
        reason,
    };
    vec![
        row(
            "last attempt failed",
            "3",
            &failed,
            3,
            false,
            Reason::AttemptsExhausted,
        ),
        row(
            "beyond the last attempt",
            "3",
            &failed,
            9,
            false,
            Reason::AttemptsExhausted,
        ),
        row(
            "exhausted beats retry_when on success",
            "max_attempts: 2\nretry_when: 'true'",
            &ok,
            2,
            false,
            Reason::AttemptsExhausted,
        ),
        row(
            "one attempt by default",
            "false",
            &failed,
            1,
            false,
            Reason::AttemptsExhausted,
        ),
        row(
            "stop_when holds on failure",
            "stop_when: error == 'boom'",
            &failed,
            1,
            false,
            Reason::StopWhen,
        ),
        row(
            "stop_when wins over retry_when",
            "retry_when: 'true'\nstop_when: 'true'",
            &failed,
            1,
            false,
            Reason::StopWhen,
        ),
        row(
            "stop_when on 200 with retry_when != 200",
            "retry_when: status_code != 200\nstop_when: status_code == 200",
            &http(200),
            1,
            false,
            Reason::StopWhen,
        ),
        row(
            "retry_when holds on failure",
            "retry_when: status_code >= 500",
            &http(503),
            1,
            true,
            Reason::RetryWhen,
        ),
        row(
            "retry_when holds on success: polling",
            "retry_when: data.state == 'pending'",
            &ok,
            1,
            true,
            Reason::RetryWhen,
        ),
        row(
            "retry_when false makes failure final",
            "retry_when: status_code >= 500",
            &http(404),
            1,
            false,
            Reason::RetryWhenFalse,
        ),
        row(
            "retry_when false completes success",
            "retry_when: error != None",
            &ok,
            1,
            false,
            Reason::RetryWhenFalse,
        ),
        row(
            "default retries failure",
            "true",
            &failed,
            1,
            true,
            Reason::Default,
        ),
        row(
            "default completes success",
            "true",
            &ok,
            1,
            false,
            Reason::Default,
        ),
        row(
            "default ignores 5xx specialness",
            "true",
            &http(500),
            2,
            true,
            Reason::Default,
        ),
        row(
            "failing stop_when is final",
            "stop_when: result.missing == 1",
            &failed,
            1,
            false,
            Reason::ExpressionError,
        ),
        row(
            "failing retry_when is final",
            "retry_when: data.nothing.deeper",
            &ok,
            1,
            false,
            Reason::ExpressionError,
        ),
    ]
}

#[test]
fn each_row_of_the_decision_order_decides_as_designed() {
    for row in rows() {
        let decision = decide(
            &policy(row.policy),
            &row.outcome,
            row.attempt,
            &mut FixedJitter(1.0),
        );
        assert_eq!(decision.retry, row.retry, "{}", row.name);
        assert_eq!(decision.reason, row.reason, "{}", row.name);
        if !decision.retry {
            assert_eq!(decision.delay, Duration::ZERO, "{}", row.name);
            assert_eq!(decision.raw_delay, Duration::ZERO, "{}", row.name);
            assert_eq!(decision.jitter_factor, 1.0, "{}", row.name);
        }
    }
}

#[test]
fn an_expression_error_keeps_its_message() {
    let decision = decide(
        &policy("retry_when: result.x > 1"),
        &Outcome::failure("e"),
        1,
        &mut FixedJitter(1.0),
    );
    assert_eq!(decision.reason, Reason::ExpressionError);
    assert!(decision.message.unwrap().contains("result.x"));
}

#[test]
fn a_retry_carries_raw_delay_factor_and_final_delay() {
    let decision = decide(
        &policy("initial_delay: 2\nmax_delay: 60"),
        &Outcome::failure("e"),
        2,
        &mut FixedJitter(0.75),
    );
    assert!(decision.retry);
    assert_eq!(decision.raw_delay, Duration::from_secs(4));
    assert_eq!(decision.jitter_factor, 0.75);
    assert_eq!(decision.delay, Duration::from_secs(3));
}

#[test]
fn without_jitter_the_factor_is_one_whatever_the_source() {
    let decision = decide(
        &policy("jitter: false"),
        &Outcome::failure("e"),
        1,
        &mut FixedJitter(1.4),
    );
    assert_eq!(decision.jitter_factor, 1.0);
    assert_eq!(decision.delay, Duration::from_secs(1));
}

#[test]
fn a_misbehaving_jitter_source_is_clamped() {
    let decision = decide(
        &RetryPolicy::defaults(),
        &Outcome::failure("e"),
        1,
        &mut FixedJitter(9.0),
    );
    assert_eq!(decision.jitter_factor, 1.5);
}

#[test]
fn reasons_round_trip_through_their_names() {
    let names: Vec<&str> = Reason::all().iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "attempts_exhausted",
            "stop_when",
            "retry_when",
            "retry_when_false",
            "default",
            "expression_error"
        ]
    );
    for reason in Reason::all() {
        assert_eq!(reason.as_str().parse::<Reason>().unwrap(), *reason);
    }
    assert!("retry".parse::<Reason>().is_err());
}

#[test]
fn random_jitter_stays_in_its_range() {
    use baton_dsl::{JitterSource, RandomJitter};
    let mut source = RandomJitter;
    for _ in 0..1000 {
        let factor = source.factor();
        assert!((0.5..1.5).contains(&factor), "{factor}");
    }
}
