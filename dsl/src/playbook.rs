//! The typed form of a playbook: its metadata, workload and steps.

use std::fmt;
use std::str::FromStr;

use crate::expr::Expression;
use crate::fields::VERBATIM_FIELDS;
use crate::retry::RetryPolicy;
use crate::template::{TemplateError, render};

/// A parsed and validated playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    /// `apiVersion`; always `noetl.io/v1` once validated.
    pub api_version: String,
    /// `kind`; always `Playbook` once validated.
    pub kind: String,
    /// `metadata.name`: the human name.
    pub name: String,
    /// `metadata.path`: the catalog path executions refer to.
    pub path: String,
    /// `workload`: default inputs, always a JSON object (`{}` when absent).
    pub workload: serde_json::Value,
    /// `workflow`: the steps, in document order.
    pub steps: Vec<Step>,
}

impl Playbook {
    /// The step called `name`, if any.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.name == name)
    }

    /// The `start` step, where every execution begins.
    ///
    /// # Panics
    ///
    /// Never on a playbook from [`crate::parse_playbook`], which refuses a
    /// document without exactly one `start` step; only on a hand-built
    /// `Playbook` that breaks that invariant.
    pub fn start(&self) -> &Step {
        self.step("start")
            .expect("a validated playbook always has a start step")
    }
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `step`: the unique name other steps' `next` refer to.
    pub name: String,
    /// `desc`: a free-text description.
    pub desc: Option<String>,
    /// `type`: the task to run; `None` for a routing step such as `start`
    /// or `end` that runs nothing and only moves on.
    pub kind: Option<TaskKind>,
    /// The type's own fields (`code`, `url`, `method`, `headers`, …), as
    /// written: templates are not rendered yet.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// `next`: where to go after this step; every entry whose `when` holds.
    pub next: Vec<Next>,
    /// `retry`: when and how often to run the task again.
    pub retry: RetryPolicy,
}

impl Step {
    /// The task fields as the worker receives them: every template rendered
    /// over `ctx` (`workload` and earlier steps' results by name), strictly,
    /// except the verbatim fields such as python `code`.
    pub fn render_fields(
        &self,
        ctx: &serde_json::Value,
    ) -> Result<serde_json::Map<String, serde_json::Value>, TemplateError> {
        let mut rendered = serde_json::Map::with_capacity(self.fields.len());
        for (key, value) in &self.fields {
            let value = if VERBATIM_FIELDS.contains(&key.as_str()) {
                value.clone()
            } else {
                render(value, ctx).map_err(|e| e.within(key))?
            };
            rendered.insert(key.clone(), value);
        }
        Ok(rendered)
    }
}

/// One transition out of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Next {
    /// The step to enqueue.
    pub step: String,
    /// The condition, over the template context; `None` means always.
    pub when: Option<Expression>,
}

/// The kinds of task a step can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Python `code` defining `main`, run in a CPython process.
    Python,
    /// An HTTP request to `url` or `endpoint`.
    Http,
    /// Does nothing, or fails on purpose (`fail`); for tests and wiring.
    Noop,
}

impl TaskKind {
    /// Every kind, in declaration order.
    pub fn all() -> &'static [TaskKind] {
        &[TaskKind::Python, TaskKind::Http, TaskKind::Noop]
    }

    /// The name used in YAML and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Python => "python",
            TaskKind::Http => "http",
            TaskKind::Noop => "noop",
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskKind::all()
            .iter()
            .copied()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown task type `{s}`; known types: python, http, noop"))
    }
}
