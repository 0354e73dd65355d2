//! Workflow progression, decided without I/O: which steps a finished step
//! leads to, and the rendered job each of them becomes.
//!
//! A step with a task type becomes a job. A routing step (no type, such as
//! `start` or `end`) runs nothing: it is passed through inline, its `next`
//! entries followed at once, and it records no events of its own.

use baton_dsl::{Playbook, RetryPolicy, Step, render};
use serde_json::Value;

/// How deep routing steps may chain before the broker calls it a loop.
const MAX_ROUTING_DEPTH: usize = 64;

/// What reaching a step produces.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Planned {
    /// A job to enqueue for the step.
    Job(PlannedJob),
    /// The step cannot start (a template or `when` failed to evaluate).
    Failed {
        /// The step that failed.
        step: String,
        /// Why, with the field path for templates.
        message: String,
    },
}

/// A step's job, ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlannedJob {
    /// The step's name.
    pub(crate) step: String,
    /// The task kind.
    pub(crate) kind: String,
    /// The step's fields, rendered over the context.
    pub(crate) payload: Value,
    /// The step's retry policy.
    pub(crate) retry: RetryPolicy,
}

/// The jobs an execution starts with: `start` reached over `ctx`.
pub(crate) fn start(playbook: &Playbook, ctx: &Value) -> Vec<Planned> {
    let mut planned = Vec::new();
    reach(playbook, "start", ctx, 0, &mut planned);
    planned
}

/// What follows the step `from` once it is done; `ctx` already holds its
/// result under its name.
pub(crate) fn after(playbook: &Playbook, from: &str, ctx: &Value) -> Vec<Planned> {
    let mut planned = Vec::new();
    if let Some(step) = playbook.step(from) {
        follow(playbook, step, ctx, 0, &mut planned);
    }
    planned
}

fn reach(playbook: &Playbook, name: &str, ctx: &Value, depth: usize, out: &mut Vec<Planned>) {
    let Some(step) = playbook.step(name) else {
        return out.push(failed(name, format!("step `{name}` does not exist")));
    };
    if step.kind.is_some() {
        return out.push(job(step, ctx));
    }
    if depth >= MAX_ROUTING_DEPTH {
        let message = format!("routing steps chain deeper than {MAX_ROUTING_DEPTH}: a loop?");
        return out.push(failed(name, message));
    }
    follow(playbook, step, ctx, depth + 1, out);
}

/// Reaches every `next` entry of `step` whose `when` holds.
fn follow(playbook: &Playbook, step: &Step, ctx: &Value, depth: usize, out: &mut Vec<Planned>) {
    for next in &step.next {
        let holds = next
            .when
            .as_ref()
            .map_or(Ok(true), |when| when.is_true(ctx));
        match holds {
            Ok(true) => reach(playbook, &next.step, ctx, depth, out),
            Ok(false) => {}
            Err(message) => out.push(failed(&next.step, format!("evaluating `when`: {message}"))),
        }
    }
}

fn job(step: &Step, ctx: &Value) -> Planned {
    let kind = step.kind.map(|kind| kind.as_str()).unwrap_or_default();
    match render(&Value::Object(step.fields.clone()), ctx) {
        Ok(payload) => Planned::Job(PlannedJob {
            step: step.name.clone(),
            kind: kind.to_owned(),
            payload,
            retry: step.retry.clone(),
        }),
        Err(err) => failed(&step.name, format!("rendering {err}")),
    }
}

fn failed(step: &str, message: String) -> Planned {
    Planned::Failed {
        step: step.to_owned(),
        message,
    }
}
