//! The store backends under test. Each behaviour test is written once as
//! an async fn taking a [`Harness`] and run on both backends by
//! [`on_both_backends!`]: Postgres on a fresh database of its own (from
//! `DATABASE_URL`), SQLite on a fresh file in a temporary directory.

use anyhow::Result;
use baton_broker::{BrokerConfig, Store};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, PgPool, SqlitePool};

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A migrated database of the chosen backend, removed when dropped
/// (SQLite's directory; Postgres databases go with the throwaway cluster).
pub struct Harness {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    /// A fresh, migrated database on `backend`.
    pub async fn new(backend: Backend) -> Result<Harness> {
        match backend {
            Backend::Postgres => Ok(Harness {
                backend,
                url: super::fresh_database().await?,
                _dir: None,
            }),
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                // A directory that does not exist yet: connecting creates it.
                let path = dir.path().join("data").join("baton.db");
                let url = format!("sqlite://{}?mode=rwc", path.display());
                baton_broker::migrate(&url).await?;
                Ok(Harness {
                    backend,
                    url,
                    _dir: Some(dir),
                })
            }
        }
    }

    /// The test configuration on this database.
    pub fn config(&self) -> BrokerConfig {
        super::config(&self.url)
    }

    /// A store on this database.
    pub async fn store(&self) -> Result<Store> {
        Ok(Store::connect(&self.config()).await?)
    }

    /// A broker serving on this database.
    pub async fn broker(&self) -> Result<super::TestBroker> {
        super::start_on(self.config()).await
    }
}

/// A pool on a test database, for assertions on stored rows: the same
/// portable SQL runs on either backend.
pub enum TestDb {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl TestDb {
    /// A pool on the database at `url`, by its scheme.
    pub async fn connect(url: &str) -> Result<TestDb> {
        if url.starts_with("sqlite:") {
            Ok(TestDb::Sqlite(SqlitePool::connect(url).await?))
        } else {
            Ok(TestDb::Postgres(PgPool::connect(url).await?))
        }
    }

    /// Every row `sql` returns.
    pub async fn fetch_all<T>(&self, sql: &'static str) -> Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        Ok(match self {
            TestDb::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await?,
            TestDb::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await?,
        })
    }

    /// The one row `sql` returns.
    pub async fn fetch_one<T>(&self, sql: &'static str) -> Result<T>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        let mut rows = self.fetch_all(sql).await?;
        anyhow::ensure!(rows.len() == 1, "expected one row, got {}", rows.len());
        Ok(rows.remove(0))
    }

    /// Makes every queued job due now, behind the broker's back, and wakes
    /// its lease streams: Postgres by a NOTIFY; SQLite's trigger records
    /// the wake-up, which `store`'s next commit (an empty enqueue) fires.
    pub async fn make_all_due(&self, store: &Store) -> Result<()> {
        match self {
            TestDb::Postgres(pool) => {
                sqlx::query("UPDATE jobs SET available_at = now() WHERE state = 'queued'")
                    .execute(pool)
                    .await?;
                sqlx::query("NOTIFY baton_jobs").execute(pool).await?;
            }
            TestDb::Sqlite(pool) => {
                sqlx::query("UPDATE jobs SET available_at = ?1 WHERE state = 'queued'")
                    .bind(chrono::Utc::now().timestamp_millis())
                    .execute(pool)
                    .await?;
                store.enqueue(Vec::new()).await?;
            }
        }
        Ok(())
    }

    /// Backdates every current lease so that it has expired a second ago.
    pub async fn expire_leases(&self) -> Result<()> {
        let past = chrono::Utc::now() - chrono::Duration::seconds(1);
        let sql = "UPDATE jobs SET lease_expires_at = $1 WHERE state = 'leased'";
        match self {
            TestDb::Postgres(pool) => {
                sqlx::query(sql).bind(past).execute(pool).await?;
            }
            TestDb::Sqlite(pool) => {
                sqlx::query(sql)
                    .bind(past.timestamp_millis())
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Runs each named `async fn(Harness) -> Result<()>` as two tests,
/// `NAME::on_postgres` and `NAME::on_sqlite`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use super::support::backend::{Backend, Harness};

                #[tokio::test]
                async fn on_postgres() -> anyhow::Result<()> {
                    super::$name(Harness::new(Backend::Postgres).await?).await
                }

                #[tokio::test]
                async fn on_sqlite() -> anyhow::Result<()> {
                    super::$name(Harness::new(Backend::Sqlite).await?).await
                }
            }
        )+
    };
}
