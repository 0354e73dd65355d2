//! Reading one step: its common keys, its `next` list, its `retry` block and
//! the fields of its task type.

use crate::diag::Diagnostic;
use crate::expr::Expression;
use crate::fields::check_fields;
use crate::node::{Node, Value};
use crate::parse::{check_keys, join, required_string};
use crate::playbook::{Next, Step, TaskKind};
use crate::retry::RetryPolicy;
use crate::retry_parse::parse_retry;

/// Keys every step may carry, whatever its type.
const COMMON_KEYS: &[&str] = &["step", "desc", "type", "next", "retry"];

/// A step with the nodes the cross-step checks point at.
#[derive(Debug)]
pub(crate) struct StepNodes<'a> {
    pub(crate) step: Step,
    pub(crate) path: String,
    pub(crate) node: &'a Node,
    /// Each `next` entry's target node and key path.
    pub(crate) targets: Vec<(&'a Node, String)>,
}

/// Reads the step at `path`; `None` when it is not a mapping at all.
pub(crate) fn read_step<'a>(
    node: &'a Node,
    path: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<StepNodes<'a>> {
    let Some(entries) = node.as_map() else {
        let message = format!("expected a step mapping, found {}", node.kind());
        errors.push(node.error(path, message));
        return None;
    };
    let name = required_string(node, path, "step", errors);
    let desc = optional_string(node, path, "desc", errors);
    let kind = read_kind(node, path, errors);
    let known: Vec<&str> = COMMON_KEYS.iter().chain(type_keys(kind)).copied().collect();
    check_keys(entries, path, &known, errors);

    let fields = check_fields(node, path, kind, errors);
    let (next, targets) = read_next(node, path, errors);
    let retry = read_retry(node, path, errors);
    let step = Step {
        name,
        desc,
        kind,
        fields,
        next,
        retry,
    };
    Some(StepNodes {
        step,
        path: path.to_owned(),
        node,
        targets,
    })
}

/// The keys a task type adds to the common ones.
pub(crate) fn type_keys(kind: Option<TaskKind>) -> &'static [&'static str] {
    match kind {
        None => &[],
        Some(TaskKind::Python) => &["code", "with", "timeout"],
        Some(TaskKind::Http) => &[
            "method", "url", "endpoint", "headers", "params", "data", "with", "timeout",
        ],
        Some(TaskKind::Noop) => &["fail", "result", "sleep_ms", "with"],
    }
}

fn optional_string(
    node: &Node,
    path: &str,
    key: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<String> {
    let value = node.get(key)?;
    match &value.value {
        Value::Str(text) => Some(text.clone()),
        Value::Null => None,
        _ => {
            let message = format!("expected a string, found {}", value.kind());
            errors.push(value.error(&join(path, key), message));
            None
        }
    }
}

fn read_kind(node: &Node, path: &str, errors: &mut Vec<Diagnostic>) -> Option<TaskKind> {
    let value = node.get("type")?;
    let at = join(path, "type");
    let Some(text) = value.as_str() else {
        let message = format!("expected one of python, http, noop; found {}", value.kind());
        errors.push(value.error(&at, message));
        return None;
    };
    match text.parse() {
        Ok(kind) => Some(kind),
        Err(message) => {
            errors.push(value.error(&at, message));
            None
        }
    }
}

type NextEntries<'a> = (Vec<Next>, Vec<(&'a Node, String)>);

fn read_next<'a>(node: &'a Node, path: &str, errors: &mut Vec<Diagnostic>) -> NextEntries<'a> {
    let (mut next, mut targets) = (Vec::new(), Vec::new());
    let at = join(path, "next");
    let items = match node.get("next").map(|n| (n, &n.value)) {
        None | Some((_, Value::Null)) => return (next, targets),
        Some((_, Value::Seq(items))) => items,
        Some((value, _)) => {
            let message = format!(
                "expected a list of step names or {{step, when}} mappings, found {}",
                value.kind()
            );
            errors.push(value.error(&at, message));
            return (next, targets);
        }
    };
    for (i, item) in items.iter().enumerate() {
        let entry_path = format!("{at}[{i}]");
        if let Some((entry, target)) = read_next_entry(item, &entry_path, errors) {
            next.push(entry);
            targets.push(target);
        }
    }
    (next, targets)
}

fn read_next_entry<'a>(
    item: &'a Node,
    path: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<(Next, (&'a Node, String))> {
    if let Some(name) = item.as_str() {
        let next = Next {
            step: name.to_owned(),
            when: None,
        };
        return Some((next, (item, path.to_owned())));
    }
    let Some(entries) = item.as_map() else {
        let message = format!(
            "expected a step name or {{step, when}}, found {}",
            item.kind()
        );
        errors.push(item.error(path, message));
        return None;
    };
    check_keys(entries, path, &["step", "when"], errors);
    let name = required_string(item, path, "step", errors);
    let when = read_when(item, path, errors);
    let target = item.get("step").unwrap_or(item);
    Some((Next { step: name, when }, (target, join(path, "step"))))
}

fn read_when(item: &Node, path: &str, errors: &mut Vec<Diagnostic>) -> Option<Expression> {
    let value = item.get("when")?;
    let at = join(path, "when");
    let Some(source) = value.as_str() else {
        let message = format!("expected an expression string, found {}", value.kind());
        errors.push(value.error(&at, message));
        return None;
    };
    Expression::parse(source)
        .map_err(|message| errors.push(value.error(&at, message)))
        .ok()
}

fn read_retry(node: &Node, path: &str, errors: &mut Vec<Diagnostic>) -> RetryPolicy {
    let Some(value) = node.get("retry") else {
        return RetryPolicy::default();
    };
    parse_retry(value, &join(path, "retry")).unwrap_or_else(|found| {
        errors.extend(found);
        RetryPolicy::default()
    })
}
