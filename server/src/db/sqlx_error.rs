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
