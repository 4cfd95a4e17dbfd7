//! Errors of sqlx, the driver of the SQL engines, as index errors.

use super::IndexError;

impl From<sqlx::Error> for IndexError {
    fn from(e: sqlx::Error) -> IndexError {
        IndexError::Engine(Box::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for IndexError {
    fn from(e: sqlx::migrate::MigrateError) -> IndexError {
        IndexError::Migrate(Box::new(e))
    }
}

/// Maps a unique-constraint failure to `Conflict(what)`, leaving other errors alone.
pub(crate) fn unique(e: sqlx::Error, what: impl Into<String>) -> IndexError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return IndexError::Conflict(what.into());
        }
    }
    e.into()
}

/// Whether the error says the database cannot be reached for now (connection refused or lost,
/// no free connection, the server shutting down or starting up) rather than that the request
/// itself failed.
pub(crate) fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception) and 57P (operator intervention: shutdown,
        // crash, starting up).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}
