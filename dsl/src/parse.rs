//! Reading a playbook document: the top-level keys, then every step, then
//! the checks across steps (names, `start`/`end`, `next` targets).
//!
//! Every problem is collected, not just the first, each with its line,
//! column and key path, so one registration attempt reports them all.

use crate::diag::{Diagnostic, Diagnostics, Limits};
use crate::node::{Node, Value, parse_yaml};
use crate::playbook::{Playbook, Step};
use crate::step::{StepNodes, read_step};
use crate::suggest;

/// The only `apiVersion` this crate reads.
pub(crate) const API_VERSION: &str = "noetl.io/v1";

const TOP_KEYS: &[&str] = &["apiVersion", "kind", "metadata", "workload", "workflow"];
const METADATA_KEYS: &[&str] = &["name", "path", "description", "version"];

/// Parses and validates a playbook with the default [`Limits`].
pub fn parse_playbook(yaml: &str) -> Result<Playbook, Diagnostics> {
    parse_playbook_with(yaml, &Limits::default())
}

/// Parses and validates a playbook within `limits`, reporting every
/// problem found with its position and key path.
pub fn parse_playbook_with(yaml: &str, limits: &Limits) -> Result<Playbook, Diagnostics> {
    let root = parse_yaml(yaml, limits)?;
    let mut errors = Vec::new();
    let playbook = read_document(&root, &mut errors);
    if errors.is_empty() {
        Ok(playbook)
    } else {
        Err(Diagnostics(errors).sorted())
    }
}

fn read_document(root: &Node, errors: &mut Vec<Diagnostic>) -> Playbook {
    let Some(entries) = root.as_map() else {
        let message = format!("expected a playbook mapping, found {}", root.kind());
        errors.push(root.error("", message));
        return empty_playbook();
    };
    check_keys(entries, "", TOP_KEYS, errors);

    let api_version = fixed_string(root, "apiVersion", API_VERSION, errors);
    let kind = fixed_string(root, "kind", "Playbook", errors);
    let (name, path) = read_metadata(root, errors);
    let workload = read_workload(root, errors);
    let steps = read_workflow(root, errors);
    Playbook {
        api_version,
        kind,
        name,
        path,
        workload,
        steps,
    }
}

fn empty_playbook() -> Playbook {
    Playbook {
        api_version: String::new(),
        kind: String::new(),
        name: String::new(),
        path: String::new(),
        workload: serde_json::Value::Object(serde_json::Map::new()),
        steps: Vec::new(),
    }
}

/// Refuses keys of a mapping that are not in `known`, suggesting the
/// closest one.
pub(crate) fn check_keys(
    entries: &[(Node, Node)],
    path: &str,
    known: &[&str],
    errors: &mut Vec<Diagnostic>,
) {
    for (key, _) in entries {
        let name = key.key_text();
        if !known.contains(&name.as_str()) {
            errors.push(key.error(&join(path, &name), suggest::unknown_key(&name, known)));
        }
    }
}

/// `path.key`, or `key` at the root.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn fixed_string(root: &Node, key: &str, expected: &str, errors: &mut Vec<Diagnostic>) -> String {
    match root.get(key) {
        None => errors.push(missing(root, key, &format!("`{expected}`"))),
        Some(node) if node.as_str() == Some(expected) => {}
        Some(node) => errors.push(node.error(key, format!("expected `{expected}`"))),
    }
    expected.to_owned()
}

/// A diagnostic for a required key absent from `parent`.
pub(crate) fn missing(parent: &Node, key_path: &str, what: &str) -> Diagnostic {
    parent.error(key_path, format!("missing required key; expected {what}"))
}

fn read_metadata(root: &Node, errors: &mut Vec<Diagnostic>) -> (String, String) {
    let Some(metadata) = root.get("metadata") else {
        errors.push(missing(root, "metadata", "a mapping with name and path"));
        return (String::new(), String::new());
    };
    let Some(entries) = metadata.as_map() else {
        let message = format!(
            "expected a mapping with name and path, found {}",
            metadata.kind()
        );
        errors.push(metadata.error("metadata", message));
        return (String::new(), String::new());
    };
    check_keys(entries, "metadata", METADATA_KEYS, errors);
    let name = required_string(metadata, "metadata", "name", errors);
    let path = required_string(metadata, "metadata", "path", errors);
    (name, path)
}

/// A non-empty string under `key`, or a diagnostic.
pub(crate) fn required_string(
    parent: &Node,
    parent_path: &str,
    key: &str,
    errors: &mut Vec<Diagnostic>,
) -> String {
    let at = join(parent_path, key);
    match parent.get(key) {
        None => errors.push(missing(parent, &at, "a non-empty string")),
        Some(node) => match node.as_str() {
            Some(text) if !text.trim().is_empty() => return text.to_owned(),
            _ => errors.push(node.error(
                &at,
                format!("expected a non-empty string, found {}", node.kind()),
            )),
        },
    }
    String::new()
}

fn read_workload(root: &Node, errors: &mut Vec<Diagnostic>) -> serde_json::Value {
    match root.get("workload") {
        None => serde_json::Value::Object(serde_json::Map::new()),
        Some(node) if node.value == Value::Null => {
            serde_json::Value::Object(serde_json::Map::new())
        }
        Some(node) if node.as_map().is_some() => node.to_json(),
        Some(node) => {
            errors.push(node.error(
                "workload",
                format!("expected a mapping, found {}", node.kind()),
            ));
            serde_json::Value::Object(serde_json::Map::new())
        }
    }
}

fn read_workflow(root: &Node, errors: &mut Vec<Diagnostic>) -> Vec<Step> {
    let Some(workflow) = root.get("workflow") else {
        errors.push(missing(root, "workflow", "a list of steps"));
        return Vec::new();
    };
    let Value::Seq(items) = &workflow.value else {
        let message = format!("expected a list of steps, found {}", workflow.kind());
        errors.push(workflow.error("workflow", message));
        return Vec::new();
    };
    let read: Vec<StepNodes<'_>> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| read_step(item, &format!("workflow[{i}]"), errors))
        .collect();
    crate::graph::check(workflow, &read, errors);
    read.into_iter().map(|nodes| nodes.step).collect()
}
