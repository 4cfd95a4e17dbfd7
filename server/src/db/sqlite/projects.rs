//! Projects and their usage.

use super::SqliteIndex;
use crate::db::{IndexError, IndexResult};

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

crate::db::shared_sql::projects!(crate::db::sqlite::SqliteIndex);
