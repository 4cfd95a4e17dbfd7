//! Reads of the objects projects hold, for `fsck`, reports and garbage collection. Lookups of
//! many ids and every write differ by engine (how a set of ids travels, the removal epoch).

/// Defines the functions for the index type `$Index`.
macro_rules! objects {
    ($Index:ty) => {
        mod shared {
            use lode_proto::{HashKind, ObjectId};

            use crate::db::{HeldObject, IndexResult};
            type Ix = $Index;

            /// Every (kind, oid, size) referenced by any project, deduplicated; for fsck.
            pub(in crate::db) async fn all_referenced(
                ix: &Ix,
            ) -> IndexResult<Vec<(HashKind, String, u64)>> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT kind, oid, MAX(size) FROM project_objects GROUP BY kind, oid",
                )
                .fetch_all(&ix.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|(k, o, s)| Some((k.parse().ok()?, o, s.max(0) as u64)))
                    .collect())
            }

            /// Every `.dir` manifest any project holds: (project id, project name, kind, oid).
            pub(in crate::db) async fn all_manifests(
                ix: &Ix,
            ) -> IndexResult<Vec<(i64, String, HashKind, ObjectId)>> {
                let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
                    "SELECT o.project_id, p.name, o.kind, o.oid FROM project_objects o
                         JOIN projects p ON p.id = o.project_id WHERE o.oid LIKE '%.dir'",
                )
                .fetch_all(&ix.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|(pid, name, k, o)| {
                        Some((pid, name, k.parse().ok()?, o.parse().ok()?))
                    })
                    .collect())
            }

            /// Projects that reference an object, for reports.
            pub(in crate::db) async fn projects_holding(
                ix: &Ix,
                kind: HashKind,
                oid: &str,
            ) -> IndexResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT p.name FROM project_objects o JOIN projects p ON p.id = o.project_id
                         WHERE o.kind = $1 AND o.oid = $2 ORDER BY p.name",
                )
                .bind(kind.as_str())
                .bind(oid)
                .fetch_all(&ix.pool)
                .await?)
            }

            /// Objects stored across all projects (counting shared blobs once per project).
            pub(in crate::db) async fn count_object_refs(ix: &Ix) -> IndexResult<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM project_objects")
                    .fetch_one(&ix.pool)
                    .await?;
                Ok(n.max(0) as u64)
            }

            /// Every object the project references. Rows whose kind or id do not parse are
            /// skipped: they cannot name an object a client could keep.
            pub(in crate::db) async fn project_objects(
                ix: &Ix,
                project_id: i64,
            ) -> IndexResult<Vec<HeldObject>> {
                let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
                    "SELECT kind, oid, size, created_at FROM project_objects WHERE project_id = $1",
                )
                .bind(project_id)
                .fetch_all(&ix.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|(k, o, size, at)| {
                        Some(HeldObject {
                            kind: k.parse().ok()?,
                            oid: o.parse().ok()?,
                            size: size.max(0) as u64,
                            created_at: at,
                        })
                    })
                    .collect())
            }

            /// Whether any project references the object.
            pub(in crate::db) async fn is_referenced(
                ix: &Ix,
                kind: HashKind,
                oid: &ObjectId,
            ) -> IndexResult<bool> {
                Ok(sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM project_objects WHERE kind = $1 AND oid = $2)",
                )
                .bind(kind.as_str())
                .bind(oid.to_string())
                .fetch_one(&ix.pool)
                .await?)
            }
        }

        pub(super) use shared::*;
    };
}

pub(crate) use objects;
