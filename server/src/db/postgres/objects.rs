//! The objects each project holds: lookups, batched inserts, what `fsck` reads and drops, and
//! what server-side garbage collection reads and drops. Sets of ids travel as one array
//! parameter, so every lookup or insert is one statement whatever its size.

use std::collections::{HashMap, HashSet};

use lode_proto::{HashKind, ObjectId};

use super::coordination::bump_epoch;
use super::PgIndex;
use crate::db::{IndexResult, ObjectRef};

fn names(oids: &[ObjectId]) -> Vec<String> {
    oids.iter().map(ObjectId::to_string).collect()
}

/// Sizes of the objects among `oids` that the project holds.
pub(super) async fn object_sizes(
    ix: &PgIndex,
    project_id: i64,
    kind: HashKind,
    oids: &[ObjectId],
) -> IndexResult<HashMap<ObjectId, u64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT oid, size FROM project_objects
             WHERE project_id = $1 AND kind = $2 AND oid = ANY($3::TEXT[])",
    )
    .bind(project_id)
    .bind(kind.as_str())
    .bind(names(oids))
    .fetch_all(&ix.pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(oid, size)| Some((oid.parse().ok()?, size.max(0) as u64)))
        .collect())
}

/// Records references in one statement, keeping existing rows; says for each whether it was
/// new (the first of equal references in the batch is the one that added it).
pub(super) async fn add_objects_each(ix: &PgIndex, refs: &[ObjectRef]) -> IndexResult<Vec<bool>> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let oids: Vec<String> = refs.iter().map(|r| r.oid.to_string()).collect();
    let inserted: Vec<(i64, String, String)> = sqlx::query_as(
        "INSERT INTO project_objects (project_id, kind, oid, size, created_at)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[])
             ON CONFLICT DO NOTHING RETURNING project_id, kind, oid",
    )
    .bind(refs.iter().map(|r| r.project_id).collect::<Vec<_>>())
    .bind(refs.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>())
    .bind(&oids)
    .bind(refs.iter().map(|r| r.size as i64).collect::<Vec<_>>())
    .bind(refs.iter().map(|r| r.created_at).collect::<Vec<_>>())
    .fetch_all(&ix.pool)
    .await?;
    let mut first: HashMap<(i64, &str, &str), usize> = HashMap::with_capacity(refs.len());
    for (i, (r, oid)) in refs.iter().zip(&oids).enumerate() {
        first
            .entry((r.project_id, r.kind.as_str(), oid.as_str()))
            .or_insert(i);
    }
    let mut added = vec![false; refs.len()];
    for (pid, kind, oid) in &inserted {
        if let Some(&i) = first.get(&(*pid, kind.as_str(), oid.as_str())) {
            added[i] = true;
        }
    }
    Ok(added)
}

/// The subset of `oids` the project does not hold, in the given order.
pub(super) async fn missing_objects(
    ix: &PgIndex,
    project_id: i64,
    kind: HashKind,
    oids: &[ObjectId],
) -> IndexResult<Vec<ObjectId>> {
    let present: HashSet<String> = sqlx::query_scalar(
        "SELECT oid FROM project_objects
             WHERE project_id = $1 AND kind = $2 AND oid = ANY($3::TEXT[])",
    )
    .bind(project_id)
    .bind(kind.as_str())
    .bind(names(oids))
    .fetch_all(&ix.pool)
    .await?
    .into_iter()
    .collect();
    Ok(oids
        .iter()
        .filter(|o| !present.contains(&o.to_string()))
        .copied()
        .collect())
}

/// Drops every project's reference to an object (its blob is gone or corrupt).
pub(super) async fn forget_object(ix: &PgIndex, kind: HashKind, oid: &str) -> IndexResult<u64> {
    let mut tx = ix.pool.begin().await?;
    let done = sqlx::query("DELETE FROM project_objects WHERE kind = $1 AND oid = $2")
        .bind(kind.as_str())
        .bind(oid)
        .execute(&mut *tx)
        .await?;
    bump_epoch(&mut tx).await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Drops one project's reference to an object.
pub(super) async fn forget_project_object(
    ix: &PgIndex,
    project_id: i64,
    kind: HashKind,
    oid: &ObjectId,
) -> IndexResult<()> {
    remove_refs(ix, project_id, &[(kind, *oid)]).await?;
    Ok(())
}

/// Drops the project's references to these objects and moves the removal epoch, in one
/// transaction.
pub(super) async fn remove_refs(
    ix: &PgIndex,
    project_id: i64,
    refs: &[(HashKind, ObjectId)],
) -> IndexResult<u64> {
    let mut tx = ix.pool.begin().await?;
    let done = sqlx::query(
        "DELETE FROM project_objects o USING UNNEST($2::TEXT[], $3::TEXT[]) AS r(kind, oid)
             WHERE o.project_id = $1 AND o.kind = r.kind AND o.oid = r.oid",
    )
    .bind(project_id)
    .bind(refs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
    .bind(refs.iter().map(|(_, o)| o.to_string()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    bump_epoch(&mut tx).await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// The subset of `oids` that some project other than `except` references.
pub(super) async fn referenced_elsewhere(
    ix: &PgIndex,
    except: i64,
    kind: HashKind,
    oids: &[ObjectId],
) -> IndexResult<HashSet<ObjectId>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT oid FROM project_objects
             WHERE project_id <> $1 AND kind = $2 AND oid = ANY($3::TEXT[])",
    )
    .bind(except)
    .bind(kind.as_str())
    .bind(names(oids))
    .fetch_all(&ix.pool)
    .await?;
    Ok(rows.into_iter().filter_map(|s| s.parse().ok()).collect())
}

crate::db::shared_sql::objects!(crate::db::postgres::PgIndex);
