//! The processes a benchmark runs and what `/proc` says they used.
//!
//! CPU is counted the way the peer harness counts it: each process's user
//! and system time, and for Postgres the postmaster's own and reaped
//! children's time plus every live backend's.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

/// A `baton` process, killed when dropped.
#[derive(Debug)]
pub(crate) struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    /// Starts `binary` with `args`, its standard error in `<dir>/<name>.log`.
    pub(crate) fn spawn(binary: &Path, args: &[&str], dir: &Path, name: &str) -> Result<Proc> {
        let log = File::create(dir.join(format!("{name}.log")))?;
        let child = Command::new(binary)
            .args(args)
            // Warnings only unless profiling: per-job log lines would be
            // measured as work.
            .env("RUST_LOG", log_filter().unwrap_or_else(|| "warn".into()))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} {args:?}", binary.display()))?;
        Ok(Proc {
            child,
            name: name.to_owned(),
        })
    }

    /// The operating system's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds used so far (user and system).
    pub(crate) fn cpu_s(&self) -> f64 {
        own_cpu_s(self.pid()).unwrap_or(0.0)
    }

    /// The highest resident set size so far, in MiB (`VmHWM`).
    pub(crate) fn peak_rss_mb(&self) -> f64 {
        status_kb(self.pid(), "VmHWM:").map_or(0.0, |kb| kb as f64 / 1024.0)
    }

    /// The resident set size now, in MiB.
    pub(crate) fn rss_mb(&self) -> f64 {
        status_kb(self.pid(), "VmRSS:").map_or(0.0, |kb| kb as f64 / 1024.0)
    }

    /// Whether it is still running; an exit is an error naming its log.
    pub(crate) fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => anyhow::bail!("{} exited ({status}); see {}.log", self.name, self.name),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log filter `BATON_BENCH_LOG` asks for, to see where time goes;
/// the deployments' directories are then kept.
pub(crate) fn log_filter() -> Option<String> {
    std::env::var("BATON_BENCH_LOG").ok()
}

/// A free loopback address for a process to listen on.
pub(crate) fn free_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// The fields of `/proc/<pid>/stat` after the command name.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // Field 3 (state) is a letter; the rest that matter are numbers.
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

fn ticks_per_s() -> f64 {
    // Linux has reported 100 on every architecture for decades.
    100.0
}

/// utime + stime of `pid`, in seconds.
fn own_cpu_s(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    Some((f[11] + f[12]) as f64 / ticks_per_s())
}

/// The postmaster's CPU with its reaped children's, plus every live
/// child's, in seconds.
pub(crate) fn postgres_cpu_s(postmaster: u32) -> f64 {
    let mut ticks = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Some(f) = stat_fields(pid) else { continue };
        if pid == postmaster {
            ticks += f[11] + f[12] + f[13] + f[14];
        } else if f[1] == u64::from(postmaster) {
            ticks += f[11] + f[12];
        }
    }
    ticks as f64 / ticks_per_s()
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
