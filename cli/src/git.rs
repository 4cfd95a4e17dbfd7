//! The Git repository around a DVC repository: detection and reading `.dvc` files from history.
