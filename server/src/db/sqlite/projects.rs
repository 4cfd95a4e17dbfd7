//! Projects and their usage.

use lode_proto::api::{ProjectInfo, UsageInfo};

use super::SqliteIndex;
use crate::db::sqlx_error::unique;
use crate::db::{now, IndexError, IndexResult};

pub(super) async fn create_project(ix: &SqliteIndex, name: &str) -> IndexResult<ProjectInfo> {
    let at = now();
    sqlx::query("INSERT INTO projects (name, created_at) VALUES (?, ?)")
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

pub(super) async fn project_id(ix: &SqliteIndex, name: &str) -> IndexResult<Option<i64>> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT id FROM projects WHERE name = ?")
            .bind(name)
            .fetch_optional(&ix.pool)
            .await?,
    )
}

pub(super) async fn list_projects(ix: &SqliteIndex) -> IndexResult<Vec<ProjectInfo>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, created_at FROM projects ORDER BY name")
            .fetch_all(&ix.pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(name, created_at)| ProjectInfo { name, created_at })
        .collect())
}

/// Deletes the project with its grants, tokens and object references. Blobs stay on disk
/// until a garbage collection finds them unreferenced.
pub(super) async fn delete_project(ix: &SqliteIndex, name: &str) -> IndexResult<()> {
    let done = sqlx::query("DELETE FROM projects WHERE name = ?")
        .bind(name)
        .execute(&ix.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(IndexError::NotFound(format!("project '{name}'")));
    }
    Ok(())
}

pub(super) async fn usage(ix: &SqliteIndex, project_id: i64, name: &str) -> IndexResult<UsageInfo> {
    let (objects, bytes): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), SUM(size) FROM project_objects WHERE project_id = ?")
            .bind(project_id)
            .fetch_one(&ix.pool)
            .await?;
    Ok(UsageInfo {
        project: name.to_string(),
        objects: objects.max(0) as u64,
        bytes: bytes.unwrap_or(0).max(0) as u64,
    })
}
