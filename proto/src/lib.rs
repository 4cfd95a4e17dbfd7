//! Shared vocabulary of `lode` and `lode-server`.
//!
//! Everything that crosses the wire or names an object on disk is defined here once, so the client
//! and the server cannot disagree about what a valid object id or project name is.

pub mod api;
pub mod names;
pub mod oid;
pub mod transfer;

pub use api::Role;
pub use names::{validate_project_name, NameError, RESERVED_NAMES};
pub use oid::{HashKind, ObjectId, OidError};
