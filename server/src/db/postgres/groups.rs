//! Groups, their members, and grants of roles on projects.

crate::db::shared_sql::groups!(crate::db::postgres::PgIndex);
