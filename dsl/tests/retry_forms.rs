//! The four forms of a retry block, their defaults, and the JSON form.

use std::time::Duration;

use baton_dsl::RetryPolicy;
use serde_json::json;

#[test]
fn absent_or_false_means_one_attempt() {
    assert_eq!(RetryPolicy::default().max_attempts, 1);
    assert_eq!(
        RetryPolicy::from_json(&json!(null)).unwrap(),
        RetryPolicy::default()
    );
    assert_eq!(
        RetryPolicy::from_json(&json!(false)).unwrap(),
        RetryPolicy::default()
    );
    assert_eq!(
        RetryPolicy::from_yaml("false").unwrap(),
        RetryPolicy::default()
    );
}

#[test]
fn true_means_every_default() {
    let policy = RetryPolicy::from_yaml("true").unwrap();
    assert_eq!(policy, RetryPolicy::defaults());
    assert_eq!(policy.max_attempts, 3);
    assert_eq!(policy.initial_delay, Duration::from_secs(1));
    assert_eq!(policy.backoff_multiplier, 2.0);
    assert_eq!(policy.max_delay, Duration::from_secs(60));
    assert!(policy.jitter);
    assert!(policy.retry_when.is_none() && policy.stop_when.is_none());
}

#[test]
fn an_integer_sets_max_attempts_and_keeps_the_other_defaults() {
    let policy = RetryPolicy::from_yaml("5").unwrap();
    let expected = RetryPolicy {
        max_attempts: 5,
        ..RetryPolicy::defaults()
    };
    assert_eq!(policy, expected);
    assert_eq!(RetryPolicy::from_json(&json!(5)).unwrap(), expected);
}

#[test]
fn a_mapping_overrides_only_the_keys_it_names() {
    let policy = RetryPolicy::from_yaml("max_attempts: 4\ninitial_delay: 0.5").unwrap();
    assert_eq!(policy.max_attempts, 4);
    assert_eq!(policy.initial_delay, Duration::from_millis(500));
    assert_eq!(policy.backoff_multiplier, 2.0);
    assert_eq!(policy.max_delay, Duration::from_secs(60));
    assert!(policy.jitter);
}

#[test]
fn each_mapping_key_is_read() {
    let yaml = "max_attempts: 7\ninitial_delay: 2\nbackoff_multiplier: 1.5\nmax_delay: 30.25\n\
                jitter: false\nretry_when: '{{ status_code >= 500 }}'\nstop_when: success\n";
    let policy = RetryPolicy::from_yaml(yaml).unwrap();
    assert_eq!(policy.max_attempts, 7);
    assert_eq!(policy.initial_delay, Duration::from_secs(2));
    assert_eq!(policy.backoff_multiplier, 1.5);
    assert_eq!(policy.max_delay, Duration::from_millis(30_250));
    assert!(!policy.jitter);
    assert_eq!(
        policy.retry_when.unwrap().source(),
        "{{ status_code >= 500 }}"
    );
    assert_eq!(policy.stop_when.unwrap().source(), "success");
}

#[test]
fn delays_keep_the_millisecond_and_round_below_it() {
    let policy = RetryPolicy::from_yaml("initial_delay: 0.0015\nmax_delay: 0.001").unwrap();
    assert_eq!(policy.initial_delay, Duration::from_millis(2));
    assert_eq!(policy.max_delay, Duration::from_millis(1));
}

#[test]
fn initial_delay_above_max_delay_is_allowed_and_capped() {
    let policy = RetryPolicy::from_yaml("initial_delay: 10\nmax_delay: 3\njitter: false").unwrap();
    assert_eq!(policy.delay(1, 1.0), Duration::from_secs(3));
}

#[test]
fn to_json_is_the_canonical_mapping() {
    let value = RetryPolicy::defaults().to_json();
    let expected = json!({
        "max_attempts": 3, "initial_delay": 1.0, "backoff_multiplier": 2.0,
        "max_delay": 60.0, "jitter": true, "retry_when": null, "stop_when": null,
    });
    assert_eq!(value, expected);
}

#[test]
fn to_json_round_trips_through_from_json() {
    let yaml = "max_attempts: 9\ninitial_delay: 0.123\nbackoff_multiplier: 1.1\n\
                max_delay: 7\njitter: false\nretry_when: '{{ error != None }}'\n\
                stop_when: attempt > 4\n";
    let policy = RetryPolicy::from_yaml(yaml).unwrap();
    assert_eq!(RetryPolicy::from_json(&policy.to_json()).unwrap(), policy);
    let default = RetryPolicy::default();
    assert_eq!(RetryPolicy::from_json(&default.to_json()).unwrap(), default);
}

#[test]
fn json_errors_name_the_key_path_without_a_position() {
    let errors = RetryPolicy::from_json(&json!({"max_attempt": 3})).unwrap_err();
    let first = &errors.0[0];
    assert_eq!((first.line, first.column), (0, 0));
    assert_eq!(first.path, "retry.max_attempt");
    assert!(
        first.message.contains("did you mean `max_attempts`"),
        "{}",
        first.message
    );
}

#[test]
fn every_problem_of_a_mapping_is_reported() {
    let errors =
        RetryPolicy::from_yaml("max_attempts: 0\ninitial_delay: -1\njitter: 3").unwrap_err();
    let paths: Vec<&str> = errors.0.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        ["retry.max_attempts", "retry.initial_delay", "retry.jitter"]
    );
}

#[test]
fn absurd_attempt_counts_are_refused_with_the_limit() {
    let errors = RetryPolicy::from_yaml("10001").unwrap_err();
    assert!(errors.0[0].message.contains("at most 10000"), "{errors}");
    assert!(RetryPolicy::from_yaml("10000").is_ok());
}

#[test]
fn delays_beyond_a_year_are_refused() {
    let errors = RetryPolicy::from_yaml("max_delay: 1e12").unwrap_err();
    assert!(errors.0[0].message.contains("one year"), "{errors}");
}

#[test]
fn retry_expressions_may_only_use_the_bound_names() {
    let errors = RetryPolicy::from_yaml("retry_when: '{{ stauts_code >= 500 }}'").unwrap_err();
    assert!(errors.0[0].message.contains("stauts_code"), "{errors}");
}
