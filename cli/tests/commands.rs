//! The `baton` client commands against a real broker: exit statuses, the
//! readable views and `--output json`.

#[macro_use]
mod support;

use anyhow::{Result, ensure};
use baton_testkit::Backend;
use serde_json::{Value, json};

use support::{Session, baton, text};

const PASSES: &str = "apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: passes, path: cli/passes}
workflow:
  - step: start
    type: noop
    next: [end]
  - step: end
";

const FAILS: &str = "apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: fails, path: cli/fails}
workflow:
  - step: start
    type: noop
    fail: true
    retry: {max_attempts: 2, initial_delay: 0}
    next: [end]
  - step: end
";

/// A playbook with a misspelt retry key and a bad expression.
const BROKEN: &str = "apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: broken, path: cli/broken}
workflow:
  - step: start
    type: noop
    retry:
      max_attempt: 3
      retry_when: \"{{ status_code >= }}\"
    next: [end]
  - step: end
";

/// Writes `yaml` to a file in a fresh directory; the directory lives as
/// long as the returned guard.
fn file(yaml: &str) -> Result<(tempfile::TempDir, String)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("playbook.yaml");
    std::fs::write(&path, yaml)?;
    Ok((dir, path.display().to_string()))
}

async fn a_refused_playbook_prints_every_error_exits_2_and_stores_nothing(
    backend: Backend,
) -> Result<()> {
    let s = Session::start(backend).await?;
    let (_dir, path) = file(BROKEN)?;

    let out = baton(&s, &["playbook", "register", &path]).await?;
    let stderr = text(&out.stderr);

    ensure!(
        out.status.code() == Some(2),
        "exit {:?}: {stderr}",
        out.status
    );
    ensure!(
        stderr.contains("8:7: workflow[0].retry.max_attempt"),
        "{stderr}"
    );
    ensure!(stderr.contains("max_attempts"), "a suggestion: {stderr}");
    ensure!(stderr.contains("workflow[0].retry.retry_when"), "{stderr}");
    let listed = baton(&s, &["playbook", "list", "--output", "json"]).await?;
    ensure!(
        text(&listed.stdout).trim().is_empty(),
        "{}",
        text(&listed.stdout)
    );
    Ok(())
}
on_both_backends!(a_refused_playbook_prints_every_error_exits_2_and_stores_nothing);

async fn run_watch_exits_0_when_the_execution_completes_and_1_when_it_fails(
    backend: Backend,
) -> Result<()> {
    let s = Session::start(backend).await?;
    let (_a, passes) = file(PASSES)?;
    let (_b, fails) = file(FAILS)?;

    let ok = baton(&s, &["execution", "run", &passes, "--watch"]).await?;
    let bad = baton(&s, &["execution", "run", &fails, "--watch"]).await?;

    ensure!(ok.status.code() == Some(0), "{}", text(&ok.stderr));
    ensure!(
        text(&ok.stdout).contains("execution_completed"),
        "{}",
        text(&ok.stdout)
    );
    ensure!(bad.status.code() == Some(1), "{}", text(&bad.stderr));
    let watched = text(&bad.stdout);
    ensure!(watched.contains("action_retry") && watched.contains("execution_failed"));
    Ok(())
}
on_both_backends!(run_watch_exits_0_when_the_execution_completes_and_1_when_it_fails);

async fn job_get_shows_each_attempt_with_its_decision(backend: Backend) -> Result<()> {
    let mut s = Session::start(backend).await?;
    let path = s.register(FAILS).await?;
    let ended = s.run(&path, json!({})).await?;
    let (job, _) = s.job(ended.execution.id, "start").await?;

    let out = baton(&s, &["job", "get", &job.id.to_string()]).await?;
    let shown = text(&out.stdout);

    ensure!(out.status.code() == Some(0), "{}", text(&out.stderr));
    ensure!(
        shown.contains("ATTEMPT") && shown.contains("DECISION"),
        "{shown}"
    );
    ensure!(shown.contains("retry (default)"), "{shown}");
    ensure!(shown.contains("final (attempts_exhausted)"), "{shown}");
    Ok(())
}
on_both_backends!(job_get_shows_each_attempt_with_its_decision);

async fn output_json_prints_one_object_per_line_in_the_glossary_words(
    backend: Backend,
) -> Result<()> {
    let mut s = Session::start(backend).await?;
    let path = s.register(FAILS).await?;
    s.run(&path, json!({})).await?;
    let path = s.register(PASSES).await?;
    s.run(&path, json!({})).await?;

    let out = baton(&s, &["job", "list", "--output", "json"]).await?;
    let records: Vec<Value> = text(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;

    let states: Vec<&str> = records.iter().filter_map(|r| r["state"].as_str()).collect();
    ensure!(states == ["done", "dead"], "{states:?}");
    let events = baton(&s, &["execution", "events", "1", "--output", "json"]).await?;
    let first: Value = serde_json::from_str(text(&events.stdout).lines().next().unwrap_or(""))?;
    ensure!(first["name"] == "execution_started", "{first}");
    Ok(())
}
on_both_backends!(output_json_prints_one_object_per_line_in_the_glossary_words);
