//! Reading a `retry:` block (any of its four forms) from a node tree.

use std::time::Duration;

use crate::diag::Diagnostic;
use crate::expr::{Expression, RETRY_NAMES};
use crate::node::{Node, Value};
use crate::retry::{MAX_ATTEMPTS_LIMIT, MAX_DELAY_SECONDS, RetryPolicy, millis};
use crate::suggest;

/// The keys of the mapping form, in documentation order.
pub(crate) const RETRY_KEYS: &[&str] = &[
    "max_attempts",
    "initial_delay",
    "backoff_multiplier",
    "max_delay",
    "jitter",
    "retry_when",
    "stop_when",
];

/// Reads a retry block at `path`, collecting every problem in it.
pub(crate) fn parse_retry(node: &Node, path: &str) -> Result<RetryPolicy, Vec<Diagnostic>> {
    match &node.value {
        Value::Null | Value::Bool(false) => Ok(RetryPolicy::default()),
        Value::Bool(true) => Ok(RetryPolicy::defaults()),
        Value::Int(_) => {
            let max_attempts = attempts(node, path).map_err(|d| vec![d])?;
            Ok(RetryPolicy {
                max_attempts,
                ..RetryPolicy::defaults()
            })
        }
        Value::Map(entries) => parse_mapping(entries, path),
        Value::Str(text) => Err(vec![node.error(path, string_form_message(text))]),
        _ => Err(vec![node.error(path, wrong_form_message(node))]),
    }
}

fn wrong_form_message(node: &Node) -> String {
    format!(
        "expected true, false, a whole number of attempts or a mapping of {}; found {}",
        RETRY_KEYS.join(", "),
        node.kind()
    )
}

fn string_form_message(text: &str) -> String {
    let lowered = text.to_ascii_lowercase();
    if matches!(lowered.as_str(), "yes" | "no" | "on" | "off" | "y" | "n") {
        format!("`{text}` is a string here, not a boolean; write true or false")
    } else {
        format!(
            "expected true, false, a whole number of attempts or a mapping; \
             found the string `{text}`"
        )
    }
}

fn parse_mapping(entries: &[(Node, Node)], path: &str) -> Result<RetryPolicy, Vec<Diagnostic>> {
    let mut policy = RetryPolicy::defaults();
    let mut errors = Vec::new();
    for (key, value) in entries {
        let name = key.key_text();
        let at = format!("{path}.{name}");
        if let Err(diagnostic) = apply_key(&mut policy, &name, value, &at) {
            // An unknown key is reported at the key itself, other errors at
            // the offending value.
            let node = if RETRY_KEYS.contains(&name.as_str()) {
                value
            } else {
                key
            };
            errors.push(node.error(&at, diagnostic));
        }
    }
    if errors.is_empty() {
        Ok(policy)
    } else {
        Err(errors)
    }
}

fn apply_key(policy: &mut RetryPolicy, key: &str, value: &Node, at: &str) -> Result<(), String> {
    match key {
        "max_attempts" => policy.max_attempts = attempts(value, at).map_err(|d| d.message)?,
        "initial_delay" => policy.initial_delay = delay_seconds(value)?,
        "backoff_multiplier" => policy.backoff_multiplier = multiplier(value)?,
        "max_delay" => policy.max_delay = delay_seconds(value)?,
        "jitter" => policy.jitter = boolean(value)?,
        "retry_when" => policy.retry_when = retry_expression(value)?,
        "stop_when" => policy.stop_when = retry_expression(value)?,
        other => return Err(suggest::unknown_key(other, RETRY_KEYS)),
    }
    Ok(())
}

fn attempts(node: &Node, path: &str) -> Result<u32, Diagnostic> {
    let message = match whole_number(node) {
        Some(n) if n < 1.0 => format!("max_attempts must be at least 1, found {n}"),
        Some(n) if n > f64::from(MAX_ATTEMPTS_LIMIT) => {
            format!("max_attempts must be at most {MAX_ATTEMPTS_LIMIT}, found {n}")
        }
        Some(_) => return Ok(small_count(node)),
        None => format!("max_attempts must be a whole number, found {}", node.kind()),
    };
    Err(node.error(path, message))
}

/// An integer node as f64; huge integers arrive from YAML as floats and
/// count as whole numbers too, so they are refused as too large.
fn whole_number(node: &Node) -> Option<f64> {
    match node.value {
        // Precision loss only affects values far beyond the limit.
        #[allow(clippy::cast_precision_loss)]
        Value::Int(n) => Some(n as f64),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() > 1e15 => Some(f),
        _ => None,
    }
}

/// The count of a node already checked to be an integer in range.
fn small_count(node: &Node) -> u32 {
    match node.value {
        Value::Int(n) => u32::try_from(n).unwrap_or(MAX_ATTEMPTS_LIMIT),
        _ => MAX_ATTEMPTS_LIMIT,
    }
}

fn delay_seconds(node: &Node) -> Result<Duration, String> {
    let secs = number(node)?;
    if secs < 0.0 {
        return Err(format!("a delay must not be negative, found {secs}"));
    }
    if secs > MAX_DELAY_SECONDS {
        return Err(format!(
            "a delay must be at most {MAX_DELAY_SECONDS} seconds (one year), found {secs}"
        ));
    }
    Ok(millis(secs))
}

fn multiplier(node: &Node) -> Result<f64, String> {
    let value = number(node)?;
    if value <= 0.0 {
        return Err(format!(
            "backoff_multiplier must be greater than 0, found {value}"
        ));
    }
    Ok(value)
}

/// A finite number of seconds (or a plain factor), integer or float.
fn number(node: &Node) -> Result<f64, String> {
    let value = match node.value {
        // Integers beyond 2^53 lose precision, but every such value is
        // refused by the range checks anyway.
        #[allow(clippy::cast_precision_loss)]
        Value::Int(n) => n as f64,
        Value::Float(f) => f,
        _ => {
            return Err(format!(
                "expected a number of seconds, found {}",
                node.kind()
            ));
        }
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("expected a finite number, found {value}"))
    }
}

fn boolean(node: &Node) -> Result<bool, String> {
    match (&node.value, node.as_str()) {
        (Value::Bool(b), _) => Ok(*b),
        (_, Some(text)) => Err(string_form_message(text)),
        _ => Err(format!("expected true or false, found {}", node.kind())),
    }
}

/// An expression, or `None` for null (the canonical JSON form's "unset").
fn retry_expression(node: &Node) -> Result<Option<Expression>, String> {
    if node.value == Value::Null {
        return Ok(None);
    }
    let Some(source) = node.as_str() else {
        return Err(format!(
            "expected an expression string, found {}",
            node.kind()
        ));
    };
    let expression = Expression::parse(source)?;
    let unknown = expression.unknown_names(RETRY_NAMES);
    if unknown.is_empty() {
        Ok(Some(expression))
    } else {
        Err(format!(
            "unknown name `{}` in expression; a retry expression sees only: {}",
            unknown.join("`, `"),
            RETRY_NAMES.join(", ")
        ))
    }
}
