//! Checks across steps: unique names, one `start`, an `end`, and `next`
//! targets that exist.

use std::collections::HashMap;

use crate::diag::Diagnostic;
use crate::node::Node;
use crate::step::StepNodes;
use crate::suggest;

/// Adds a diagnostic for every cross-step problem of `steps`.
pub(crate) fn check(workflow: &Node, steps: &[StepNodes<'_>], errors: &mut Vec<Diagnostic>) {
    let names = unique_names(steps, errors);
    require(workflow, &names, "start", errors);
    require(workflow, &names, "end", errors);
    check_targets(steps, &names, errors);
}

/// Maps each name to its first step; reports later duplicates.
fn unique_names<'a>(
    steps: &'a [StepNodes<'a>],
    errors: &mut Vec<Diagnostic>,
) -> HashMap<&'a str, &'a StepNodes<'a>> {
    let mut names: HashMap<&str, &StepNodes<'_>> = HashMap::new();
    for step in steps.iter().filter(|s| !s.step.name.is_empty()) {
        if let Some(first) = names.get(step.step.name.as_str()) {
            let message = format!(
                "duplicate step name `{}`; first defined at {}",
                step.step.name, first.path
            );
            let at = step.node.get("step").unwrap_or(step.node);
            errors.push(at.error(&format!("{}.step", step.path), message));
        } else {
            names.insert(&step.step.name, step);
        }
    }
    names
}

fn require(
    workflow: &Node,
    names: &HashMap<&str, &StepNodes<'_>>,
    name: &str,
    errors: &mut Vec<Diagnostic>,
) {
    if !names.contains_key(name) {
        let message =
            format!("no step named `{name}`; a workflow begins at `start` and finishes at `end`");
        errors.push(workflow.error("workflow", message));
    }
}

fn check_targets(
    steps: &[StepNodes<'_>],
    names: &HashMap<&str, &StepNodes<'_>>,
    errors: &mut Vec<Diagnostic>,
) {
    let known: Vec<&str> = {
        let mut known: Vec<&str> = names.keys().copied().collect();
        known.sort_unstable();
        known
    };
    for step in steps {
        for (next, (node, path)) in step.step.next.iter().zip(&step.targets) {
            if next.step.is_empty() || names.contains_key(next.step.as_str()) {
                continue;
            }
            let hint = suggest::closest(&next.step, &known)
                .map(|close| format!("; did you mean `{close}`?"))
                .unwrap_or_default();
            let message = format!("`next` names unknown step `{}`{hint}", next.step);
            errors.push(node.error(path, message));
        }
    }
}
