//! What each file of `tests/bad_input/playbooks/` must be refused for.
//! The playbook crate's test (`dsl/tests/malformed.rs`), the broker's gRPC
//! test (`broker/tests/bad_input.rs`) and the CLI's
//! (`cli/tests/bad_input.rs`) include this file, so a refusal is expected
//! to read the same whichever way a playbook arrives.

/// The corpus folder (every including crate sits one level below the root).
pub(crate) fn corpus() -> String {
    format!(
        "{}/../tests/bad_input/playbooks",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The expectation for the corpus file `name` (its stem), if it has one.
pub(crate) fn case(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|case| case.0 == name)
}

/// (file, line, column, key path, message substring) of a file's first
/// problem; an empty key path is the document itself.
pub(crate) type Case = (&'static str, usize, usize, &'static str, &'static str);

/// One row per corpus file.
pub(crate) const CASES: &[Case] = &[
    (
        "bad_http_method",
        12,
        13,
        "workflow[1].method",
        "unknown HTTP method `FETCH`",
    ),
    (
        "bad_retry_template",
        12,
        19,
        "workflow[1].retry.retry_when",
        "syntax error",
    ),
    (
        "bad_retry_when",
        12,
        19,
        "workflow[1].retry.retry_when",
        "syntax error",
    ),
    (
        "bad_stop_when_name",
        12,
        18,
        "workflow[1].retry.stop_when",
        "unknown name `stauts_code`",
    ),
    (
        "bad_template",
        11,
        10,
        "workflow[1].url",
        "invalid template",
    ),
    (
        "bad_when",
        10,
        15,
        "workflow[0].next[0].when",
        "syntax error",
    ),
    ("billion_laughs", 6, 8, "", "more than 100000 nodes"),
    ("binary_garbage", 2, 7, "", "control character U+0000"),
    ("deep_nesting", 2, 261, "", "nests deeper than 64 levels"),
    ("duplicate_key", 11, 5, "", "duplicate key `type`"),
    (
        "duplicate_step",
        12,
        11,
        "workflow[2].step",
        "duplicate step name `work`",
    ),
    ("empty", 1, 1, "", "empty document"),
    (
        "http_without_url",
        9,
        5,
        "workflow[1].url",
        "`url` or `endpoint`",
    ),
    (
        "huge_max_delay",
        12,
        18,
        "workflow[1].retry.max_delay",
        "finite number, found inf",
    ),
    (
        "inf_delay",
        12,
        22,
        "workflow[1].retry.initial_delay",
        "finite number, found inf",
    ),
    (
        "inf_max_delay",
        12,
        18,
        "workflow[1].retry.max_delay",
        "finite number, found -inf",
    ),
    ("metadata_is_a_list", 4, 3, "metadata", "expected a mapping"),
    ("missing_end", 7, 3, "workflow", "no step named `end`"),
    ("missing_start", 7, 3, "workflow", "no step named `start`"),
    (
        "nan_delay",
        12,
        18,
        "workflow[1].retry.max_delay",
        "finite number, found NaN",
    ),
    (
        "nan_multiplier",
        12,
        27,
        "workflow[1].retry.backoff_multiplier",
        "found NaN",
    ),
    (
        "negative_delay",
        12,
        22,
        "workflow[1].retry.initial_delay",
        "must not be negative",
    ),
    (
        "negative_jitter",
        12,
        15,
        "workflow[1].retry.jitter",
        "expected true or false",
    ),
    (
        "negative_timeout",
        12,
        14,
        "workflow[1].timeout",
        "positive number of seconds",
    ),
    ("only_comment", 1, 1, "", "empty document"),
    (
        "overflowing_attempts",
        12,
        21,
        "workflow[1].retry.max_attempts",
        "at most 10000",
    ),
    (
        "python_without_code",
        9,
        5,
        "workflow[1].code",
        "defining `def main`",
    ),
    (
        "python_without_main",
        12,
        7,
        "workflow[1].code",
        "must define `def main",
    ),
    (
        "retry_bare_yes",
        11,
        12,
        "workflow[1].retry",
        "`yes` is a string here",
    ),
    (
        "retry_minus_one",
        11,
        12,
        "workflow[1].retry",
        "at least 1, found -1",
    ),
    (
        "retry_yes_string",
        11,
        12,
        "workflow[1].retry",
        "`yes` is a string here",
    ),
    (
        "string_delay",
        12,
        22,
        "workflow[1].retry.initial_delay",
        "found a string",
    ),
    ("tabs", 4, 2, "", "tabs disallowed"),
    ("top_level_typo", 1, 1, "workflow", "missing required key"),
    ("two_documents", 2, 1, "", "only one YAML document"),
    ("unclosed_flow", 3, 11, "", "unclosed bracket"),
    (
        "unknown_next",
        8,
        12,
        "workflow[0].next[0]",
        "unknown step `wrok`",
    ),
    (
        "unknown_retry_key",
        12,
        7,
        "workflow[1].retry.max_attempt",
        "did you mean `max_attempts`?",
    ),
    (
        "unknown_step_key",
        11,
        5,
        "workflow[1].retyr",
        "did you mean `retry`?",
    ),
    ("unknown_top_key", 1, 1, "workflow", "missing required key"),
    (
        "unknown_type",
        10,
        11,
        "workflow[1].type",
        "unknown task type `shell`",
    ),
    ("workflow_is_a_map", 7, 3, "workflow", "found a mapping"),
    (
        "workflow_is_a_number",
        4,
        11,
        "workflow",
        "found an integer",
    ),
    (
        "wrong_api_version",
        1,
        13,
        "apiVersion",
        "expected `noetl.io/v1`",
    ),
    ("wrong_kind", 2, 7, "kind", "expected `Playbook`"),
    (
        "zero_attempts",
        12,
        21,
        "workflow[1].retry.max_attempts",
        "at least 1, found 0",
    ),
    (
        "zero_multiplier",
        12,
        27,
        "workflow[1].retry.backoff_multiplier",
        "greater than 0",
    ),
    (
        "zero_timeout",
        12,
        14,
        "workflow[1].timeout",
        "positive number of seconds",
    ),
];
