//! The bad-playbook corpus of `tests/bad_input/playbooks/`, through the
//! `baton` command against a real deployment. What users rely on:
//! `baton playbook register FILE` with a bad playbook exits 2 (refused
//! input, not a failure of the broker) and prints where and what, its first
//! line being `line:col: key.path: message` as the broker's
//! INVALID_ARGUMENT says it; nothing is stored; and the broker goes on
//! serving. The expected place and message of each file are the ones the
//! broker's own gRPC test holds it to (`tests/bad_input/cases.rs`).

#[path = "../../tests/bad_input/cases.rs"]
mod cases;
#[macro_use]
mod support;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use baton_proto::v1;
use baton_testkit::Backend;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use cases::{case, corpus};
use support::{Session, baton, text};

/// A good playbook, registered last to show the broker still takes one.
const GOOD: &str = "apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: good, path: cli/good}
workflow:
  - step: start
    type: noop
    next: [end]
  - step: end
";

async fn every_bad_playbook_is_refused_at_register_exits_2_and_nothing_is_stored(
    backend: Backend,
) -> Result<()> {
    let mut s = Session::start(backend).await?;
    let files = corpus_files()?;
    ensure!(files.len() >= 40, "only {} corpus files", files.len());

    // Every file is tried, and every one that misbehaves is named.
    let mut wrong = Vec::new();
    for file in &files {
        if let Err(e) = refused(&s, file).await {
            wrong.push(format!("{}: {e:#}", file.display()));
        }
    }
    ensure!(
        wrong.is_empty(),
        "{} of {} corpus files:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );

    let listed = baton(&s, &["playbook", "list", "--output", "json"]).await?;
    ensure!(listed.status.code() == Some(0), "{}", text(&listed.stderr));
    ensure!(
        text(&listed.stdout).trim().is_empty(),
        "stored: {}",
        text(&listed.stdout)
    );
    let stored = s
        .playbooks
        .list(v1::ListPlaybooksRequest::default())
        .await?
        .into_inner()
        .playbooks;
    ensure!(stored.is_empty(), "stored: {stored:?}");

    let request = HealthCheckRequest {
        service: String::new(),
    };
    let health = HealthClient::new(s.channel.clone()).check(request).await?;
    ensure!(
        health.into_inner().status == i32::from(ServingStatus::Serving),
        "the broker stopped serving"
    );
    let dir = tempfile::tempdir()?;
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, GOOD)?;
    let good = baton(&s, &["playbook", "register", &good.display().to_string()]).await?;
    ensure!(good.status.code() == Some(0), "{}", text(&good.stderr));
    Ok(())
}
on_both_backends!(every_bad_playbook_is_refused_at_register_exits_2_and_nothing_is_stored);

/// Every file of the corpus, in name order.
fn corpus_files() -> Result<Vec<PathBuf>> {
    let mut files = std::fs::read_dir(corpus())
        .with_context(corpus)?
        .map(|entry| Ok(entry?.path()))
        .collect::<Result<Vec<_>>>()?;
    files.sort();
    Ok(files)
}

/// Registers `file` with the CLI and checks it exits 2 having printed the
/// file's expected `line:col: path: message` as the first problem, and
/// nothing on stdout.
async fn refused(s: &Session, file: &Path) -> Result<()> {
    let stem = file.file_stem().and_then(|n| n.to_str()).unwrap_or("");
    let &(_, line, column, path, message) =
        case(stem).context("no row in tests/bad_input/cases.rs")?;
    let shown = file.display().to_string();

    let out = baton(s, &["playbook", "register", &shown]).await?;
    let stderr = text(&out.stderr);

    ensure!(
        out.status.code() == Some(2),
        "exit {}: {stderr}",
        out.status
    );
    ensure!(
        out.stdout.is_empty(),
        "printed a record: {}",
        text(&out.stdout)
    );
    let mut lines = stderr.lines();
    let heading = format!("baton: {shown} was refused:");
    ensure!(lines.next() == Some(heading.as_str()), "{stderr}");
    let path = if path.is_empty() { "(document)" } else { path };
    let prefix = format!("{line}:{column}: {path}: ");
    let first = lines.next().unwrap_or_default();
    ensure!(
        first.starts_with(&prefix) && first.contains(message),
        "expected `{prefix}…{message}…`, printed:\n{stderr}"
    );
    Ok(())
}
