//! The objects each project holds: lookups of many ids, batched inserts, and what `fsck` and
//! garbage collection drop.

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

/// Drops every project's reference to an object (its blob is gone or corrupt).
pub(super) async fn forget_object(ix: &SqliteIndex, kind: HashKind, oid: &str) -> IndexResult<u64> {
    let done = sqlx::query("DELETE FROM project_objects WHERE kind = ? AND oid = ?")
        .bind(kind.as_str())
        .bind(oid)
        .execute(&ix.pool)
        .await?;
    Ok(done.rows_affected())
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

crate::db::shared_sql::objects!(crate::db::sqlite::SqliteIndex);
