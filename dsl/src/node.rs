//! A YAML tree that remembers where every node came from.
//!
//! serde-saphyr reports positions only through its `Spanned<T>` wrapper, so
//! the document is read once into this tree (every node wrapped) and all
//! later checks walk it; each diagnostic then carries a real line and column.
//! JSON values (bare jobs, the wire) convert into the same tree with unknown
//! positions, so retry blocks have one parser whatever their source.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, NonFiniteFloatPolicy, Options, Spanned};

use crate::diag::{Diagnostic, Diagnostics, Limits};

/// One YAML node and its 1-based position (0, 0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// The shapes a node can take. Mappings keep document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The node's position as a pair for [`Diagnostic::new`].
    pub(crate) fn pos(&self) -> (usize, usize) {
        (self.line, self.column)
    }

    /// A diagnostic pointing at this node.
    pub(crate) fn error(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.pos(), path, message)
    }

    /// The entries of a mapping node, or `None` for any other shape.
    pub(crate) fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The text of a string node.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// The value under `key` in a mapping node.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        let entries = self.as_map()?;
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// What kind of node this is, for "expected X, found Y" messages.
    pub(crate) fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// A node with no known position, built from JSON.
    pub(crate) fn from_json(json: &serde_json::Value) -> Node {
        let value = match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => json_number(n),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Seq(items.iter().map(Node::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| (Node::unplaced(Value::Str(k.clone())), Node::from_json(v)))
                    .collect(),
            ),
        };
        Node::unplaced(value)
    }

    fn unplaced(value: Value) -> Node {
        Node {
            value,
            line: 0,
            column: 0,
        }
    }

    /// The node as JSON; non-string keys become their YAML text and
    /// non-finite floats become null, as JSON has no place for either.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => int_to_json(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_text(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A mapping key as text.
    pub(crate) fn key_text(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".to_owned(),
            Value::Seq(_) | Value::Map(_) => "<complex key>".to_owned(),
        }
    }
}

fn json_number(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Value::Int(i128::from(u))
    } else {
        Value::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn int_to_json(i: i128) -> serde_json::Value {
    if let Ok(small) = i64::try_from(i) {
        serde_json::Value::from(small)
    } else if let Ok(unsigned) = u64::try_from(i) {
        serde_json::Value::from(unsigned)
    } else {
        serde_json::Value::String(i.to_string())
    }
}

/// Reads one YAML document into a [`Node`] tree within `limits`.
pub(crate) fn parse_yaml(text: &str, limits: &Limits) -> Result<Node, Diagnostics> {
    precheck(text, limits)?;
    let spanned: Spanned<Value> = serde_saphyr::from_str_with_options(text, options(limits))
        .map_err(|err| Diagnostics::one(saphyr_diagnostic(&err, limits)))?;
    let node = from_spanned(spanned);
    if node.value == Value::Null {
        return Err(Diagnostics::one(Diagnostic::new(
            (1, 1),
            "",
            "empty document: expected a YAML mapping",
        )));
    }
    Ok(node)
}

/// Refusals that need no parser: size, emptiness and bytes YAML forbids.
fn precheck(text: &str, limits: &Limits) -> Result<(), Diagnostics> {
    let refuse = |pos, message: String| Err(Diagnostics::one(Diagnostic::new(pos, "", message)));
    if text.len() > limits.max_bytes {
        let message = format!(
            "document is {} bytes, more than the limit of {} bytes",
            text.len(),
            limits.max_bytes
        );
        return refuse((0, 0), message);
    }
    if text.trim().is_empty() {
        return refuse((1, 1), "empty document: expected a YAML mapping".to_owned());
    }
    if let Some((pos, ch)) = first_control_char(text) {
        let message = format!(
            "binary or control character U+{:04X} is not allowed in YAML",
            ch as u32
        );
        return refuse(pos, message);
    }
    Ok(())
}

/// The first character YAML does not allow in a document (tabs and line
/// breaks are fine here; tab indentation is the parser's to refuse).
fn first_control_char(text: &str) -> Option<((usize, usize), char)> {
    for (line_no, line) in text.split('\n').enumerate() {
        for (col, ch) in line.chars().enumerate() {
            let allowed = matches!(ch, '\t' | '\r' | '\u{feff}');
            if ch.is_control() && !allowed {
                return Some(((line_no + 1, col + 1), ch));
            }
        }
    }
    None
}

fn options(limits: &Limits) -> Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = limits.max_depth;
    budget.max_nodes = limits.max_nodes;
    budget.max_aliases = limits.max_aliases;
    budget.max_documents = 1;

    let mut options = Options::default();
    options.budget = Some(budget);
    options.strict_booleans = true;
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    // NaN and infinities reach the tree as floats so the retry parser can
    // refuse them naming the key, instead of a bare parser error.
    options.non_finite_float_policy = NonFiniteFloatPolicy::PassThrough;
    options
}

fn saphyr_diagnostic(err: &serde_saphyr::Error, limits: &Limits) -> Diagnostic {
    let (line, column) = err
        .location()
        .map_or((0, 0), |loc| (to_usize(loc.line()), to_usize(loc.column())));
    let message = err.without_snippet().to_string();
    let message = explain(strip_location_suffix(&message), limits);
    Diagnostic::new((line, column), "", message)
}

/// serde-saphyr appends " at line X, column Y …" to its messages; the
/// diagnostic carries the position in its own fields.
fn strip_location_suffix(message: &str) -> &str {
    let trimmed = message.trim();
    trimmed
        .find(" at line ")
        .map_or(trimmed, |idx| &trimmed[..idx])
}

/// Parser budget breaches and duplicate keys, in the user's terms.
fn explain(message: &str, limits: &Limits) -> String {
    if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        let key = key.split(", set DuplicateKeyPolicy").next().unwrap_or(key);
        return format!("duplicate key `{key}`; each key may appear once in a mapping");
    }
    let Some(breach) = message.strip_prefix("budget breached: ") else {
        if message.contains("recursion limit exceeded") {
            return nesting(limits);
        }
        return message.to_owned();
    };
    match breach.split_whitespace().next().unwrap_or_default() {
        "Nodes" => format!(
            "document has more than {} nodes (aliases expanded); refused",
            limits.max_nodes
        ),
        "Aliases" => format!(
            "document uses more than {} aliases; refused",
            limits.max_aliases
        ),
        "Depth" => nesting(limits),
        "Documents" => "only one YAML document is allowed".to_owned(),
        _ => format!("document exceeds a parser limit ({breach}); refused"),
    }
}

fn nesting(limits: &Limits) -> String {
    format!(
        "document nests deeper than {} levels; refused",
        limits.max_depth
    )
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn from_spanned(spanned: Spanned<Value>) -> Node {
    // `referenced` is where the node appears (an alias's use site), which is
    // where a user looks for the problem.
    Node {
        value: spanned.value,
        line: to_usize(spanned.referenced.line()),
        column: to_usize(spanned.referenced.column()),
    }
}

struct ValueVisitor;

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(f64::INFINITY), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(from_spanned(item));
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Value>>()?;
            entries.push((from_spanned(key), from_spanned(value)));
        }
        Ok(Value::Map(entries))
    }
}
