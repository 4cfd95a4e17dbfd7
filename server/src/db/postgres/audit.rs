//! The audit log: appended in batches, read newest first.

use lode_proto::api::AuditEntry;

use super::PgIndex;
use crate::db::{AuditEvent, IndexResult};

/// One statement for the whole batch: the events travel as arrays, in order.
pub(super) async fn append_audit(ix: &PgIndex, events: &[AuditEvent]) -> IndexResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&AuditEvent) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, project, target, detail)
             SELECT at, actor, action, project, target, detail
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[])
                 WITH ORDINALITY AS e(at, actor, action, project, target, detail, n)
             ORDER BY n",
    )
    .bind(events.iter().map(|e| e.at).collect::<Vec<_>>())
    .bind(column(|e| Some(e.actor.clone())))
    .bind(column(|e| Some(e.action.clone())))
    .bind(column(|e| e.project.clone()))
    .bind(column(|e| e.target.clone()))
    .bind(column(|e| e.detail.clone()))
    .execute(&ix.pool)
    .await?;
    Ok(())
}

/// Newest first; `before` pages backwards by id.
pub(super) async fn list_audit(
    ix: &PgIndex,
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
             WHERE ($1::TEXT IS NULL OR project = $1) AND ($2::BIGINT IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
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
