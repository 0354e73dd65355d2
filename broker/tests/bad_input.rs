//! The bad-playbook corpus of `tests/bad_input/playbooks/`, registered
//! through gRPC: each is INVALID_ARGUMENT naming where and what, nothing
//! is stored, and the broker still answers its health check afterwards.

mod support;

use anyhow::{Result, ensure};
use baton_proto::v1 as pb;
use support::TestBroker;
use support::backend::{Harness, TestDb};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

on_both_backends!(every_bad_playbook_is_refused_where_and_why_and_nothing_is_stored);

/// (file, line, column, key path, message substring) of the first problem;
/// an empty key path is the document itself.
const CASES: &[(&str, usize, usize, &str, &str)] = &[
    (
        "bad_http_method",
        12,
        13,
        "workflow[1].method",
        "unknown HTTP method `FETCH`",
    ),
    (
        "bad_retry_template",
        12,
        19,
        "workflow[1].retry.retry_when",
        "syntax error",
    ),
    (
        "bad_retry_when",
        12,
        19,
        "workflow[1].retry.retry_when",
        "syntax error",
    ),
    (
        "bad_stop_when_name",
        12,
        18,
        "workflow[1].retry.stop_when",
        "unknown name `stauts_code`",
    ),
    (
        "bad_template",
        11,
        10,
        "workflow[1].url",
        "invalid template",
    ),
    (
        "bad_when",
        10,
        15,
        "workflow[0].next[0].when",
        "syntax error",
    ),
    ("billion_laughs", 6, 8, "", "more than 100000 nodes"),
    ("binary_garbage", 2, 7, "", "control character U+0000"),
    ("deep_nesting", 2, 261, "", "nests deeper than 64 levels"),
    ("duplicate_key", 11, 5, "", "duplicate key `type`"),
    (
        "duplicate_step",
        12,
        11,
        "workflow[2].step",
        "duplicate step name `work`",
    ),
    ("empty", 1, 1, "", "empty document"),
    (
        "http_without_url",
        9,
        5,
        "workflow[1].url",
        "`url` or `endpoint`",
    ),
    (
        "huge_max_delay",
        12,
        18,
        "workflow[1].retry.max_delay",
        "finite number, found inf",
    ),
    (
        "inf_delay",
        12,
        22,
        "workflow[1].retry.initial_delay",
        "finite number, found inf",
    ),
    (
        "inf_max_delay",
        12,
        18,
        "workflow[1].retry.max_delay",
        "finite number, found -inf",
    ),
    ("metadata_is_a_list", 4, 3, "metadata", "expected a mapping"),
    ("missing_end", 7, 3, "workflow", "no step named `end`"),
    ("missing_start", 7, 3, "workflow", "no step named `start`"),
    (
        "nan_delay",
        12,
        18,
        "workflow[1].retry.max_delay",
        "finite number, found NaN",
    ),
    (
        "nan_multiplier",
        12,
        27,
        "workflow[1].retry.backoff_multiplier",
        "found NaN",
    ),
    (
        "negative_delay",
        12,
        22,
        "workflow[1].retry.initial_delay",
        "must not be negative",
    ),
    (
        "negative_jitter",
        12,
        15,
        "workflow[1].retry.jitter",
        "expected true or false",
    ),
    (
        "negative_timeout",
        12,
        14,
        "workflow[1].timeout",
        "positive number of seconds",
    ),
    ("only_comment", 1, 1, "", "empty document"),
    (
        "overflowing_attempts",
        12,
        21,
        "workflow[1].retry.max_attempts",
        "at most 10000",
    ),
    (
        "python_without_code",
        9,
        5,
        "workflow[1].code",
        "defining `def main`",
    ),
    (
        "python_without_main",
        12,
        7,
        "workflow[1].code",
        "must define `def main",
    ),
    (
        "retry_bare_yes",
        11,
        12,
        "workflow[1].retry",
        "`yes` is a string here",
    ),
    (
        "retry_minus_one",
        11,
        12,
        "workflow[1].retry",
        "at least 1, found -1",
    ),
    (
        "retry_yes_string",
        11,
        12,
        "workflow[1].retry",
        "`yes` is a string here",
    ),
    (
        "string_delay",
        12,
        22,
        "workflow[1].retry.initial_delay",
        "found a string",
    ),
    ("tabs", 4, 2, "", "tabs disallowed"),
    ("top_level_typo", 1, 1, "workflow", "missing required key"),
    ("two_documents", 2, 1, "", "only one YAML document"),
    ("unclosed_flow", 3, 11, "", "unclosed bracket"),
    (
        "unknown_next",
        8,
        12,
        "workflow[0].next[0]",
        "unknown step `wrok`",
    ),
    (
        "unknown_retry_key",
        12,
        7,
        "workflow[1].retry.max_attempt",
        "did you mean `max_attempts`?",
    ),
    (
        "unknown_step_key",
        11,
        5,
        "workflow[1].retyr",
        "did you mean `retry`?",
    ),
    ("unknown_top_key", 1, 1, "workflow", "missing required key"),
    (
        "unknown_type",
        10,
        11,
        "workflow[1].type",
        "unknown task type `shell`",
    ),
    ("workflow_is_a_map", 7, 3, "workflow", "found a mapping"),
    (
        "workflow_is_a_number",
        4,
        11,
        "workflow",
        "found an integer",
    ),
    (
        "wrong_api_version",
        1,
        13,
        "apiVersion",
        "expected `noetl.io/v1`",
    ),
    ("wrong_kind", 2, 7, "kind", "expected `Playbook`"),
    (
        "zero_attempts",
        12,
        21,
        "workflow[1].retry.max_attempts",
        "at least 1, found 0",
    ),
    (
        "zero_multiplier",
        12,
        27,
        "workflow[1].retry.backoff_multiplier",
        "greater than 0",
    ),
    (
        "zero_timeout",
        12,
        14,
        "workflow[1].timeout",
        "positive number of seconds",
    ),
];

