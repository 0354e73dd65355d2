//! Malformed playbooks are refused with the right line, key path and
//! message. The documents live in `tests/malformed/`.

use baton_dsl::{Diagnostic, Limits, parse_playbook, parse_playbook_with};

/// (file, line, column, key path, message substring) of the first diagnostic.
const CASES: &[(&str, usize, usize, &str, &str)] = &[
    (
        "unknown_retry_key",
        12,
        7,
        "workflow[1].retry.max_attempt",
        "did you mean `max_attempts`?",
    ),
    (
        "negative_delay",
        12,
        22,
        "workflow[1].retry.initial_delay",
        "must not be negative",
    ),
    (
        "zero_multiplier",
        12,
        27,
        "workflow[1].retry.backoff_multiplier",
        "greater than 0",
    ),
    (
        "nan_delay",
        12,
        18,
        "workflow[1].retry.max_delay",
        "finite number, found NaN",
    ),
    (
        "inf_delay",
        12,
        22,
        "workflow[1].retry.initial_delay",
        "finite number, found inf",
    ),
    (
        "overflowing_attempts",
        12,
        21,
        "workflow[1].retry.max_attempts",
        "at most 10000",
    ),
    (
        "zero_attempts",
        12,
        21,
        "workflow[1].retry.max_attempts",
        "at least 1, found 0",
    ),
    (
        "string_delay",
        12,
        22,
        "workflow[1].retry.initial_delay",
        "number of seconds, found a string",
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
    (
        "duplicate_step",
        12,
        11,
        "workflow[2].step",
        "duplicate step name `work`",
    ),
    ("duplicate_key", 11, 5, "", "duplicate key `type`"),
    ("missing_start", 7, 3, "workflow", "no step named `start`"),
    ("missing_end", 7, 3, "workflow", "no step named `end`"),
    (
        "unknown_next",
        8,
        12,
        "workflow[0].next[0]",
        "unknown step `wrok`; did you mean `work`?",
    ),
    ("tabs", 4, 2, "", "tabs disallowed"),
    ("billion_laughs", 6, 8, "", "more than 100000 nodes"),
    ("deep_nesting", 2, 261, "", "nests deeper than 64 levels"),
    ("binary_garbage", 2, 7, "", "control character U+0000"),
    ("empty", 1, 1, "", "empty document"),
    (
        "workflow_is_a_map",
        7,
        3,
        "workflow",
        "expected a list of steps, found a mapping",
    ),
    ("metadata_is_a_list", 4, 3, "metadata", "expected a mapping"),
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
        "retry_bare_yes",
        11,
        12,
        "workflow[1].retry",
        "`yes` is a string here",
    ),
    (
        "http_without_url",
        9,
        5,
        "workflow[1].url",
        "`url` or `endpoint`",
    ),
    (
        "bad_http_method",
        12,
        13,
        "workflow[1].method",
        "unknown HTTP method `FETCH`",
    ),
    (
        "zero_timeout",
        12,
        14,
        "workflow[1].timeout",
        "positive number of seconds",
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
        "unknown_type",
        10,
        11,
        "workflow[1].type",
        "unknown task type `shell`",
    ),
    (
        "unknown_step_key",
        11,
        5,
        "workflow[1].retyr",
        "did you mean `retry`?",
    ),
    (
        "wrong_api_version",
        1,
        13,
        "apiVersion",
        "expected `noetl.io/v1`",
    ),
    ("two_documents", 2, 1, "", "only one YAML document"),
    ("unclosed_flow", 3, 11, "", "unclosed bracket"),
    ("top_level_typo", 1, 1, "workflow", "missing required key"),
];

fn read(name: &str) -> String {
    let path = format!("{}/tests/malformed/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn first_error(name: &str, text: &str) -> Diagnostic {
    match parse_playbook(text) {
        Ok(_) => panic!("{name}: accepted a malformed playbook"),
        Err(errors) => errors
            .0
            .into_iter()
            .next()
            .expect("at least one diagnostic"),
    }
}

#[test]
fn each_malformed_document_is_refused_at_the_right_place() {
    for &(name, line, column, path, message) in CASES {
        let found = first_error(name, &read(name));
        assert_eq!(
            (found.line, found.column),
            (line, column),
            "{name}: {found}"
        );
        assert_eq!(found.path, path, "{name}: {found}");
        assert!(found.message.contains(message), "{name}: {found}");
    }
}

#[test]
fn every_file_in_the_folder_has_a_table_row() {
    let dir = format!("{}/tests/malformed", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        assert!(
            CASES.iter().any(|case| case.0 == stem),
            "{stem} has no expectation"
        );
    }
}

#[test]
fn a_document_over_the_size_limit_is_refused_before_parsing() {
    let text = format!("workload:\n  big: \"{}\"\n", "x".repeat(1024 * 1024));
    let found = first_error("oversize", &text);
    assert!(
        found
            .message
            .contains("more than the limit of 1048576 bytes"),
        "{found}"
    );
}

#[test]
fn a_document_with_too_many_aliases_is_refused() {
    let limits = Limits {
        max_aliases: 3,
        ..Limits::default()
    };
    let text = "a: &a 1\nb: [*a, *a, *a, *a, *a]\n";
    let found = parse_playbook_with(text, &limits).unwrap_err().0.remove(0);
    assert!(found.message.contains("more than 3 aliases"), "{found}");
}

#[test]
fn every_error_of_a_document_is_reported_in_order() {
    let text = concat!(
        "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: x, path: y}\n",
        "workflow:\n  - step: start\n    next: [nowhere]\n    retry: {jitter: 1}\n",
        "  - step: start\n",
    );
    let errors = parse_playbook(text).unwrap_err();
    let lines: Vec<usize> = errors.0.iter().map(|d| d.line).collect();
    assert!(errors.0.len() >= 4, "{errors}");
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{errors}");
}

#[test]
fn yaml_1_1_booleans_stay_strings() {
    let text = "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: x, path: y}\n\
                workload: {flag: NO}\nworkflow:\n  - step: start\n    next: [end]\n  - step: end\n";
    let playbook = parse_playbook(text).unwrap();
    assert_eq!(playbook.workload["flag"], "NO");
}

#[test]
fn diagnostics_display_one_line_per_problem() {
    let errors = parse_playbook(&read("top_level_typo")).unwrap_err();
    let shown = errors.to_string();
    assert_eq!(shown.lines().count(), errors.0.len());
    assert!(
        shown.starts_with("1:1: workflow: missing required key"),
        "{shown}"
    );
}
