//! The objects each project holds: lookups, batched inserts, and what `fsck` reads and drops.

use std::collections::{HashMap, HashSet};

use lode_proto::{HashKind, ObjectId};

use super::SqliteIndex;
use crate::db::{IndexResult, ObjectRef};

/// SQLite limits bound parameters per statement; batches are cut to stay well below it.
const IN_CHUNK: usize = 500;

/// Sizes of the objects among `oids` that the project holds, in one query per
/// `IN_CHUNK` ids; objects it does not hold are left out.
pub(super) async fn object_sizes(
    ix: &SqliteIndex,
    project_id: i64,
    kind: HashKind,
    oids: &[ObjectId],
) -> IndexResult<HashMap<ObjectId, u64>> {
    let mut found = HashMap::with_capacity(oids.len());
    for chunk in oids.chunks(IN_CHUNK) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let sql = format!(
                "SELECT oid, size FROM project_objects WHERE project_id = ? AND kind = ? AND oid IN ({placeholders})"
            );
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql)
            .bind(project_id)
            .bind(kind.as_str());
        for oid in chunk {
            q = q.bind(oid.to_string());
        }
        for (oid, size) in q.fetch_all(&ix.pool).await? {
            if let Ok(oid) = oid.parse::<ObjectId>() {
                found.insert(oid, size.max(0) as u64);
            }
        }
    }
    Ok(found)
}

/// Like [`Db::add_objects`], saying for each reference whether it was new.
pub(super) async fn add_objects_each(
    ix: &SqliteIndex,
    refs: &[ObjectRef],
) -> IndexResult<Vec<bool>> {
    if refs.is_empty() {
        // An INSERT needs at least one row.
        return Ok(Vec::new());
    }
    let mut added = vec![false; refs.len()];
    // Many rows per statement (each statement is a round trip to SQLite's worker thread);
    // RETURNING names the rows that were actually inserted.
    let rows_per_insert = IN_CHUNK / 5;
    if refs.len() <= rows_per_insert {
        // One statement is a transaction of its own: one round trip instead of three
        // (begin, insert, commit), for the group commit's usual batch.
        insert_refs(&ix.writer, refs, &mut added).await?;
        return Ok(added);
    }
    let mut tx = ix.writer.begin().await?;
    for (chunk, added) in refs
        .chunks(rows_per_insert)
        .zip(added.chunks_mut(rows_per_insert))
    {
        insert_refs(&mut *tx, chunk, added).await?;
    }
    tx.commit().await?;
    Ok(added)
}

/// The subset of `oids` the project does not hold, in the given order.
pub(super) async fn missing_objects(
    ix: &SqliteIndex,
    project_id: i64,
    kind: HashKind,
    oids: &[ObjectId],
) -> IndexResult<Vec<ObjectId>> {
    let mut missing = Vec::new();
    for chunk in oids.chunks(IN_CHUNK) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let sql = format!(
                "SELECT oid FROM project_objects WHERE project_id = ? AND kind = ? AND oid IN ({placeholders})"
            );
        let mut q = sqlx::query_scalar::<_, String>(&sql)
            .bind(project_id)
            .bind(kind.as_str());
        for oid in chunk {
            q = q.bind(oid.to_string());
        }
        let present: HashSet<String> = q.fetch_all(&ix.pool).await?.into_iter().collect();
        missing.extend(
            chunk
                .iter()
                .filter(|o| !present.contains(&o.to_string()))
                .copied(),
        );
    }
    Ok(missing)
}

/// Every (kind, oid, size) referenced by any project, deduplicated; for fsck.
pub(super) async fn all_referenced(ix: &SqliteIndex) -> IndexResult<Vec<(HashKind, String, u64)>> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT kind, oid, MAX(size) FROM project_objects GROUP BY kind, oid")
            .fetch_all(&ix.pool)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, o, s)| Some((k.parse().ok()?, o, s.max(0) as u64)))
        .collect())
}

/// Drops every project's reference to an object (its blob is gone or corrupt).
pub(super) async fn forget_object(ix: &SqliteIndex, kind: HashKind, oid: &str) -> IndexResult<u64> {
    let done = sqlx::query("DELETE FROM project_objects WHERE kind = ? AND oid = ?")
        .bind(kind.as_str())
        .bind(oid)
        .execute(&ix.pool)
        .await?;
    Ok(done.rows_affected())
}

/// Every `.dir` manifest any project holds: (project id, project name, kind, oid).
pub(super) async fn all_manifests(
    ix: &SqliteIndex,
) -> IndexResult<Vec<(i64, String, HashKind, ObjectId)>> {
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT o.project_id, p.name, o.kind, o.oid FROM project_objects o
             JOIN projects p ON p.id = o.project_id WHERE o.oid LIKE '%.dir'",
    )
    .fetch_all(&ix.pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(pid, name, k, o)| Some((pid, name, k.parse().ok()?, o.parse().ok()?)))
        .collect())
}

/// Drops one project's reference to an object.
pub(super) async fn forget_project_object(
    ix: &SqliteIndex,
    project_id: i64,
    kind: HashKind,
    oid: &ObjectId,
) -> IndexResult<()> {
    sqlx::query("DELETE FROM project_objects WHERE project_id = ? AND kind = ? AND oid = ?")
        .bind(project_id)
        .bind(kind.as_str())
        .bind(oid.to_string())
        .execute(&ix.pool)
        .await?;
    Ok(())
}

/// Projects that reference an object, for reports.
pub(super) async fn projects_holding(
    ix: &SqliteIndex,
    kind: HashKind,
    oid: &str,
) -> IndexResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT p.name FROM project_objects o JOIN projects p ON p.id = o.project_id
             WHERE o.kind = ? AND o.oid = ? ORDER BY p.name",
    )
    .bind(kind.as_str())
    .bind(oid)
    .fetch_all(&ix.pool)
    .await?)
}

/// Objects stored across all projects (counting shared blobs once per project).
pub(super) async fn count_object_refs(ix: &SqliteIndex) -> IndexResult<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM project_objects")
        .fetch_one(&ix.pool)
        .await?;
    Ok(n.max(0) as u64)
}

type InsertedRef = (i64, String, String);

/// Inserts `refs` in one statement, keeping existing rows, and sets `added[i]` for each
/// reference that was new (the first with its key in the batch is the one that added it).
async fn insert_refs<'e>(
    exec: impl sqlx::SqliteExecutor<'e>,
    refs: &[ObjectRef],
    added: &mut [bool],
) -> IndexResult<()> {
    let values = vec!["(?, ?, ?, ?, ?)"; refs.len()].join(", ");
    let sql = format!(
        "INSERT INTO project_objects (project_id, kind, oid, size, created_at)
         VALUES {values} ON CONFLICT DO NOTHING RETURNING project_id, kind, oid"
    );
    let names: Vec<String> = refs.iter().map(|r| r.oid.to_string()).collect();
    let mut q = sqlx::query_as::<_, InsertedRef>(&sql);
    for (r, name) in refs.iter().zip(&names) {
        q = q
            .bind(r.project_id)
            .bind(r.kind.as_str())
            .bind(name.as_str())
            .bind(r.size as i64)
            .bind(r.created_at);
    }
    let inserted = q.fetch_all(exec).await?;
    for (pid, kind, oid) in inserted {
        if let Some(i) = refs
            .iter()
            .zip(&names)
            .position(|(r, name)| r.project_id == pid && r.kind.as_str() == kind && *name == oid)
        {
            added[i] = true;
        }
    }
    Ok(())
}
