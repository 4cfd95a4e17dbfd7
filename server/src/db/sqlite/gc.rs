//! Queries of server-side garbage collection: a project's references, dropping some of them,
//! and which blobs any project still references.

use std::collections::HashSet;

use lode_proto::{HashKind, ObjectId};

use super::SqliteIndex;
use crate::db::{HeldObject, IndexResult};

/// SQLite limits bound parameters per statement; batches are cut to stay well below it.
const IN_CHUNK: usize = 400;

/// Every object the project references. Rows whose kind or id do not parse are skipped:
/// they cannot name an object a client could keep.
pub(super) async fn project_objects(
    ix: &SqliteIndex,
    project_id: i64,
) -> IndexResult<Vec<HeldObject>> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT kind, oid, size, created_at FROM project_objects WHERE project_id = ?",
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

/// Drops the project's references to these objects, in one transaction.
pub(super) async fn remove_refs(
    ix: &SqliteIndex,
    project_id: i64,
    refs: &[(HashKind, ObjectId)],
) -> IndexResult<u64> {
    let mut tx = ix.pool.begin().await?;
    let mut removed = 0;
    for (kind, oid) in refs {
        let done = sqlx::query(
            "DELETE FROM project_objects WHERE project_id = ? AND kind = ? AND oid = ?",
        )
        .bind(project_id)
        .bind(kind.as_str())
        .bind(oid.to_string())
        .execute(&mut *tx)
        .await?;
        removed += done.rows_affected();
    }
    tx.commit().await?;
    Ok(removed)
}

/// The subset of `oids` that some project other than `except` references.
pub(super) async fn referenced_elsewhere(
    ix: &SqliteIndex,
    except: i64,
    kind: HashKind,
    oids: &[ObjectId],
) -> IndexResult<HashSet<ObjectId>> {
    let mut out = HashSet::new();
    for chunk in oids.chunks(IN_CHUNK) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let sql = format!(
            "SELECT DISTINCT oid FROM project_objects
                 WHERE project_id != ? AND kind = ? AND oid IN ({placeholders})"
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql)
            .bind(except)
            .bind(kind.as_str());
        for oid in chunk {
            q = q.bind(oid.to_string());
        }
        for s in q.fetch_all(&ix.pool).await? {
            if let Ok(o) = s.parse() {
                out.insert(o);
            }
        }
    }
    Ok(out)
}

/// Whether any project references the object.
pub(super) async fn is_referenced(
    ix: &SqliteIndex,
    kind: HashKind,
    oid: &ObjectId,
) -> IndexResult<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM project_objects WHERE kind = ? AND oid = ?")
            .bind(kind.as_str())
            .bind(oid.to_string())
            .fetch_one(&ix.pool)
            .await?;
    Ok(n > 0)
}
