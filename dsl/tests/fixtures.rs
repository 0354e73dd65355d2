//! Every playbook under `fixtures/playbooks` parses and validates.

use std::path::Path;

use baton_dsl::{TaskKind, parse_playbook};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/playbooks/retry_test")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn every_fixture_playbook_parses_and_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/playbooks");
    let mut seen = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                if let Err(errors) = parse_playbook(&text) {
                    panic!("{} does not validate:\n{errors}", path.display());
                }
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 4,
        "expected the retry fixtures, found {seen} playbooks"
    );
}

#[test]
fn python_exception_fixture_retries_five_times() {
    let playbook = parse_playbook(&fixture("python_retry_exception.yaml")).unwrap();
    assert_eq!(playbook.path, "tests/retry/python_exception");
    let step = playbook.step("flaky_python").unwrap();
    assert_eq!(step.kind, Some(TaskKind::Python));
    assert_eq!(step.retry.max_attempts, 5);
    assert_eq!(playbook.workload["failure_rate"], 0.7);
}

#[test]
fn http_status_fixture_retries_on_server_errors() {
    let playbook = parse_playbook(&fixture("http_retry_status_code.yaml")).unwrap();
    assert_eq!(playbook.path, "tests/retry/http_status_code");
    let retry = &playbook.step("fetch").unwrap().retry;
    assert_eq!(retry.max_attempts, 3);
    assert_eq!(
        retry.retry_when.as_ref().unwrap().source(),
        "{{ status_code >= 500 }}"
    );
}

#[test]
fn http_stop_fixture_has_both_conditions() {
    let playbook = parse_playbook(&fixture("http_retry_with_stop.yaml")).unwrap();
    assert_eq!(playbook.path, "tests/retry/http_stop_condition");
    let retry = &playbook.step("poll").unwrap().retry;
    assert!(retry.retry_when.is_some() && retry.stop_when.is_some());
}

#[test]
fn retry_forms_fixture_reads_each_form() {
    let playbook = parse_playbook(&fixture("retry_forms.yaml")).unwrap();
    assert_eq!(playbook.step("all_defaults").unwrap().retry.max_attempts, 3);
    assert_eq!(
        playbook.step("four_attempts").unwrap().retry.max_attempts,
        4
    );
    let mapping = &playbook.step("mapping").unwrap().retry;
    assert_eq!(mapping.backoff_multiplier, 3.0);
    assert!(!mapping.jitter);
    assert_eq!(playbook.start().next[0].step, "all_defaults");
}
