//! The audit log: appended in batches, read newest first.

use super::SqliteIndex;
use crate::db::{AuditEvent, IndexResult};

/// Rows per multi-row INSERT (6 parameters each, well under SQLite's limit).
const ROWS_PER_INSERT: usize = 200;

pub(super) async fn append_audit(ix: &SqliteIndex, events: &[AuditEvent]) -> IndexResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    // Many rows per statement: each statement is a round trip to SQLite's worker thread.
    let mut tx = ix.writer.begin().await?;
    for chunk in events.chunks(ROWS_PER_INSERT) {
        let rows = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO audit_log (at, actor, action, project, target, detail) VALUES {rows}"
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(e.at)
                .bind(&e.actor)
                .bind(&e.action)
                .bind(&e.project)
                .bind(&e.target)
                .bind(&e.detail);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

crate::db::shared_sql::audit!(crate::db::sqlite::SqliteIndex);
