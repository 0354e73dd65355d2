//! A Postgres server of one test's own, for tests that stop or restart
//! the database: doing that to the server `scripts/test` shares would
//! break every test running beside them.
//!
//! It is started the way `scripts/pg.sh` starts the shared one: the
//! installed binaries (`PG_BINDIR`, else `/usr/lib/postgresql/*/bin`), a
//! fresh `initdb` in a temporary directory, a free port on 127.0.0.1, and,
//! when the tests run as root, the `postgres` user, since initdb refuses
//! root.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;
use tokio::process::Command;

/// Server settings: reachable on its port only, and `fsync` off for speed.
/// Commits stay synchronous: an immediate shutdown kills the server, not
/// the machine, so what it acknowledged is in the operating system's
/// cache and survives; with `synchronous_commit` off it might not.
const SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "max_connections=200",
    "fsync=off",
];

/// The longest a server command may take (`pg_ctl` itself waits 60 s).
const COMMAND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(90);

/// A running Postgres server; dropping it stops it and removes its files.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// Whether server commands run as the `postgres` user.
    as_postgres: bool,
    root: TempDir,
}

impl PgServer {
    /// Creates a cluster in a temporary directory and starts it.
    pub async fn start() -> Result<PgServer> {
        let bin = bin_dir()?;
        let as_postgres = running_as_root().await?;
        let root = tempfile::Builder::new().prefix("baton-pg.").tempdir()?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(root.path())).await?;
        }
        let server = PgServer {
            data: root.path().join("data"),
            port: free_port()?,
            bin,
            as_postgres,
            root,
        };
        server.initdb().await?;
        server.start_again().await?;
        Ok(server)
    }

    /// The URL of its `postgres` database, to create test databases with.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash would (`-m immediate`):
    /// sessions end without a goodbye and recovery runs on the next start.
    pub async fn stop(&self) -> Result<()> {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]).await
    }

    /// Starts the server again after [`PgServer::stop`]; returns once it
    /// accepts connections.
    pub async fn start_again(&self) -> Result<()> {
        let log = self.log_path()?;
        let options = self.options();
        self.pg_ctl(&["-l", &log, "-o", &options, "-w", "-t", "60", "start"])
            .await
    }

    /// `pg_ctl restart -m immediate`: the server dies at once and starts
    /// again with the same settings; returns once it accepts connections.
    pub async fn restart_immediately(&self) -> Result<()> {
        let log = self.log_path()?;
        let options = self.options();
        let args = [
            "-m",
            "immediate",
            "-l",
            &log,
            "-o",
            &options,
            "-w",
            "-t",
            "60",
            "restart",
        ];
        self.pg_ctl(&args).await
    }

    /// Where the server logs. Every start names it: a server started
    /// without a log file would hold `pg_ctl`'s output pipes open, and
    /// waiting for `pg_ctl` would never end.
    fn log_path(&self) -> Result<String> {
        let log = self.root.path().join("server.log");
        let log = log.to_str().context("temporary path is not UTF-8")?;
        Ok(log.to_owned())
    }

    /// What the server logged, for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
    }

    fn options(&self) -> String {
        let dir = self.root.path().display();
        let mut options = format!("-c port={} -c unix_socket_directories={dir}", self.port);
        for setting in SETTINGS {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        options
    }

    async fn initdb(&self) -> Result<()> {
        let initdb = self.bin.join("initdb");
        let data = self.data.to_str().context("temporary path is not UTF-8")?;
        let args = ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync"];
        run(&mut self.command(&initdb, &args)).await
    }

    async fn pg_ctl(&self, args: &[&str]) -> Result<()> {
        let data = self.data.to_str().context("temporary path is not UTF-8")?;
        let mut all = vec!["-D", data];
        all.extend_from_slice(args);
        let ran = run(&mut self.command(&self.bin.join("pg_ctl"), &all)).await;
        ran.with_context(|| format!("server log:\n{}", self.log_text()))
    }

    /// `program args`, as the `postgres` user when the tests run as root.
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::from(self.blocking_command(program, args));
        command.kill_on_drop(true);
        command
    }

    fn blocking_command(&self, program: &Path, args: &[&str]) -> std::process::Command {
        let mut command = if self.as_postgres {
            let mut runuser = std::process::Command::new("runuser");
            runuser.args(["-u", "postgres", "--"]).arg(program);
            runuser
        } else {
            std::process::Command::new(program)
        };
        command.args(args);
        command
    }
}

impl Drop for PgServer {
    /// Stops the server before its directory goes; a test that failed
    /// half-way must not leave a server running.
    fn drop(&mut self) {
        let Some(data) = self.data.to_str() else {
            return;
        };
        let args = ["-D", data, "-m", "immediate", "-w", "stop"];
        let pg_ctl = self.bin.join("pg_ctl");
        // Already stopped is fine: there is nothing to report to.
        let _ = self.blocking_command(&pg_ctl, &args).output();
    }
}

/// The directory of `initdb` and `pg_ctl`.
fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: set PG_BINDIR to Postgres's bin directory")?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    found.sort();
    found
        .pop()
        .context("no initdb under /usr/lib/postgresql/*/bin: set PG_BINDIR")
}

async fn running_as_root() -> Result<bool> {
    let out = Command::new("id").arg("-u").output().await?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn run(command: &mut Command) -> Result<()> {
    let out = tokio::time::timeout(COMMAND_DEADLINE, command.output())
        .await
        .with_context(|| format!("{command:?} still running after {COMMAND_DEADLINE:?}"))?
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
