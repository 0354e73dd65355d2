//! Opening a SQLite database from a `sqlite://PATH?mode=rwc` URL: the file
//! and its directory are created when missing, and every connection gets
//! the settings the store relies on.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::Error;

/// How long a connection waits for a lock another process holds (a
/// migration, a backup) before the statement fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection options for `url`, with its directory created.
///
/// WAL lets readers run beside the writer; `synchronous = NORMAL` is safe
/// with WAL (a power loss may drop the last commits, never corrupt the
/// file) and spares an fsync per commit; foreign keys are off by default
/// in SQLite and the schema's cascades need them.
pub(crate) fn options(url: &str) -> Result<SqliteConnectOptions, Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    if !in_memory(&options) {
        create_directory(&options)?;
    }
    Ok(options)
}

/// The writer pool (one connection, never closed while idle) and the
/// reader pool of up to `max_connections`. An in-memory database exists
/// only on its one connection, so it reads through the writer.
pub(crate) async fn pools(
    url: &str,
    max_connections: u32,
) -> Result<(SqlitePool, SqlitePool), Error> {
    let options = options(url)?;
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options.clone())
        .await?;
    if in_memory(&options) {
        return Ok((writer.clone(), writer));
    }
    let reader = SqlitePoolOptions::new()
        .max_connections(max_connections.max(1))
        .connect_with(options)
        .await?;
    Ok((writer, reader))
}

fn in_memory(options: &SqliteConnectOptions) -> bool {
    options.get_filename().as_os_str() == ":memory:"
}

fn create_directory(options: &SqliteConnectOptions) -> Result<(), Error> {
    let Some(parent) = options.get_filename().parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(parent).map_err(|err| Error::Database(sqlx::Error::Io(err)))
}
