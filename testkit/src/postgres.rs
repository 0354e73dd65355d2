//! A fresh database per test, on the cluster named by `DATABASE_URL` or on
//! a test's own server ([`crate::pg_server`]).

use anyhow::{Context, Result};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The administrative URL of the test cluster (its `postgres` database).
pub fn admin_url() -> Result<String> {
    std::env::var("DATABASE_URL")
        .context("DATABASE_URL is not set: run the tests with scripts/test, which starts Postgres")
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_database(prefix: &str) -> Result<String> {
    fresh_database_on(&admin_url()?, prefix).await
}

/// Creates an empty database with a unique name on the server whose
/// administrative URL is `admin` and returns its URL.
pub async fn fresh_database_on(admin: &str, prefix: &str) -> Result<String> {
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(admin)
        .await
        .with_context(|| format!("connecting to {admin}"))?;
    let create = format!("CREATE DATABASE \"{name}\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating database {name}"))?;
    Ok(database_url(admin, &name))
}

/// `admin` with its database name replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(root, _)| root);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        let url = database_url("postgres://u@h:5/postgres?sslmode=disable", "t1");
        assert_eq!(url, "postgres://u@h:5/t1?sslmode=disable");
    }
}
