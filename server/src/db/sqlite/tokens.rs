//! Access tokens: their rows, revocation and last use.

use super::SqliteIndex;
use crate::db::IndexResult;

/// Records when tokens were last used, in one transaction.
pub(super) async fn touch_tokens(ix: &SqliteIndex, used: &[(String, i64)]) -> IndexResult<()> {
    if used.is_empty() {
        return Ok(());
    }
    let mut tx = ix.writer.begin().await?;
    for (id, at) in used {
        sqlx::query(
            "UPDATE tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

crate::db::shared_sql::tokens!(crate::db::sqlite::SqliteIndex, ties = "t.rowid");
