//! The `lode` library: DVC-compatible data versioning. [`main`] is the whole `lode` command;
//! the modules stay inside the crate until they have a public interface of their own.

mod cache;
mod cli;
mod commands;
mod error;
mod git;
mod hash;
mod printer;
mod remote;
mod repo;

pub use commands::main;
pub use error::ExitCode;
pub(crate) use error::LodeError;
