//! Malformed playbooks are refused with the right line, key path and
//! message. The documents are the project's bad-input corpus,
//! `tests/bad_input/playbooks/`, held to the same table
//! (`tests/bad_input/cases.rs`) as the broker's and the CLI's refusals.

#[path = "../../tests/bad_input/cases.rs"]
// Each test that includes the table uses part of it.
#[allow(dead_code)]
mod cases;

use baton_dsl::{Diagnostic, Limits, parse_playbook, parse_playbook_with};

use cases::{CASES, corpus};

fn read(name: &str) -> String {
    let path = format!("{}/{name}.yaml", corpus());
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
