//! The fuzz targets of `fuzz/`, run as property tests on stable Rust so
//! every `cargo test` exercises them.

use baton_dsl::{Expression, Outcome, RetryPolicy, parse_playbook, retry_context};
use proptest::prelude::*;
use serde_json::json;

/// What `fuzz/fuzz_targets/parse_playbook.rs` does with its input.
fn parse_playbook_target(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_playbook(text);
        let _ = RetryPolicy::from_yaml(text);
    }
}

/// What `fuzz/fuzz_targets/evaluate_expression.rs` does with its input.
fn evaluate_expression_target(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(expression) = Expression::parse(text)
    {
        let ctx = retry_context(&Outcome::failure("boom"), 2);
        let _ = expression.is_true(&ctx);
    }
}

const YAML_PIECES: &[&str] = &[
    "apiVersion: noetl.io/v1\n",
    "kind: Playbook\n",
    "workflow:\n",
    "  - step: start\n",
    "    next: [end]\n",
    "    retry: ",
    "&a ",
    "*a ",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "\t",
    "\"",
    "'",
    ".nan",
    "-1",
    "\n",
    "{{ ",
    " }}",
];

fn yaml_noise() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(YAML_PIECES), 0..64)
        .prop_map(|pieces| pieces.concat())
}

const JINJA_NOISE: &str = concat!(
    "(status_code|error|data|result|attempt|none|1|'x'|",
    "\\(|\\)|\\[|\\]| and | or | not |==|>=|<|\\.|\\||range|length| )*",
);

proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        parse_playbook_target(&data);
    }

    #[test]
    fn parsing_arbitrary_strings_never_panics(text in "\\PC*") {
        parse_playbook_target(text.as_bytes());
    }

    #[test]
    fn parsing_yaml_shaped_noise_never_panics(text in yaml_noise()) {
        parse_playbook_target(text.as_bytes());
    }

    #[test]
    fn evaluating_arbitrary_expressions_never_panics(text in "\\PC{0,64}") {
        evaluate_expression_target(text.as_bytes());
    }

    #[test]
    fn evaluating_jinja_shaped_noise_never_panics(
        text in JINJA_NOISE,
    ) {
        evaluate_expression_target(text.as_bytes());
    }
}

#[test]
fn retry_json_of_any_shape_never_panics() {
    for value in [
        json!(-1),
        json!(1.5),
        json!("3"),
        json!([1]),
        json!({"jitter": null}),
        json!(u64::MAX),
    ] {
        assert!(RetryPolicy::from_json(&value).is_err(), "{value}");
    }
}
