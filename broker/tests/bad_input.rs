//! The bad-playbook corpus of `tests/bad_input/playbooks/`, registered
//! through gRPC: each is INVALID_ARGUMENT naming where and what, nothing
//! is stored, and the broker still answers its health check afterwards.

#[path = "../../tests/bad_input/cases.rs"]
mod cases;
mod support;

use anyhow::{Result, ensure};
use baton_proto::v1 as pb;
use cases::{CASES, case, corpus};
use support::TestBroker;
use support::backend::{Harness, TestDb};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

on_both_backends!(every_bad_playbook_is_refused_where_and_why_and_nothing_is_stored);

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
        assert!(case(&stem).is_some(), "{stem} has no row");
        files += 1;
    }
    assert_eq!(files, CASES.len());
    assert!(files + generated().len() >= 40);
}
