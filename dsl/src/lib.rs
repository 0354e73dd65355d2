//! Baton playbooks and retry policies.
//!
//! This crate is the pure half of Baton: it reads playbook YAML into typed
//! steps, validates them (collecting every error with its line, column and key
//! path), parses `retry:` blocks, computes backoff delays, evaluates the
//! `retry_when`/`stop_when`/`when` expressions and renders task templates.
//! It does no I/O and no async work, so the broker and the worker share it
//! and reach the same decision from the same inputs.
#![deny(missing_docs)]

mod decide;
mod diag;
mod expr;
mod fields;
mod graph;
mod node;
mod parse;
mod playbook;
mod retry;
mod retry_parse;
mod schedule;
mod step;
mod suggest;
mod template;

pub use decide::{Decision, FixedJitter, JitterSource, Outcome, RandomJitter, Reason, decide};
pub use diag::{Diagnostic, Diagnostics, Limits};
pub use expr::{Expression, retry_context};
pub use parse::{parse_playbook, parse_playbook_with};
pub use playbook::{Next, Playbook, Step, TaskKind};
pub use retry::{MAX_ATTEMPTS_LIMIT, MAX_DELAY_SECONDS, RetryPolicy};
pub use schedule::{Schedule, ScheduleEnd, ScheduleEntry, simulate};
pub use template::{TemplateError, check_template, render};
