//! The shared engine: a PostgreSQL database that any number of servers use at once.
//!
//! The schema is in `migrations/postgres/`; sqlx runs the migrations under an advisory lock, so
//! servers starting together migrate once. The coordination rules live in the database (see
//! [`coordination`]), and sets of ids travel as array parameters, so a batch is one statement.

mod audit;
mod coordination;
mod groups;
mod objects;
mod projects;
mod tokens;
mod users;

use std::time::Duration;

use futures::future::BoxFuture;
use lode_proto::{HashKind, ObjectId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::datadir::DataDir;
use crate::db::{Hold, Index, IndexError, IndexFuture, IndexResult, Occupant};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// How long a request waits for a connection: a lost database shows as errors, not as requests
/// hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the readiness check waits for the database's answer.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct PgIndex {
    pool: PgPool,
    options: PgConnectOptions,
    /// Names this process in the rows it holds.
    holder: String,
    live: coordination::LiveSet,
    renewer: tokio::task::JoinHandle<()>,
    epoch: coordination::EpochReads,
}

impl PgIndex {
    /// Connects to the database `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`, with the
    /// options libpq's URLs take, such as `sslmode`); [`Index::migrate`] brings its schema up to
    /// date.
    pub(crate) async fn connect(url: &str, max_connections: u32) -> IndexResult<PgIndex> {
        let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| {
            // The error never quotes the URL, which may hold a password.
            IndexError::Invalid(format!("database URL is not a valid postgres:// URL: {e}"))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx already checks a connection when it is given back; a second check when it is
            // taken would add a round trip to every query. A connection the database dropped
            // fails its query, and is closed then.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(|e| unreachable(&options, e))?;
        let live = coordination::LiveSet::default();
        let renewer = {
            let (pool, live) = (pool.clone(), live.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(coordination::RENEW_EVERY);
                loop {
                    tick.tick().await;
                    if let Err(e) = coordination::renew(&pool, &live).await {
                        tracing::warn!("renewing blob holds and leases: {e}");
                    }
                }
            })
        };
        Ok(PgIndex {
            pool,
            options,
            holder: uuid::Uuid::new_v4().simple().to_string(),
            live,
            renewer,
            epoch: coordination::EpochReads::default(),
        })
    }

    /// The database, for messages: never its password.
    pub(crate) fn describe(&self) -> String {
        describe(&self.options)
    }

    fn connect_error(&self, e: sqlx::Error) -> IndexError {
        unreachable(&self.options, e)
    }

    /// The secret every server sharing this database signs tokens with, created once.
    pub(crate) async fn signing_secret(&self) -> IndexResult<Vec<u8>> {
        coordination::signing_secret(self).await
    }
}

fn describe(o: &PgConnectOptions) -> String {
    format!(
        "PostgreSQL database '{}' on {}:{} as '{}'",
        o.get_database().unwrap_or(o.get_username()),
        o.get_host(),
        o.get_port(),
        o.get_username()
    )
}

fn unreachable(o: &PgConnectOptions, e: sqlx::Error) -> IndexError {
    IndexError::Unreachable {
        what: describe(o),
        source: Box::new(e),
    }
}

impl Drop for PgIndex {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Index for PgIndex {
    fn migrate(&self) -> IndexFuture<'_, ()> {
        Box::pin(async move {
            match MIGRATOR.run(&self.pool).await {
                Err(sqlx::migrate::MigrateError::VersionMissing(v)) => {
                    Err(IndexError::Invalid(format!(
                        "{} was written by a newer lode-server (schema version {v}; this one knows up to {}): run that version or a later one on it; nothing was changed",
                        self.describe(),
                        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
                    )))
                }
                r => Ok(r?),
            }
        })
    }

    fn occupy(&self, who: Occupant) -> IndexFuture<'_, Hold> {
        Box::pin(coordination::occupy(self, who))
    }

    fn ping(&self) -> IndexFuture<'_, ()> {
        Box::pin(async move {
            match tokio::time::timeout(PING_TIMEOUT, sqlx::query("SELECT 1").execute(&self.pool))
                .await
            {
                Ok(r) => {
                    r?;
                    Ok(())
                }
                Err(_) => Err(IndexError::Engine(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{} did not answer within {PING_TIMEOUT:?}", self.describe()),
                )))),
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.renewer.abort();
            self.pool.close().await;
        })
    }

    fn backup_into<'a>(&'a self, _dest: &'a DataDir) -> IndexFuture<'a, ()> {
        Box::pin(async move {
            Err(IndexError::Invalid(format!(
                "lode-server backup copies a SQLite index; back up {} with pg_dump (it takes a consistent copy while servers run) and the blob store with its own tools",
                self.describe()
            )))
        })
    }

    crate::db::shared_sql::shared_index_methods!();

    fn delete_project<'a>(&'a self, name: &'a str) -> IndexFuture<'a, ()> {
        Box::pin(projects::delete_project(self, name))
    }

    fn forget_object<'a>(&'a self, kind: HashKind, oid: &'a str) -> IndexFuture<'a, u64> {
        Box::pin(objects::forget_object(self, kind, oid))
    }

    fn forget_project_object<'a>(
        &'a self,
        project_id: i64,
        kind: HashKind,
        oid: &'a ObjectId,
    ) -> IndexFuture<'a, ()> {
        Box::pin(objects::forget_project_object(self, project_id, kind, oid))
    }

    fn remove_refs<'a>(
        &'a self,
        project_id: i64,
        refs: &'a [(HashKind, ObjectId)],
    ) -> IndexFuture<'a, u64> {
        Box::pin(objects::remove_refs(self, project_id, refs))
    }

    fn gc_lease(&self) -> IndexFuture<'_, Hold> {
        Box::pin(coordination::lease(self, "gc"))
    }

    fn hold_for_upload<'a>(&'a self, blobs: &'a [(HashKind, ObjectId)]) -> IndexFuture<'a, Hold> {
        Box::pin(coordination::hold_for_upload(self, blobs))
    }

    fn hold_for_delete(&self, kind: HashKind, oid: ObjectId) -> IndexFuture<'_, Hold> {
        Box::pin(coordination::hold_for_delete(self, kind, oid))
    }

    fn removal_epoch(&self) -> IndexFuture<'_, u64> {
        Box::pin(coordination::removal_epoch(self))
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use super::PgIndex;
    use crate::db::Index;

    /// A migrated index on a new database of the test process's PostgreSQL; `None` when the
    /// tests run without PostgreSQL (they say so loudly).
    pub(crate) async fn temp_index() -> Option<(Arc<dyn Index>, ())> {
        let url = tokio::task::spawn_blocking(|| {
            lode_e2e::postgres::shared().map(|pg| pg.fresh_database())
        })
        .await
        .expect("start PostgreSQL")?;
        let ix = PgIndex::connect(&url, 4).await.expect("connect");
        ix.migrate().await.expect("migrate");
        Some((Arc::new(ix), ()))
    }
}

#[cfg(test)]
mod conformance {
    crate::db::conformance::index_conformance!(super::testing::temp_index);
}
