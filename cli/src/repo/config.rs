//! `.dvc/config` and `.dvc/config.local`, read and written as DVC's configobj does (spec §5).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file error: {0}")]
    Invalid(String),
}

/// Which file a value lives in, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    System,
    Global,
    Repo,
    Local,
}

/// The merged configuration of a repository.
#[derive(Debug, Default)]
pub struct Config {
    pub dvc_dir: PathBuf,
}

impl Config {
    pub fn load(dvc_dir: &Path) -> Result<Config, ConfigError> {
        Ok(Config {
            dvc_dir: dvc_dir.to_path_buf(),
        })
    }

    /// A merged value, e.g. `get("cache", "type")` or `get("remote \"storage\"", "url")`.
    pub fn get(&self, _section: &str, _key: &str) -> Option<String> {
        None
    }
}
