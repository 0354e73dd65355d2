//! Jinja expressions (`retry_when`, `stop_when`, `when`), evaluated in a
//! sandboxed, fuel-bounded environment.
//!
//! Expressions are compiled with minijinja's `compile_expression` and tested
//! with `Value::is_true`, never rendered to text: rendering prints
//! `True`/`False`, and `a or b` returns an operand, not a boolean.

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};

use crate::decide::Outcome;

/// The names a retry expression sees; every one is always bound.
pub(crate) const RETRY_NAMES: &[&str] = &[
    "result",
    "data",
    "status_code",
    "error",
    "success",
    "attempt",
];

/// Instruction budget for one evaluation, so no expression (or template)
/// can loop for long: generous for any real condition, small enough that a
/// runaway `range` is stopped within milliseconds.
const FUEL: u64 = 50_000;

/// Deepest nesting of calls and structures during evaluation.
const RECURSION_LIMIT: usize = 64;

/// A fresh sandboxed environment: strict undefined, bounded fuel and
/// recursion, and no loader, so nothing can reach the filesystem or another
/// template. Built per use because minijinja ties compiled sources to the
/// environment's lifetime; building one costs microseconds.
pub(crate) fn environment<'s>() -> Environment<'s> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env
}

/// A compiled-once, checked Jinja expression, kept as its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    source: String,
}

impl Expression {
    /// Checks `source` compiles as an expression. One outer pair of `{{ }}`
    /// is optional and stripped.
    pub fn parse(source: &str) -> Result<Expression, String> {
        let body = strip_braces(source);
        if body.trim().is_empty() {
            return Err("expression is empty".to_owned());
        }
        environment()
            .compile_expression(body)
            .map(drop)
            .map_err(|err| format!("invalid expression `{source}`: {}", describe(&err)))?;
        Ok(Expression {
            source: source.to_owned(),
        })
    }

    /// The expression as written, braces included if they were.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression over `ctx` (a JSON object of names) and
    /// tests the result's truthiness. Errors (an unknown name, a type error,
    /// fuel exhausted) come back as a message.
    pub fn is_true(&self, ctx: &serde_json::Value) -> Result<bool, String> {
        let env = environment();
        let compiled = env
            .compile_expression(strip_braces(&self.source))
            .map_err(|err| describe(&err))?;
        let value = compiled
            .eval(minijinja::Value::from(Serde(ctx)))
            .map_err(|err| format!("evaluating `{}`: {}", self.source, describe(&err)))?;
        if value.is_undefined() {
            return Err(format!("`{}` is undefined", self.source));
        }
        Ok(value.is_true())
    }

    /// The free names of the expression that are neither in `known` nor
    /// environment globals (`range`, `namespace`, …), sorted.
    pub(crate) fn unknown_names(&self, known: &[&str]) -> Vec<String> {
        let env = environment();
        let Ok(compiled) = env.compile_expression(strip_braces(&self.source)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = compiled
            .undeclared_variables(false)
            .into_iter()
            .filter(|name| !known.contains(&name.as_str()))
            .filter(|name| !env.globals().any(|(global, _)| global == name))
            .collect();
        names.sort();
        names
    }
}

/// Removes one outer `{{ … }}` pair (with optional whitespace control dashes).
pub(crate) fn strip_braces(source: &str) -> &str {
    let trimmed = source.trim();
    match trimmed
        .strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
    {
        Some(inner) => {
            let inner = inner.strip_prefix('-').unwrap_or(inner);
            inner.strip_suffix('-').unwrap_or(inner)
        }
        None => trimmed,
    }
}

/// A minijinja error as one line: its kind and detail, without the debug
/// dump of the template source.
pub(crate) fn describe(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}

/// The names a retry expression sees after `attempt` ended with `outcome`.
///
/// Every name is bound, to null when it has no value (`error` after a
/// success, `status_code` outside HTTP), so `error != None` means what it
/// says. `data` is `result.data` when the result is an object carrying
/// `data` (HTTP and python results), otherwise the whole result.
pub fn retry_context(outcome: &Outcome, attempt: u32) -> serde_json::Value {
    let data = match outcome.result.get("data") {
        Some(data) if outcome.result.is_object() => data.clone(),
        _ => outcome.result.clone(),
    };
    serde_json::json!({
        "result": outcome.result,
        "data": data,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "success": outcome.success,
        "attempt": attempt,
    })
}
