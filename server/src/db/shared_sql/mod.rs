//! The statements and row mapping that read the same on every engine, written once.
//!
//! Each file holds a macro that an engine invokes with its index type (by its full path); the
//! macro defines the functions in a private module and re-exports them into the invoking
//! module, next to that engine's own, dialect-specific functions. Statements use numbered
//! `$N` parameters, which PostgreSQL takes natively and sqlx's SQLite driver maps to its bind
//! positions, and only SQL both engines read alike (`CAST(... AS ...)` rather than `::`,
//! `TRUE`/`FALSE`, `NULLS FIRST`). Macros rather than functions generic over sqlx's `Database`
//! because the generic form needs a bound for every type bound or decoded, and sqlx's `Any`
//! driver cannot carry the array parameters the PostgreSQL engine binds elsewhere.
//!
//! What differs between engines (batched writes, `RETURNING`, upserts over arrays, the removal
//! epoch, coordination) stays in `db/sqlite/` and `db/postgres/`.

mod audit;
mod groups;
mod index_methods;
mod objects;
mod projects;
mod tokens;
mod users;

pub(crate) use audit::audit;
pub(crate) use groups::groups;
pub(crate) use index_methods::shared_index_methods;
pub(crate) use objects::objects;
pub(crate) use projects::projects;
pub(crate) use tokens::tokens;
pub(crate) use users::users;
