//! What a run with faults must leave behind, read from the database: every
//! job done or dead, its attempt rows matching its counter and its events,
//! no job leased twice at once, no stale report accepted.
//!
//! The checks are one SQL file, `testkit/sql/invariants.sql`, that
//! `bench/chaos` runs too (through [`Counts::read`]), so the suite and the
//! chaos run check exactly the same things. Each row it returns is a figure (what
//! happened) or an invariant (how many records break it).

use std::fmt;

use anyhow::{Result, bail};
use sqlx::PgPool;

/// The checks, one query.
pub const SQL: &str = include_str!("../sql/invariants.sql");

/// One row of [`SQL`].
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Count {
    /// `figure` (what happened) or `invariant` (must be 0).
    pub kind: String,
    /// What is counted, in words.
    pub name: String,
    /// How many.
    pub count: i64,
}

impl Count {
    fn broken(&self) -> bool {
        self.kind == "invariant" && self.count != 0
    }
}

/// Every row of [`SQL`], in its order.
#[derive(Debug, Clone)]
pub struct Counts(pub Vec<Count>);

impl Counts {
    /// Runs the checks on `pool`'s database.
    pub async fn read(pool: &PgPool) -> Result<Counts> {
        let rows = sqlx::query_as(SQL).fetch_all(pool).await?;
        Ok(Counts(rows))
    }

    /// The figure or invariant called `name`; 0 when there is none.
    pub fn get(&self, name: &str) -> i64 {
        let row = self.0.iter().find(|row| row.name == name);
        row.map_or(0, |row| row.count)
    }

    /// Fails, listing every count, when any invariant is broken.
    pub fn ensure_hold(&self) -> Result<()> {
        if self.0.iter().any(Count::broken) {
            bail!("invariants broken:\n{self}");
        }
        Ok(())
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in &self.0 {
            let mark = if row.broken() { "  <- broken" } else { "" };
            writeln!(f, "{:>9}  {:>7}  {}{mark}", row.kind, row.count, row.name)?;
        }
        Ok(())
    }
}

/// Reads the counts of the database at `url`, prints them, and fails
/// when an invariant is broken.
pub async fn check(url: &str) -> Result<Counts> {
    let pool = PgPool::connect(url).await?;
    let counts = Counts::read(&pool).await;
    pool.close().await;
    let counts = counts?;
    eprintln!("{counts}");
    counts.ensure_hold()?;
    Ok(counts)
}
