//! Users, and the roles and projects their grants give them.

crate::db::shared_sql::users!(crate::db::sqlite::SqliteIndex);
