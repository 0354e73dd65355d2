//! Migrations: up, down and up again leave a working schema on both
//! backends, and an unknown URL scheme is refused before connecting.

mod support;

use std::time::Duration;

use anyhow::Result;
use baton_broker::model::{ClaimRequest, NewJob};
use baton_broker::{BrokerConfig, Error, Store};
use baton_dsl::RetryPolicy;
use support::backend::{Backend, Harness, TestDb};

on_both_backends!(migrations_go_up_down_and_up_again);

async fn migrations_go_up_down_and_up_again(h: Harness) -> Result<()> {
    let db = TestDb::connect(&h.url).await?;
    assert!(
        tables(&db, h.backend).await? >= 6,
        "migrated schema is missing tables"
    );
    baton_broker::migrate_down(&h.url).await?;
    assert_eq!(
        tables(&db, h.backend).await?,
        0,
        "tables left after migrating down"
    );
    baton_broker::migrate(&h.url).await?;
    baton_broker::migrate(&h.url).await?;

    let store = h.store().await?;
    let job = NewJob {
        queue: "q".into(),
        kind: "noop".into(),
        payload: serde_json::json!({}),
        priority: 0,
        run_at: None,
        retry: RetryPolicy::default(),
        idempotency_key: None,
    };
    store.enqueue(vec![job]).await?;
    let request = ClaimRequest {
        worker: "w".into(),
        queues: vec!["q".into()],
        kinds: vec![],
        limit: 1,
        lease_timeout: Duration::from_secs(30),
    };
    let leased = store.claim(&request).await?;
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].lease_token, 1, "lease tokens start again at 1");
    Ok(())
}

/// How many of Baton's tables exist.
async fn tables(db: &TestDb, backend: Backend) -> Result<i64> {
    let (count,): (i64,) = match backend {
        Backend::Postgres => {
            db.fetch_one(
                "SELECT count(*) FROM information_schema.tables
                 WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
            )
            .await?
        }
        Backend::Sqlite => {
            db.fetch_one(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'
                 AND name NOT IN ('_sqlx_migrations', 'sqlite_sequence')",
            )
            .await?
        }
    };
    Ok(count)
}

#[tokio::test]
async fn an_unknown_database_scheme_is_refused() {
    let config = BrokerConfig::new("mysql://user:secret@localhost/baton");
    let err = Store::connect(&config).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let err = baton_broker::migrate(&config.database_url)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
}
