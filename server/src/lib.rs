//! `lode-server`: a self-hosted HTTP remote for DVC and lode, with content-addressed blobs on disk,
//! a SQLite index, projects, groups and access tokens.

pub mod admin;
mod app;
mod auth;
mod backends;
pub mod backup;
mod blob_locks;
pub mod config;
mod datadir;
mod db;
mod error;
mod events;
pub mod fsck;
pub mod healthcheck;
mod held;
mod indexer;
mod ingest;
mod lookups;
mod manifest;
mod metrics;
mod routes;
pub mod serve;
pub mod store;
pub mod tls;
