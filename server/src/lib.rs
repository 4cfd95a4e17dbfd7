//! `lode-server`: a self-hosted HTTP remote for DVC and lode, with content-addressed blobs on disk,
//! a SQLite index, projects, groups and access tokens.

pub mod admin;
pub mod app;
pub mod auth;
pub mod backends;
pub mod backup;
pub mod blob_locks;
pub mod config;
pub mod datadir;
pub mod db;
pub mod error;
pub mod events;
pub mod fsck;
pub mod hashing;
pub mod healthcheck;
pub mod held;
pub mod indexer;
pub mod lookups;
pub mod manifest;
pub mod metrics;
pub mod routes;
pub mod serve;
pub mod store;
pub mod tls;
