//! Rendering task fields: every string in a JSON tree is a Jinja template
//! over the step context (`workload` and earlier steps' results).

use std::fmt;

use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind};

use crate::expr::{describe, environment};

/// A template that failed to render, and where it sits in the tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// Path of the string in the rendered tree, e.g. `headers.Authorization`;
    /// empty for the root.
    pub path: String,
    /// What went wrong, naming the missing variable when one is undefined.
    pub message: String,
}

impl TemplateError {
    /// The same error, its path prefixed with the field it was found in.
    pub(crate) fn within(mut self, field: &str) -> Self {
        self.path = if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{field}.{}", self.path)
        };
        self
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Renders every string in `value` over `ctx`, strictly: a name missing
/// from `ctx` is an error naming it.
///
/// A string that is exactly one `{{ expr }}` yields the expression's own
/// JSON value (a list stays a list, a number a number); any other string
/// yields the rendered text. Strings without template syntax are kept.
pub fn render(
    value: &serde_json::Value,
    ctx: &serde_json::Value,
) -> Result<serde_json::Value, TemplateError> {
    let env = environment();
    render_at(&env, value, ctx, "")
}

/// Checks that `text` compiles as a template; used by validation.
pub fn check_template(text: &str) -> Result<(), String> {
    if !has_template_syntax(text) {
        return Ok(());
    }
    let env = environment();
    env.template_from_str(text)
        .map(drop)
        .map_err(|err| format!("invalid template: {}", describe(&err)))
}

fn render_at(
    env: &Environment<'_>,
    value: &serde_json::Value,
    ctx: &serde_json::Value,
    path: &str,
) -> Result<serde_json::Value, TemplateError> {
    use serde_json::Value;
    match value {
        Value::String(text) => render_string(env, text, ctx, path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| render_at(env, item, ctx, &format!("{path}[{i}]")))
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(key, item)| Ok((key.clone(), render_at(env, item, ctx, &join(path, key))?)))
            .collect::<Result<_, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn render_string(
    env: &Environment<'_>,
    text: &str,
    ctx: &serde_json::Value,
    path: &str,
) -> Result<serde_json::Value, TemplateError> {
    if !has_template_syntax(text) {
        return Ok(serde_json::Value::String(text.to_owned()));
    }
    let fail = |err: minijinja::Error| TemplateError {
        path: path.to_owned(),
        message: explain(env, text, ctx, &err),
    };
    if let Some(expression) = single_expression(text) {
        let value = env
            .compile_expression(expression)
            .and_then(|compiled| compiled.eval(Serde(ctx)))
            .map_err(fail)?;
        let message = if value.is_undefined() {
            undefined(env, text, ctx)
        } else {
            match serde_json::to_value(&value) {
                Ok(json) => return Ok(json),
                Err(err) => format!("result is not JSON: {err}"),
            }
        };
        return Err(TemplateError {
            path: path.to_owned(),
            message,
        });
    }
    env.render_str(text, Serde(ctx))
        .map(serde_json::Value::String)
        .map_err(fail)
}

/// The expression of a string that is one `{{ … }}` and nothing else.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let clean = !inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%");
    clean.then_some(inner.trim_matches('-'))
}

fn has_template_syntax(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// A readable message; for an undefined name, which one is missing.
fn explain(
    env: &Environment<'_>,
    text: &str,
    ctx: &serde_json::Value,
    err: &minijinja::Error,
) -> String {
    if err.kind() == ErrorKind::UndefinedError {
        return undefined(env, text, ctx);
    }
    describe(err)
}

/// Names the first variable of `text` that `ctx` lacks.
fn undefined(env: &Environment<'_>, text: &str, ctx: &serde_json::Value) -> String {
    match first_missing(env, text, ctx) {
        Some(missing) => format!("undefined variable `{missing}`"),
        None => format!("`{text}` is undefined"),
    }
}

/// The first dotted name the template uses that `ctx` cannot resolve.
fn first_missing(env: &Environment<'_>, text: &str, ctx: &serde_json::Value) -> Option<String> {
    let template = env.template_from_str(text).ok()?;
    let mut names: Vec<String> = template.undeclared_variables(true).into_iter().collect();
    names.sort();
    names.into_iter().find(|name| !resolves(ctx, name))
}

fn resolves(ctx: &serde_json::Value, dotted: &str) -> bool {
    dotted
        .split('.')
        .try_fold(ctx, |node, part| node.get(part))
        .is_some()
}
