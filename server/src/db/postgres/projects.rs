//! Projects and their usage.

use lode_proto::api::{ProjectInfo, UsageInfo};

use super::PgIndex;
use crate::db::sqlx_error::unique;
use crate::db::{now, IndexError, IndexResult};

pub(super) async fn create_project(ix: &PgIndex, name: &str) -> IndexResult<ProjectInfo> {
    let at = now();
    sqlx::query("INSERT INTO projects (name, created_at) VALUES ($1, $2)")
        .bind(name)
        .bind(at)
        .execute(&ix.pool)
        .await
        .map_err(|e| unique(e, format!("project '{name}'")))?;
    Ok(ProjectInfo {
        name: name.to_string(),
        created_at: at,
    })
}

pub(super) async fn project_id(ix: &PgIndex, name: &str) -> IndexResult<Option<i64>> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT id FROM projects WHERE name = $1")
            .bind(name)
            .fetch_optional(&ix.pool)
            .await?,
    )
}

pub(super) async fn list_projects(ix: &PgIndex) -> IndexResult<Vec<ProjectInfo>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, created_at FROM projects ORDER BY name")
            .fetch_all(&ix.pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(name, created_at)| ProjectInfo { name, created_at })
        .collect())
}

/// Deletes the project with its grants, tokens and object references, and moves the removal
/// epoch in the same transaction.
pub(super) async fn delete_project(ix: &PgIndex, name: &str) -> IndexResult<()> {
    let mut tx = ix.pool.begin().await?;
    let done = sqlx::query("DELETE FROM projects WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(IndexError::NotFound(format!("project '{name}'")));
    }
    super::coordination::bump_epoch(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn usage(ix: &PgIndex, project_id: i64, name: &str) -> IndexResult<UsageInfo> {
    let (objects, bytes): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), SUM(size)::BIGINT FROM project_objects WHERE project_id = $1",
    )
    .bind(project_id)
    .fetch_one(&ix.pool)
    .await?;
    Ok(UsageInfo {
        project: name.to_string(),
        objects: objects.max(0) as u64,
        bytes: bytes.unwrap_or(0).max(0) as u64,
    })
}
