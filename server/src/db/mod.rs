//! The SQLite index: projects, users, groups, grants, tokens, the objects each project holds and
//! the audit log. Every SQL statement of the server lives under this module.

mod audit;
mod gc;
mod groups;
mod objects;
mod projects;
mod tokens;
mod users;

pub use audit::AuditEvent;
pub use gc::HeldObject;
pub use groups::Grantee;
pub use objects::ObjectRef;
pub use tokens::{NewToken, TokenRow};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("index writer: {0}")]
    Writer(String),
    #[error("index lookup: {0}")]
    Lookup(String),
}

impl DbError {
    /// Maps a unique-constraint failure to `Conflict(what)`, leaving other errors alone.
    fn unique(e: sqlx::Error, what: impl Into<String>) -> DbError {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return DbError::Conflict(what.into());
            }
        }
        DbError::Sql(e)
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// A handle on the index; cheap to clone.
///
/// High-volume writes (object references, audit events, token use) go through `writer`, a
/// single connection, so they queue in the pool instead of colliding on SQLite's write lock and
/// sleeping in its busy handler. Everything else uses `pool`.
#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
    writer: SqlitePool,
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Db {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path, max_connections: u32) -> DbResult<Db> {
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
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
        MIGRATOR.run(&pool).await?;
        // Checkpoints copy each page changed since the last one back into the database once:
        // object references have random keys, so a longer interval (16 MiB of log instead of
        // 4) finds many index pages changed several times and writes them once.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(opts.pragma("wal_autocheckpoint", "4000"))
            .await?;
        Ok(Db { pool, writer })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A cheap query proving the database answers.
    pub async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}
