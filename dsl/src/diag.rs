//! Diagnostics: what is wrong with a document, and where.

use std::fmt;

/// One problem found in a document: where it is and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line of the offending node; 0 when the position is unknown.
    pub line: usize,
    /// 1-based column of the offending node; 0 when the position is unknown.
    pub column: usize,
    /// Key path of the offending node, e.g. `workflow[1].retry.max_attempts`;
    /// empty for the document itself.
    pub path: String,
    /// What was found and what was expected instead.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic at a known position (0, 0 when unknown).
    pub(crate) fn new(
        (line, column): (usize, usize),
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            line,
            column,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(
            f,
            "{}:{}: {}: {}",
            self.line, self.column, path, self.message
        )
    }
}

/// Every problem found in one document, in document order.
///
/// Parsing collects all of them rather than stopping at the first, so a user
/// fixes a playbook in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// A single diagnostic.
    pub(crate) fn one(diagnostic: Diagnostic) -> Self {
        Diagnostics(vec![diagnostic])
    }

    /// The diagnostics as a slice.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.0
    }

    /// Sorts by position so the report reads top to bottom.
    pub(crate) fn sorted(mut self) -> Self {
        self.0.sort_by_key(|d| (d.line, d.column));
        self
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Bounds on what a parser accepts, so a hostile document costs little.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted document, in bytes. Default 1 MiB.
    pub max_bytes: usize,
    /// Deepest accepted nesting of sequences and mappings. Default 64.
    pub max_depth: usize,
    /// Most YAML nodes (scalars, sequences, mappings) in one document.
    /// Default 100 000.
    pub max_nodes: usize,
    /// Most alias references (`*name`) in one document. Default 100; alias
    /// bombs such as "billion laughs" exceed it long before they cost memory.
    pub max_aliases: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024,
            max_depth: 64,
            max_nodes: 100_000,
            max_aliases: 100,
        }
    }
}