/// The corpus folder.
fn corpus() -> String {
    format!(
        "{}/../tests/bad_input/playbooks",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn read(name: &str) -> String {
    let path = format!("{}/{name}.yaml", corpus());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Documents too big or too odd to commit, with what each is refused for.
fn generated() -> Vec<(&'static str, String, usize, usize, &'static str)> {
    let deep = format!("workload:\n  x: {}{}\n", "[".repeat(5000), "]".repeat(5000));
    let big = format!("workload:\n  big: \"{}\"\n", "x".repeat(1024 * 1024));
    // Deterministic bytes covering every value, read as UTF-8 lossily.
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect();
    let garbage = String::from_utf8_lossy(&bytes).into_owned();
    vec![
        ("5000_deep", deep, 2, 261, "nests deeper than 64 levels"),
        (
            "over_1_mib",
            big,
            1,
            1,
            "more than the limit of 1048576 bytes",
        ),
        ("binary_noise", garbage, 1, 1, "control character U+0000"),
        ("zero_bytes", String::new(), 1, 1, "empty document"),
    ]
}

/// Registers `yaml` and checks the refusal's first line names
/// `line:col: path` and says `message`.
async fn refused(
    broker: &TestBroker,
    name: &str,
    yaml: String,
    at: (usize, usize, &str),
    message: &str,
) -> Result<()> {
    let request = pb::RegisterPlaybookRequest { yaml };
    let reply = broker.playbooks().await?.register(request).await;
    let Err(status) = reply else {
        anyhow::bail!("{name}: accepted a bad playbook");
    };
    ensure!(
        status.code() == tonic::Code::InvalidArgument,
        "{name}: {status:?}"
    );
    let (line, column, path) = at;
    let path = if path.is_empty() { "(document)" } else { path };
    let first = status.message().lines().next().unwrap_or_default();
    let prefix = format!("{line}:{column}: {path}: ");
    ensure!(first.starts_with(&prefix), "{name}: {first}");
    ensure!(first.contains(message), "{name}: {first}");
    Ok(())
}

async fn every_bad_playbook_is_refused_where_and_why_and_nothing_is_stored(
    h: Harness,
) -> Result<()> {
    let broker = h.broker().await?;
    for &(name, line, column, path, message) in CASES {
        refused(&broker, name, read(name), (line, column, path), message).await?;
    }
    for (name, yaml, line, column, message) in generated() {
        refused(&broker, name, yaml, (line, column, ""), message).await?;
    }

    let list = broker
        .playbooks()
        .await?
        .list(pb::ListPlaybooksRequest::default())
        .await?;
    ensure!(list.into_inner().playbooks.is_empty());
    ensure!(stored_rows(&broker.db().await?).await? == 0);
    ensure!(serving(&broker).await?, "the broker stopped serving");
    Ok(())
}

/// Rows in every table a Register or Run could write.
async fn stored_rows(db: &TestDb) -> Result<i64> {
    let (rows,): (i64,) = db
        .fetch_one(
            "SELECT (SELECT count(*) FROM playbooks) + (SELECT count(*) FROM executions) \
             + (SELECT count(*) FROM jobs) + (SELECT count(*) FROM events)",
        )
        .await?;
    Ok(rows)
}

/// Whether the broker's health check says it is serving.
async fn serving(broker: &TestBroker) -> Result<bool> {
    let channel = tonic::transport::Channel::from_shared(broker.endpoint.clone())?
        .connect()
        .await?;
    let request = HealthCheckRequest {
        service: String::new(),
    };
    let status = HealthClient::new(channel).check(request).await?;
    Ok(status.into_inner().status == i32::from(ServingStatus::Serving))
}

#[test]
fn the_corpus_has_forty_files_each_with_a_row() {
    let mut files = 0;
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        assert!(CASES.iter().any(|case| case.0 == stem), "{stem} has no row");
        files += 1;
    }
    assert_eq!(files, CASES.len());
    assert!(files + generated().len() >= 40);
}
