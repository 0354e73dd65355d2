//! The fields of each task type: what they must hold, and that every
//! template among them compiles.

use crate::diag::Diagnostic;
use crate::node::{Node, Value};
use crate::parse::{join, missing};
use crate::playbook::TaskKind;
use crate::step::type_keys;
use crate::template::check_template;

/// HTTP methods an `http` step may use.
pub(crate) const HTTP_METHODS: &[&str] =
    &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

type Fields = serde_json::Map<String, serde_json::Value>;

/// Fields passed to the worker as written, never rendered as templates:
/// Python source may well contain `{{` or `{%` of its own, and its inputs
/// arrive as arguments instead.
pub(crate) const VERBATIM_FIELDS: &[&str] = &["code"];

/// Checks the type's fields of the step `node` and returns them as JSON.
pub(crate) fn check_fields(
    node: &Node,
    path: &str,
    kind: Option<TaskKind>,
    errors: &mut Vec<Diagnostic>,
) -> Fields {
    let mut fields = Fields::new();
    for key in type_keys(kind) {
        if let Some(value) = node.get(key) {
            if !VERBATIM_FIELDS.contains(key) {
                check_templates(value, &join(path, key), errors);
            }
            fields.insert((*key).to_owned(), value.to_json());
        }
    }
    match kind {
        Some(TaskKind::Python) => check_python(node, path, errors),
        Some(TaskKind::Http) => check_http(node, path, &mut fields, errors),
        Some(TaskKind::Noop) => check_noop(node, path, errors),
        None => {}
    }
    check_shared(node, path, errors);
    fields
}

/// Every string in the subtree must compile as a template.
fn check_templates(node: &Node, path: &str, errors: &mut Vec<Diagnostic>) {
    match &node.value {
        Value::Str(text) => {
            if let Err(message) = check_template(text) {
                errors.push(node.error(path, message));
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                check_templates(item, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries {
                check_templates(value, &join(path, &key.key_text()), errors);
            }
        }
        _ => {}
    }
}

fn check_python(node: &Node, path: &str, errors: &mut Vec<Diagnostic>) {
    let at = join(path, "code");
    match node.get("code") {
        None => errors.push(missing(node, &at, "Python source defining `def main`")),
        Some(code) => match code.as_str() {
            Some(text) if text.contains("def main") => {}
            Some(_) => errors.push(code.error(&at, "the code must define `def main(...)`")),
            None => errors.push(code.error(
                &at,
                format!("expected Python source, found {}", code.kind()),
            )),
        },
    }
}

fn check_http(node: &Node, path: &str, fields: &mut Fields, errors: &mut Vec<Diagnostic>) {
    let (url, endpoint) = (node.get("url"), node.get("endpoint"));
    match (url, endpoint) {
        (None, None) => errors.push(missing(node, &join(path, "url"), "`url` or `endpoint`")),
        (Some(_), Some(second)) => {
            let message = "give `url` or `endpoint`, not both";
            errors.push(second.error(&join(path, "endpoint"), message));
        }
        _ => {}
    }
    for (key, value) in [("url", url), ("endpoint", endpoint)] {
        if let Some(value) = value.filter(|v| v.as_str().is_none()) {
            let message = format!("expected a URL string, found {}", value.kind());
            errors.push(value.error(&join(path, key), message));
        }
    }
    check_method(node, path, fields, errors);
    for key in ["headers", "params"] {
        expect_mapping(node, path, key, errors);
    }
}

/// The method must be a known one (any case); it is stored upper-cased. A
/// templated method is checked when it renders.
fn check_method(node: &Node, path: &str, fields: &mut Fields, errors: &mut Vec<Diagnostic>) {
    let Some(value) = node.get("method") else {
        return;
    };
    let at = join(path, "method");
    let Some(text) = value.as_str() else {
        errors.push(value.error(
            &at,
            format!("expected an HTTP method, found {}", value.kind()),
        ));
        return;
    };
    if text.contains("{{") {
        return;
    }
    let upper = text.to_ascii_uppercase();
    if HTTP_METHODS.contains(&upper.as_str()) {
        fields.insert("method".to_owned(), upper.into());
    } else {
        let message = format!(
            "unknown HTTP method `{text}`; known: {}",
            HTTP_METHODS.join(", ")
        );
        errors.push(value.error(&at, message));
    }
}

fn check_noop(node: &Node, path: &str, errors: &mut Vec<Diagnostic>) {
    if let Some(sleep) = node.get("sleep_ms")
        && !matches!(sleep.value, Value::Int(n) if n >= 0)
    {
        let message = format!(
            "expected how long to run, in milliseconds (an integer >= 0), found {}",
            sleep.kind()
        );
        errors.push(sleep.error(&join(path, "sleep_ms"), message));
    }
    let Some(fail) = node.get("fail") else {
        return;
    };
    let valid = match fail.value {
        Value::Bool(_) => true,
        Value::Int(n) => n >= 0,
        _ => false,
    };
    if !valid {
        let message = format!(
            "expected true, false or how many first attempts fail (an integer >= 0), found {}",
            fail.kind()
        );
        errors.push(fail.error(&join(path, "fail"), message));
    }
}

/// `with` is a mapping and `timeout` a positive number of seconds,
/// whichever type carries them.
fn check_shared(node: &Node, path: &str, errors: &mut Vec<Diagnostic>) {
    expect_mapping(node, path, "with", errors);
    let Some(timeout) = node.get("timeout") else {
        return;
    };
    let positive = match timeout.value {
        Value::Int(n) => n > 0,
        Value::Float(f) => f.is_finite() && f > 0.0,
        _ => false,
    };
    if !positive {
        let message = format!(
            "expected a positive number of seconds, found {}",
            describe(timeout)
        );
        errors.push(timeout.error(&join(path, "timeout"), message));
    }
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Int(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        _ => node.kind().to_owned(),
    }
}

fn expect_mapping(node: &Node, path: &str, key: &str, errors: &mut Vec<Diagnostic>) {
    if let Some(value) = node.get(key)
        && !matches!(value.value, Value::Map(_) | Value::Null)
    {
        let message = format!("expected a mapping, found {}", value.kind());
        errors.push(value.error(&join(path, key), message));
    }
}
