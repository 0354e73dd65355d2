//! Retry expressions: the names they see, how none compares, sandboxing.

use baton_dsl::{Expression, Outcome, retry_context};
use serde_json::json;

fn holds(source: &str, outcome: &Outcome) -> bool {
    let ctx = retry_context(outcome, 1);
    Expression::parse(source).unwrap().is_true(&ctx).unwrap()
}

#[test]
fn braces_are_optional() {
    let ok = Outcome::success(json!(1));
    assert!(holds("{{ success }}", &ok));
    assert!(holds("success", &ok));
    assert!(holds("{{- success -}}", &ok));
}

#[test]
fn error_is_none_after_a_success_and_set_after_a_failure() {
    assert!(!holds("error != None", &Outcome::success(json!({}))));
    assert!(holds("error != None", &Outcome::failure("boom")));
    assert!(holds("error is none", &Outcome::success(json!({}))));
}

#[test]
fn a_missing_status_code_is_below_every_number_and_never_raises() {
    let outcome = Outcome::failure("timeout");
    assert!(!holds("status_code >= 500", &outcome));
    assert!(holds("status_code < 500", &outcome));
    assert!(!holds("status_code == 500", &outcome));
    assert!(holds("status_code == None", &outcome));
    assert!(!holds(
        "status_code is not none and status_code >= 500",
        &outcome
    ));
}

#[test]
fn every_name_is_bound_after_any_outcome() {
    for outcome in [Outcome::success(json!(null)), Outcome::failure("x")] {
        let ctx = retry_context(&outcome, 2);
        for name in [
            "result",
            "data",
            "status_code",
            "error",
            "success",
            "attempt",
        ] {
            assert!(ctx.get(name).is_some(), "{name} unbound");
        }
        assert_eq!(ctx["attempt"], 2);
    }
}

#[test]
fn data_is_the_results_data_when_present_else_the_result() {
    let with = retry_context(&Outcome::success(json!({"data": {"n": 1}})), 1);
    assert_eq!(with["data"], json!({"n": 1}));
    let without = retry_context(&Outcome::success(json!([1, 2])), 1);
    assert_eq!(without["data"], json!([1, 2]));
}

#[test]
fn or_is_tested_for_truth_not_returned_as_an_operand() {
    let outcome = Outcome {
        status_code: Some(200),
        ..Outcome::success(json!({}))
    };
    assert!(!holds("error or status_code >= 500", &outcome));
}

#[test]
fn an_unknown_name_is_an_error_naming_it() {
    let error = Expression::parse("nope == 1")
        .unwrap()
        .is_true(&json!({}))
        .unwrap_err();
    assert!(error.contains("nope"), "{error}");
}

#[test]
fn a_syntax_error_is_refused_at_parse() {
    assert!(Expression::parse("{{ status_code >= }}").is_err());
    assert!(Expression::parse("{{ }}").is_err());
    assert!(Expression::parse("").is_err());
}

#[test]
fn a_runaway_expression_runs_out_of_fuel() {
    let source = "range(100000) | map('string') | join | length > 0";
    let result = Expression::parse(source).unwrap().is_true(&json!({}));
    assert!(result.is_err(), "{result:?}");
}

#[test]
fn the_source_is_kept_as_written() {
    assert_eq!(
        Expression::parse(" {{ a }} ").unwrap().source(),
        " {{ a }} "
    );
}
