//! The README's first command, `cargo run --release -- dev --run FILE`,
//! must reach the `baton` binary and a playbook that exists: a workspace
//! with more than one binary among its default members makes `cargo run`
//! refuse to choose.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The words after `cargo run` on the README's first line that has them.
fn first_command() -> Result<Vec<String>> {
    let readme = std::fs::read_to_string(root().join("README.md"))?;
    let line = readme
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("cargo run"))
        .context("the README has no `cargo run` command")?;
    Ok(line.split_whitespace().skip(2).map(str::to_owned).collect())
}

/// The binaries `cargo run` chooses among from the workspace root.
fn default_binaries() -> Result<Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    let defaults = meta["workspace_default_members"].as_array().cloned();
    let defaults = defaults.context("no workspace_default_members")?;
    let mut bins = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        if !defaults.contains(&package["id"]) {
            continue;
        }
        for target in package["targets"].as_array().into_iter().flatten() {
            if target["kind"]
                .as_array()
                .is_some_and(|k| k.contains(&"bin".into()))
            {
                bins.push(target["name"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    Ok(bins)
}

#[test]
fn the_first_command_runs_baton_dev_on_a_playbook_that_exists() -> Result<()> {
    let args = first_command()?;
    let Some((file, head)) = args.split_last() else {
        bail!("`cargo run` has no arguments");
    };
    ensure!(head == ["--release", "--", "dev", "--run"], "{args:?}");
    ensure!(root().join(file).is_file(), "{file} does not exist");
    let bins = default_binaries()?;
    ensure!(bins == ["baton"], "`cargo run` would choose among {bins:?}");
    Ok(())
}
