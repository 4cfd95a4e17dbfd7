use std::collections::HashMap;

use lode_proto::{HashKind, ObjectId};

use super::{Db, DbResult};

/// One object a project holds.
#[derive(Debug, Clone)]
pub struct ObjectRef {
    pub project_id: i64,
    pub kind: HashKind,
    pub oid: ObjectId,
    pub size: u64,
    pub created_at: i64,
}

/// SQLite limits bound parameters per statement; batches are cut to stay well below it.
const IN_CHUNK: usize = 500;

impl Db {
    /// Size of the object if the project holds it.
    pub async fn object_size(
        &self,
        project_id: i64,
        kind: HashKind,
        oid: &ObjectId,
    ) -> DbResult<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT size FROM project_objects WHERE project_id = ? AND kind = ? AND oid = ?",
        )
        .bind(project_id)
        .bind(kind.as_str())
        .bind(oid.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(size.map(|s| s.max(0) as u64))
    }

    /// Sizes of the objects among `oids` that the project holds, in one query per
    /// `IN_CHUNK` ids; objects it does not hold are left out.
    pub async fn object_sizes(
        &self,
        project_id: i64,
        kind: HashKind,
        oids: &[ObjectId],
    ) -> DbResult<HashMap<ObjectId, u64>> {
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
            for (oid, size) in q.fetch_all(&self.pool).await? {
                if let Ok(oid) = oid.parse::<ObjectId>() {
                    found.insert(oid, size.max(0) as u64);
                }
            }
        }
        Ok(found)
    }

    /// Records references in one transaction; rows that already exist are kept as they are.
    /// Returns how many were new.
    pub async fn add_objects(&self, refs: &[ObjectRef]) -> DbResult<u64> {
        Ok(self
            .add_objects_each(refs)
            .await?
            .into_iter()
            .filter(|new| *new)
            .count() as u64)
    }

    /// Like [`Db::add_objects`], saying for each reference whether it was new.
    pub async fn add_objects_each(&self, refs: &[ObjectRef]) -> DbResult<Vec<bool>> {
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
            insert_refs(&self.writer, refs, &mut added).await?;
            return Ok(added);
        }
        let mut tx = self.writer.begin().await?;
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
    pub async fn missing_objects(
        &self,
        project_id: i64,
        kind: HashKind,
        oids: &[ObjectId],
    ) -> DbResult<Vec<ObjectId>> {
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
            let present: std::collections::HashSet<String> =
                q.fetch_all(&self.pool).await?.into_iter().collect();
            missing.extend(
                chunk
                    .iter()
                    .filter(|o| !present.contains(&o.to_string()))
                    .copied(),
            );
        }
        Ok(missing)
    }

    /// Same as [`Db::missing_objects`] but over raw digests of non-directory objects, as listed
    /// in a `.dir` manifest.
    pub async fn missing_digests(
        &self,
        project_id: i64,
        kind: HashKind,
        digests: &[[u8; 16]],
    ) -> DbResult<Vec<ObjectId>> {
        let oids: Vec<ObjectId> = digests
            .iter()
            .map(|d| ObjectId::from_digest(*d, false))
            .collect();
        self.missing_objects(project_id, kind, &oids).await
    }

    /// Every (kind, oid, size) referenced by any project, deduplicated; for fsck.
    pub async fn all_referenced(&self) -> DbResult<Vec<(HashKind, String, u64)>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT kind, oid, MAX(size) FROM project_objects GROUP BY kind, oid")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, o, s)| Some((k.parse().ok()?, o, s.max(0) as u64)))
            .collect())
    }

    /// Drops every project's reference to an object (its blob is gone or corrupt).
    pub async fn forget_object(&self, kind: HashKind, oid: &str) -> DbResult<u64> {
        let done = sqlx::query("DELETE FROM project_objects WHERE kind = ? AND oid = ?")
            .bind(kind.as_str())
            .bind(oid)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Every `.dir` manifest any project holds: (project id, project name, kind, oid).
    pub async fn all_manifests(&self) -> DbResult<Vec<(i64, String, HashKind, ObjectId)>> {
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT o.project_id, p.name, o.kind, o.oid FROM project_objects o
             JOIN projects p ON p.id = o.project_id WHERE o.oid LIKE '%.dir'",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(pid, name, k, o)| Some((pid, name, k.parse().ok()?, o.parse().ok()?)))
            .collect())
    }

    /// Drops one project's reference to an object.
    pub async fn forget_project_object(
        &self,
        project_id: i64,
        kind: HashKind,
        oid: &ObjectId,
    ) -> DbResult<()> {
        sqlx::query("DELETE FROM project_objects WHERE project_id = ? AND kind = ? AND oid = ?")
            .bind(project_id)
            .bind(kind.as_str())
            .bind(oid.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Projects that reference an object, for reports.
    pub async fn projects_holding(&self, kind: HashKind, oid: &str) -> DbResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT p.name FROM project_objects o JOIN projects p ON p.id = o.project_id
             WHERE o.kind = ? AND o.oid = ? ORDER BY p.name",
        )
        .bind(kind.as_str())
        .bind(oid)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Objects stored across all projects (counting shared blobs once per project).
    pub async fn count_object_refs(&self) -> DbResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM project_objects")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }
}

type InsertedRef = (i64, String, String);

/// Inserts `refs` in one statement, keeping existing rows, and sets `added[i]` for each
/// reference that was new (the first with its key in the batch is the one that added it).
async fn insert_refs<'e>(
    exec: impl sqlx::SqliteExecutor<'e>,
    refs: &[ObjectRef],
    added: &mut [bool],
) -> DbResult<()> {
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
