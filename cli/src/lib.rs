//! The `lode` library: DVC-compatible data versioning.

pub mod cache;
pub mod cli;
pub mod commands;
pub mod error;
pub mod git;
pub mod hash;
pub mod printer;
pub mod remote;
pub mod repo;

pub use error::{ExitCode, LodeError};
