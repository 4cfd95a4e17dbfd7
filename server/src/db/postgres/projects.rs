//! Projects and their usage.

use super::PgIndex;
use crate::db::{IndexError, IndexResult};

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

crate::db::shared_sql::projects!(crate::db::postgres::PgIndex);
