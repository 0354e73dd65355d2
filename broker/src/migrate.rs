//! Schema migrations, embedded in the binary from `migrations/postgres`
//! and `migrations/sqlite`; the database URL's scheme picks the set.

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;

use crate::error::Error;
use crate::store::{Scheme, sqlite_options};

/// The Postgres migrations, reversible (`NNNN_name.up.sql` / `.down.sql`).
static POSTGRES: Migrator = sqlx::migrate!("../migrations/postgres");

/// The SQLite migrations: the same schema, numbered the same way.
static SQLITE: Migrator = sqlx::migrate!("../migrations/sqlite");

/// Applies every pending migration to the database at `url` (a SQLite
/// file is created, with its directory, when the URL says `mode=rwc`).
pub async fn migrate(url: &str) -> Result<(), Error> {
    run(url, Direction::Up).await
}

/// Reverts every applied migration of the database at `url`, newest first.
/// Destroys all data; meant for tests and for tearing a database down.
pub async fn migrate_down(url: &str) -> Result<(), Error> {
    run(url, Direction::Down).await
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Up,
    Down,
}

async fn run(url: &str, direction: Direction) -> Result<(), Error> {
    match Scheme::of(url)? {
        Scheme::Postgres => {
            let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
            let done = apply(&POSTGRES, &pool, direction).await;
            pool.close().await;
            done
        }
        Scheme::Sqlite => {
            let options = sqlite_options(url)?;
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            let done = apply(&SQLITE, &pool, direction).await;
            pool.close().await;
            done
        }
    }
}

async fn apply<'a, A>(migrator: &Migrator, pool: A, direction: Direction) -> Result<(), Error>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    match direction {
        Direction::Up => migrator.run(pool).await?,
        Direction::Down => migrator.undo(pool, 0).await?,
    }
    Ok(())
}
