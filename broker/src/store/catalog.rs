//! The playbook catalog's rules, whichever backend stores it: parsed
//! playbooks cached by id, and how a registration picks its version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use baton_dsl::Playbook;

use crate::error::Error;
use crate::model::PlaybookRecord;

/// Parsed playbooks by id; rows never change, so entries never go stale.
const PLAYBOOK_CACHE_LIMIT: usize = 1024;

/// Parsed playbooks by id, so that progressing an execution does not parse
/// its playbook's YAML at every step.
#[derive(Debug, Default)]
pub(super) struct PlaybookCache {
    parsed: Mutex<HashMap<i64, Arc<Playbook>>>,
}

impl PlaybookCache {
    /// Playbook `id`, if it was parsed before.
    pub(super) fn get(&self, id: i64) -> Option<Arc<Playbook>> {
        let cache = self
            .parsed
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache.get(&id).cloned()
    }

    /// Parses playbook `id` from its stored `yaml` and keeps it.
    pub(super) fn parse(&self, id: i64, yaml: &str) -> Result<Arc<Playbook>, Error> {
        let parsed = baton_dsl::parse_playbook(yaml)
            .map_err(|err| Error::Corrupt(format!("stored playbook {id}: {err}")))?;
        let parsed = Arc::new(parsed);
        self.insert(id, parsed.clone());
        Ok(parsed)
    }

    fn insert(&self, id: i64, playbook: Arc<Playbook>) {
        let mut cache = self
            .parsed
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if cache.len() >= PLAYBOOK_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(id, playbook);
    }
}

/// The latest version itself when registering `yaml` again changes
/// nothing: registering is idempotent.
pub(super) fn unchanged(latest: Option<&PlaybookRecord>, yaml: &str) -> Option<PlaybookRecord> {
    latest.filter(|latest| latest.yaml == yaml).cloned()
}

/// The version a new registration of a path gets.
pub(super) fn next_version(latest: Option<&PlaybookRecord>) -> u32 {
    latest.map_or(1, |latest| latest.version + 1)
}

/// The names of `playbook`'s steps, as the `steps` column lists them.
pub(super) fn step_names(playbook: &Playbook) -> Vec<&str> {
    playbook
        .steps
        .iter()
        .map(|step| step.name.as_str())
        .collect()
}

/// How a NOT_FOUND names playbook `path` at `version` (0 for the latest).
pub(super) fn label(path: &str, version: u32) -> String {
    if version == 0 {
        path.to_owned()
    } else {
        format!("{path} version {version}")
    }
}
