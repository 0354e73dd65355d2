//! The playbook catalog: versions by path, never edited.

use baton_dsl::Playbook;
use sqlx::types::Json;

use super::Lite;
use super::rows::PlaybookRow;
use crate::error::Error;
use crate::model::PlaybookRecord;
use crate::store::catalog;
use crate::store::rows::stored_count;

impl Lite {
    pub(crate) async fn register_playbook(
        &self,
        playbook: &Playbook,
        yaml: &str,
    ) -> Result<PlaybookRecord, Error> {
        let mut tx = self.begin().await?;
        // Versions of one path are numbered one at a time: Postgres takes an
        // advisory lock for that; here the write transaction is the lock.
        let latest: Option<PlaybookRow> =
            sqlx::query_as("SELECT * FROM playbooks WHERE path = ?1 ORDER BY version DESC LIMIT 1")
                .bind(&playbook.path)
                .fetch_optional(tx.conn())
                .await?;
        let latest = latest.map(PlaybookRecord::try_from).transpose()?;
        if let Some(same) = catalog::unchanged(latest.as_ref(), yaml) {
            return Ok(same);
        }
        let version = catalog::next_version(latest.as_ref());
        let steps = catalog::step_names(playbook);
        let row: PlaybookRow = sqlx::query_as(
            "INSERT INTO playbooks (path, version, name, yaml, steps, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING *",
        )
        .bind(&playbook.path)
        .bind(stored_count(version))
        .bind(&playbook.name)
        .bind(yaml)
        .bind(Json(&steps))
        .bind(tx.now)
        .fetch_one(tx.conn())
        .await?;
        self.commit(tx).await?;
        row.try_into()
    }

    pub(crate) async fn get_playbook(
        &self,
        path: &str,
        version: u32,
    ) -> Result<PlaybookRecord, Error> {
        let row: Option<PlaybookRow> = sqlx::query_as(
            "SELECT * FROM playbooks WHERE path = ?1 AND (?2 = 0 OR version = ?2)
             ORDER BY version DESC LIMIT 1",
        )
        .bind(path)
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await?;
        let what = catalog::label(path, version);
        row.ok_or_else(|| Error::not_found("playbook", what))?
            .try_into()
    }

    pub(crate) async fn get_playbook_by_id(&self, id: i64) -> Result<PlaybookRecord, Error> {
        let row: Option<PlaybookRow> = sqlx::query_as("SELECT * FROM playbooks WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| Error::not_found("playbook", id))?
            .try_into()
    }

    pub(crate) async fn list_playbooks(&self, prefix: &str) -> Result<Vec<PlaybookRecord>, Error> {
        let rows: Vec<PlaybookRow> = sqlx::query_as(
            // No DISTINCT ON in SQLite: the latest version of each path
            // is the one no newer version of the same path outranks.
            "SELECT * FROM playbooks p
             WHERE substr(p.path, 1, length(?1)) = ?1
               AND NOT EXISTS (
                 SELECT 1 FROM playbooks n WHERE n.path = p.path AND n.version > p.version)
             ORDER BY p.path",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(PlaybookRecord::try_from).collect()
    }
}
