//! Rendering task fields over the step context.

use baton_dsl::{check_template, render};
use serde_json::json;

fn ctx() -> serde_json::Value {
    json!({
        "workload": {"base_url": "http://h", "ids": [1, 2], "n": 3},
        "fetch": {"data": {"y": "why", "count": 7}},
    })
}

#[test]
fn a_lone_expression_keeps_its_json_type() {
    let out = render(
        &json!({"ids": "{{ workload.ids }}", "n": "{{ workload.n }}"}),
        &ctx(),
    )
    .unwrap();
    assert_eq!(out, json!({"ids": [1, 2], "n": 3}));
}

#[test]
fn mixed_text_renders_to_a_string() {
    let out = render(&json!("{{ workload.base_url }}/flaky"), &ctx()).unwrap();
    assert_eq!(out, json!("http://h/flaky"));
}

#[test]
fn earlier_step_results_are_reachable_by_name() {
    let out = render(
        &json!(["{{ fetch.data.y }}", "{{ fetch.data.count + 1 }}"]),
        &ctx(),
    )
    .unwrap();
    assert_eq!(out, json!(["why", 8]));
}

#[test]
fn plain_values_pass_through_untouched() {
    let value = json!({"a": 1, "b": [true, null], "c": "no template here"});
    assert_eq!(render(&value, &ctx()).unwrap(), value);
}

#[test]
fn a_missing_name_is_an_error_naming_it_and_its_path() {
    let error = render(
        &json!({"headers": {"x": "id {{ workload.missing }}"}}),
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(error.path, "headers.x");
    assert!(error.message.contains("workload.missing"), "{error}");
    let error = render(&json!("{{ nowhere }}"), &ctx()).unwrap_err();
    assert!(error.message.contains("nowhere"), "{error}");
}

#[test]
fn check_template_refuses_what_does_not_compile() {
    assert!(check_template("{{ a }").is_err());
    assert!(check_template("{% if %}").is_err());
    assert!(check_template("{{ a }} and {{ b }}").is_ok());
    assert!(check_template("plain").is_ok());
}

#[test]
fn step_fields_render_except_python_code_which_stays_verbatim() {
    let yaml = r#"
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: t, path: t/verbatim}
workload: {name: ada}
workflow:
  - step: start
    type: python
    with: {who: "{{ workload.name }}"}
    code: |
      def main(who):
          return {"{{": who}
    next: [end]
  - step: end
"#;
    let playbook = baton_dsl::parse_playbook(yaml).expect("valid playbook");
    let ctx = serde_json::json!({"workload": {"name": "ada"}});
    let fields = playbook.start().render_fields(&ctx).expect("renders");
    assert_eq!(fields["with"]["who"], "ada");
    assert!(fields["code"].as_str().unwrap().contains(r#"{"{{": who}"#));
}

#[test]
fn a_missing_name_in_a_step_field_names_the_field_and_the_name() {
    let yaml = r#"
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: t, path: t/missing}
workflow:
  - step: start
    type: http
    url: "{{ workload.base }}/x"
    next: [end]
  - step: end
"#;
    let playbook = baton_dsl::parse_playbook(yaml).expect("valid playbook");
    let err = playbook
        .start()
        .render_fields(&serde_json::json!({"workload": {}}))
        .unwrap_err();
    assert!(err.path.starts_with("url"), "{err}");
    assert!(err.message.contains("base"), "{err}");
}
