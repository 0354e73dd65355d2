//! Real `baton` processes, killed when their handle drops.
//!
//! A process's standard error is copied to a log file line by line, and a
//! test can wait for a line to appear (a broker saying where it listens)
//! instead of probing or sleeping.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::watch;

/// A running process; dropping it kills it.
#[derive(Debug)]
pub struct Process {
    child: Child,
    lines: watch::Receiver<Vec<String>>,
    /// Where its standard error is copied, for reading after a failure.
    pub log: PathBuf,
}

impl Process {
    /// Starts `binary` with `args`, copying its standard error to
    /// `<dir>/<name>.log`.
    pub fn spawn(binary: &Path, args: &[&str], dir: &Path, name: &str) -> Result<Process> {
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(binary)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} {args:?}", binary.display()))?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let (tx, lines) = watch::channel(Vec::new());
        tokio::spawn(copy_lines(stderr, log.clone(), tx));
        Ok(Process { child, lines, log })
    }

    /// The operating system's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait(&mut self) -> Result<Option<i32>> {
        Ok(self.child.wait().await?.code())
    }

    /// Waits until a line of standard error contains `needle`, and returns
    /// that line; fails after `deadline` or when the process closes stderr.
    pub async fn wait_for_line(&mut self, needle: &str, deadline: Duration) -> Result<String> {
        let found = tokio::time::timeout(deadline, async {
            let lines = self
                .lines
                .wait_for(|lines| lines.iter().any(|l| l.contains(needle)))
                .await
                .map_err(|_| anyhow!("the process ended before logging {needle:?}"))?;
            let line = lines.iter().find(|l| l.contains(needle)).cloned();
            line.ok_or_else(|| anyhow!("line vanished"))
        })
        .await;
        match found {
            Ok(line) => line,
            Err(_) => Err(anyhow!(
                "no {needle:?} within {deadline:?}:\n{}",
                self.log_text()
            )),
        }
    }

    /// Waits for the `addr=IP:PORT` a `baton` server logs when it listens.
    pub async fn listening_addr(&mut self, deadline: Duration) -> Result<SocketAddr> {
        let line = self.wait_for_line("Listening", deadline).await?;
        let addr = line
            .split_whitespace()
            .find_map(|word| word.strip_prefix("addr="))
            .with_context(|| format!("no addr= in {line:?}"))?;
        addr.parse().with_context(|| format!("parsing {addr:?}"))
    }

    /// Waits until the process has closed its standard error and every
    /// line is in its log file (after it exited, say); fails after
    /// `deadline`.
    pub async fn log_finished(&mut self, deadline: Duration) -> Result<()> {
        // The copy task drops its sender once the last line is written.
        let closed = self.lines.wait_for(|_| false);
        match tokio::time::timeout(deadline, closed).await {
            Ok(_) => Ok(()),
            Err(_) => Err(anyhow!(
                "{} still open after {deadline:?}",
                self.log.display()
            )),
        }
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        self.lines.borrow().join("\n")
    }
}

async fn copy_lines(stderr: ChildStderr, log: PathBuf, tx: watch::Sender<Vec<String>>) {
    let mut file = tokio::fs::File::create(&log).await.ok();
    let mut reader = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        if let Some(file) = file.as_mut() {
            let _ = file.write_all(format!("{line}\n").as_bytes()).await;
        }
        tx.send_modify(|lines| lines.push(line));
    }
    if let Some(file) = file.as_mut() {
        // Written out before the sender drops, which says the log is whole.
        let _ = file.flush().await;
    }
}
