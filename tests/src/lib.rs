//! Shared helpers for the end-to-end tests: locating the built binaries, scratch repositories,
//! a real `lode-server` on a free loopback port, and the `dvc` installed by the test script.

pub mod bench;
pub mod bins;
pub mod digest;
pub mod docker;
pub mod dvc;
pub mod postgres;
pub mod pyserver;
pub mod registry;
pub mod remote_repo;
pub mod repo;
pub mod seaweed;
pub mod server;
pub mod tls;
pub mod uploads;
