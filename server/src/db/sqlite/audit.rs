//! The audit log: appended in batches, read newest first.

use lode_proto::api::AuditEntry;

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

/// Newest first; `before` pages backwards by id.
pub(super) async fn list_audit(
    ix: &SqliteIndex,
    project: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> IndexResult<Vec<AuditEntry>> {
    type Row = (
        i64,
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, at, actor, action, project, target, detail FROM audit_log
             WHERE (?1 IS NULL OR project = ?1) AND (?2 IS NULL OR id < ?2)
             ORDER BY id DESC LIMIT ?3",
    )
    .bind(project)
    .bind(before)
    .bind(limit.clamp(1, 10_000) as i64)
    .fetch_all(&ix.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, at, actor, action, project, target, detail)| AuditEntry {
                id,
                at,
                actor,
                action,
                project,
                target,
                detail,
            },
        )
        .collect())
}
