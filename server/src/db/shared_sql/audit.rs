//! The audit log, read newest first; appending differs by engine.

/// Defines the functions for the index type `$Index`.
macro_rules! audit {
    ($Index:ty) => {
        mod shared {
            use lode_proto::api::AuditEntry;

            use crate::db::IndexResult;
            type Ix = $Index;

            /// Newest first; `before` pages backwards by id.
            pub(in crate::db) async fn list_audit(
                ix: &Ix,
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
                         WHERE (CAST($1 AS TEXT) IS NULL OR project = $1)
                         AND (CAST($2 AS BIGINT) IS NULL OR id < $2)
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
        }

        pub(super) use shared::*;
    };
}

pub(crate) use audit;
