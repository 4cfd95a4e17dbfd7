//! The embedded engine: one SQLite file in the data folder, used by one serving process.
//!
//! High-volume writes (object references, audit events, token use) go through `writer`, a
//! single connection, so they queue in the pool instead of colliding on SQLite's write lock and
//! sleeping in its busy handler. Everything else uses `pool`. The coordination rules are kept in
//! this process's memory (see [`crate::db::coordination`]).

mod audit;
mod backup;
mod gc;
mod groups;
mod objects;
mod projects;
mod tokens;
mod users;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use lode_proto::api::{AuditEntry, GrantInfo, GroupInfo, ProjectInfo, UsageInfo, UserInfo};
use lode_proto::{HashKind, ObjectId, Role};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::blob_locks::BlobLocks;
use crate::datadir::DataDir;
use crate::db::{
    AuditEvent, Grantee, HeldObject, Hold, Index, IndexError, IndexFuture, IndexResult, NewToken,
    ObjectRef, Occupant, TokenRow,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

pub(crate) struct SqliteIndex {
    pool: SqlitePool,
    writer: SqlitePool,
    data: DataDir,
    blob_locks: BlobLocks,
    removals: AtomicU64,
}

impl SqliteIndex {
    /// Opens (creating if needed) `lode.db` in the data folder; [`Index::migrate`] brings its
    /// schema up to date.
    pub(crate) async fn connect(data: &DataDir, max_connections: u32) -> IndexResult<SqliteIndex> {
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(data.db_path())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a process crash; only power loss can drop the last
            // transactions, and blobs are fsynced before their index row is written anyway.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .min_connections(1)
            .connect_with(opts.clone())
            .await?;
        // Checkpoints copy each page changed since the last one back into the database once:
        // object references have random keys, so a longer interval (16 MiB of log instead of
        // 4) finds many index pages changed several times and writes them once.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(opts.pragma("wal_autocheckpoint", "4000"))
            .await?;
        Ok(SqliteIndex {
            pool,
            writer,
            data: data.clone(),
            blob_locks: BlobLocks::default(),
            removals: AtomicU64::new(0),
        })
    }

    /// Notes that references were removed, for [`Index::removal_epoch`].
    fn removed(&self) {
        self.removals.fetch_add(1, Ordering::AcqRel);
    }
}

impl Index for SqliteIndex {
    fn migrate(&self) -> IndexFuture<'_, ()> {
        Box::pin(async move {
            match MIGRATOR.run(&self.pool).await {
                // Checked before any migration runs, so the file is left as it was.
                Err(sqlx::migrate::MigrateError::VersionMissing(v)) => {
                    Err(IndexError::Invalid(format!(
                        "{} was written by a newer lode-server (schema version {v}; this one knows up to {}): run that version or a later one on it; nothing was changed",
                        self.data.db_path().display(),
                        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
                    )))
                }
                r => Ok(r?),
            }
        })
    }

    fn occupy(&self, who: Occupant) -> IndexFuture<'_, Hold> {
        Box::pin(async move {
            match who {
                Occupant::Admin => Ok(Hold::nothing()),
                Occupant::Server | Occupant::Fsck => {
                    let lock = self.data.lock().map_err(|source| IndexError::Occupied {
                        what: format!("data folder {}", self.data.path.display()),
                        source,
                    })?;
                    Ok(Hold::new(lock))
                }
            }
        })
    }

    fn ping(&self) -> IndexFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.writer.close().await;
            self.pool.close().await;
        })
    }

    fn backup_into<'a>(&'a self, dest: &'a DataDir) -> IndexFuture<'a, ()> {
        Box::pin(backup::backup_into(self, dest))
    }

    fn create_project<'a>(&'a self, name: &'a str) -> IndexFuture<'a, ProjectInfo> {
        Box::pin(projects::create_project(self, name))
    }

    fn project_id<'a>(&'a self, name: &'a str) -> IndexFuture<'a, Option<i64>> {
        Box::pin(projects::project_id(self, name))
    }

    fn list_projects(&self) -> IndexFuture<'_, Vec<ProjectInfo>> {
        Box::pin(projects::list_projects(self))
    }

    fn delete_project<'a>(&'a self, name: &'a str) -> IndexFuture<'a, ()> {
        Box::pin(async move {
            projects::delete_project(self, name).await?;
            self.removed();
            Ok(())
        })
    }

    fn usage<'a>(&'a self, project_id: i64, name: &'a str) -> IndexFuture<'a, UsageInfo> {
        Box::pin(projects::usage(self, project_id, name))
    }

    fn create_user<'a>(&'a self, name: &'a str, server_admin: bool) -> IndexFuture<'a, UserInfo> {
        Box::pin(users::create_user(self, name, server_admin))
    }

    fn ensure_admin_user<'a>(&'a self, name: &'a str) -> IndexFuture<'a, i64> {
        Box::pin(users::ensure_admin_user(self, name))
    }

    fn user_id<'a>(&'a self, name: &'a str) -> IndexFuture<'a, Option<i64>> {
        Box::pin(users::user_id(self, name))
    }

    fn list_users(&self) -> IndexFuture<'_, Vec<UserInfo>> {
        Box::pin(users::list_users(self))
    }

    fn delete_user<'a>(&'a self, name: &'a str) -> IndexFuture<'a, ()> {
        Box::pin(users::delete_user(self, name))
    }

    fn user_role(&self, user_id: i64, project_id: i64) -> IndexFuture<'_, Option<Role>> {
        Box::pin(users::user_role(self, user_id, project_id))
    }

    fn user_projects(&self, user_id: i64) -> IndexFuture<'_, Vec<ProjectInfo>> {
        Box::pin(users::user_projects(self, user_id))
    }

    fn create_group<'a>(&'a self, name: &'a str) -> IndexFuture<'a, GroupInfo> {
        Box::pin(groups::create_group(self, name))
    }

    fn delete_group<'a>(&'a self, name: &'a str) -> IndexFuture<'a, ()> {
        Box::pin(groups::delete_group(self, name))
    }

    fn list_groups(&self) -> IndexFuture<'_, Vec<GroupInfo>> {
        Box::pin(groups::list_groups(self))
    }

    fn add_member<'a>(&'a self, group: &'a str, user: &'a str) -> IndexFuture<'a, ()> {
        Box::pin(groups::add_member(self, group, user))
    }

    fn remove_member<'a>(&'a self, group: &'a str, user: &'a str) -> IndexFuture<'a, ()> {
        Box::pin(groups::remove_member(self, group, user))
    }

    fn set_grant<'a>(
        &'a self,
        project_id: i64,
        who: Grantee<'a>,
        role: Role,
    ) -> IndexFuture<'a, ()> {
        Box::pin(groups::set_grant(self, project_id, who, role))
    }

    fn remove_grant<'a>(&'a self, project_id: i64, who: Grantee<'a>) -> IndexFuture<'a, ()> {
        Box::pin(groups::remove_grant(self, project_id, who))
    }

    fn list_grants(&self, project_id: i64) -> IndexFuture<'_, Vec<GrantInfo>> {
        Box::pin(groups::list_grants(self, project_id))
    }

    fn insert_token<'a>(&'a self, token: &'a NewToken<'a>) -> IndexFuture<'a, ()> {
        Box::pin(tokens::insert_token(self, token))
    }

    fn token<'a>(&'a self, id: &'a str) -> IndexFuture<'a, Option<TokenRow>> {
        Box::pin(tokens::token(self, id))
    }

    fn list_tokens(
        &self,
        project_id: Option<i64>,
        user_id: Option<i64>,
    ) -> IndexFuture<'_, Vec<TokenRow>> {
        Box::pin(tokens::list_tokens(self, project_id, user_id))
    }

    fn revoke_token<'a>(&'a self, id: &'a str) -> IndexFuture<'a, ()> {
        Box::pin(tokens::revoke_token(self, id))
    }

    fn touch_tokens<'a>(&'a self, used: &'a [(String, i64)]) -> IndexFuture<'a, ()> {
        Box::pin(tokens::touch_tokens(self, used))
    }

    fn object_sizes<'a>(
        &'a self,
        project_id: i64,
        kind: HashKind,
        oids: &'a [ObjectId],
    ) -> IndexFuture<'a, HashMap<ObjectId, u64>> {
        Box::pin(objects::object_sizes(self, project_id, kind, oids))
    }

    fn add_objects_each<'a>(&'a self, refs: &'a [ObjectRef]) -> IndexFuture<'a, Vec<bool>> {
        Box::pin(objects::add_objects_each(self, refs))
    }

    fn missing_objects<'a>(
        &'a self,
        project_id: i64,
        kind: HashKind,
        oids: &'a [ObjectId],
    ) -> IndexFuture<'a, Vec<ObjectId>> {
        Box::pin(objects::missing_objects(self, project_id, kind, oids))
    }

    fn all_referenced(&self) -> IndexFuture<'_, Vec<(HashKind, String, u64)>> {
        Box::pin(objects::all_referenced(self))
    }

    fn forget_object<'a>(&'a self, kind: HashKind, oid: &'a str) -> IndexFuture<'a, u64> {
        Box::pin(async move {
            let n = objects::forget_object(self, kind, oid).await?;
            self.removed();
            Ok(n)
        })
    }

    fn all_manifests(&self) -> IndexFuture<'_, Vec<(i64, String, HashKind, ObjectId)>> {
        Box::pin(objects::all_manifests(self))
    }

    fn forget_project_object<'a>(
        &'a self,
        project_id: i64,
        kind: HashKind,
        oid: &'a ObjectId,
    ) -> IndexFuture<'a, ()> {
        Box::pin(async move {
            objects::forget_project_object(self, project_id, kind, oid).await?;
            self.removed();
            Ok(())
        })
    }

    fn projects_holding<'a>(
        &'a self,
        kind: HashKind,
        oid: &'a str,
    ) -> IndexFuture<'a, Vec<String>> {
        Box::pin(objects::projects_holding(self, kind, oid))
    }

    fn count_object_refs(&self) -> IndexFuture<'_, u64> {
        Box::pin(objects::count_object_refs(self))
    }

    fn project_objects(&self, project_id: i64) -> IndexFuture<'_, Vec<HeldObject>> {
        Box::pin(gc::project_objects(self, project_id))
    }

    fn remove_refs<'a>(
        &'a self,
        project_id: i64,
        refs: &'a [(HashKind, ObjectId)],
    ) -> IndexFuture<'a, u64> {
        Box::pin(async move {
            let n = gc::remove_refs(self, project_id, refs).await?;
            self.removed();
            Ok(n)
        })
    }

    fn referenced_elsewhere<'a>(
        &'a self,
        except: i64,
        kind: HashKind,
        oids: &'a [ObjectId],
    ) -> IndexFuture<'a, HashSet<ObjectId>> {
        Box::pin(gc::referenced_elsewhere(self, except, kind, oids))
    }

    fn is_referenced<'a>(&'a self, kind: HashKind, oid: &'a ObjectId) -> IndexFuture<'a, bool> {
        Box::pin(gc::is_referenced(self, kind, oid))
    }

    fn append_audit<'a>(&'a self, events: &'a [AuditEvent]) -> IndexFuture<'a, ()> {
        Box::pin(audit::append_audit(self, events))
    }

    fn list_audit<'a>(
        &'a self,
        project: Option<&'a str>,
        before: Option<i64>,
        limit: u32,
    ) -> IndexFuture<'a, Vec<AuditEntry>> {
        Box::pin(audit::list_audit(self, project, before, limit))
    }

    fn gc_lease(&self) -> IndexFuture<'_, Hold> {
        Box::pin(async move { Ok(self.blob_locks.collection().await) })
    }

    fn hold_for_upload<'a>(&'a self, blobs: &'a [(HashKind, ObjectId)]) -> IndexFuture<'a, Hold> {
        Box::pin(async move { Ok(self.blob_locks.upload(blobs).await) })
    }

    fn hold_for_delete(&self, _kind: HashKind, oid: ObjectId) -> IndexFuture<'_, Hold> {
        Box::pin(async move { Ok(self.blob_locks.delete(&oid).await) })
    }

    fn removal_epoch(&self) -> IndexFuture<'_, u64> {
        Box::pin(async move { Ok(self.removals.load(Ordering::Acquire)) })
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use super::SqliteIndex;
    use crate::datadir::DataDir;
    use crate::db::Index;

    /// A migrated index in a new temporary folder, removed when the folder is dropped.
    pub(crate) async fn temp_index() -> (Arc<dyn Index>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = DataDir::prepare(dir.path()).expect("data folder");
        let ix = SqliteIndex::connect(&data, 2).await.expect("open index");
        ix.migrate().await.expect("migrate");
        (Arc::new(ix), dir)
    }
}

#[cfg(test)]
mod conformance {
    crate::db::conformance::index_conformance!(super::testing::temp_index);
}
