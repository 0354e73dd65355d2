//! One module per command group; each function runs one command and returns
//! the failure that decides the exit status.

pub(crate) mod dev;
pub(crate) mod execution;
pub(crate) mod job;
pub(crate) mod playbook;
pub(crate) mod policy;
pub(crate) mod progress;
pub(crate) mod serve;

use serde_json::{Map, Value};

use crate::client::Failure;

/// Reads `KEY=VALUE` pairs into a workload object. A VALUE that parses as
/// JSON is taken as JSON (`n=3` is a number), anything else as text.
pub(crate) fn workload_overrides(pairs: &[String]) -> Result<Map<String, Value>, Failure> {
    let mut map = Map::new();
    for pair in pairs {
        let Some((key, raw)) = pair.split_once('=') else {
            return Err(Failure::usage(format!(
                "--set wants KEY=VALUE, got {pair:?}"
            )));
        };
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        map.insert(key.to_owned(), value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_are_json_when_they_parse_and_text_otherwise() {
        let pairs = [
            "n=3".to_owned(),
            "url=http://x/y".to_owned(),
            "on=true".to_owned(),
        ];
        let map = workload_overrides(&pairs).unwrap();
        assert_eq!(map["n"], 3);
        assert_eq!(map["url"], "http://x/y");
        assert_eq!(map["on"], true);
    }

    #[test]
    fn a_set_without_equals_is_bad_usage() {
        let err = workload_overrides(&["oops".to_owned()]).unwrap_err();
        assert_eq!(err.code, 2);
    }
}
