//! The embedded engine: one SQLite file in the data folder, used by one serving process.
//!
//! High-volume writes (object references, audit events, token use) go through `writer`, a
//! single connection, so they queue in the pool instead of colliding on SQLite's write lock and
//! sleeping in its busy handler. Everything else uses `pool`. The coordination rules are kept in
//! this process's memory (see [`crate::db::coordination`]).

mod audit;
mod backup;
mod groups;
mod objects;
mod projects;
mod tokens;
mod users;

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use lode_proto::{HashKind, ObjectId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::blob_locks::BlobLocks;
use crate::datadir::DataDir;
use crate::db::{Hold, Index, IndexError, IndexFuture, IndexResult, Occupant};

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

    crate::db::shared_sql::shared_index_methods!();

    fn delete_project<'a>(&'a self, name: &'a str) -> IndexFuture<'a, ()> {
        Box::pin(async move {
            projects::delete_project(self, name).await?;
            self.removed();
            Ok(())
        })
    }

    fn forget_object<'a>(&'a self, kind: HashKind, oid: &'a str) -> IndexFuture<'a, u64> {
        Box::pin(async move {
            let n = objects::forget_object(self, kind, oid).await?;
            self.removed();
            Ok(n)
        })
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

    fn remove_refs<'a>(
        &'a self,
        project_id: i64,
        refs: &'a [(HashKind, ObjectId)],
    ) -> IndexFuture<'a, u64> {
        Box::pin(async move {
            let n = objects::remove_refs(self, project_id, refs).await?;
            self.removed();
            Ok(n)
        })
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
