//! The audit log: appended in batches, read newest first.

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

crate::db::shared_sql::audit!(crate::db::postgres::PgIndex);
