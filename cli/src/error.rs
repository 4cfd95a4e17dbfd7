//! The error every command returns, and the DVC exit code each kind maps to (spec §8).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LodeError {
    #[error("you are not inside of a DVC repository (checked up to mount point '{}')", .0.display())]
    NotARepo(PathBuf),
    #[error("configuration error - {0}")]
    Config(#[from] crate::repo::config::ConfigError),
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    /// A command-level failure (push/pull/status problems, missing files): exit 1.
    #[error("{0}")]
    Failed(String),
    /// Any other failure: exit 255, as DVC does for its exceptions.
    #[error("{0}")]
    Other(String),
    /// A message DVC prints as it is, without the `ERROR: ` prefix (e.g. `.dvc` validation).
    #[error("{msg}")]
    Bare { msg: String, code: u8 },
}

impl LodeError {
    pub fn exit_code(&self) -> u8 {
        match self {
            LodeError::NotARepo(_) => 253,
            LodeError::Config(_) => 251,
            LodeError::Failed(_) => 1,
            LodeError::Repo(_) | LodeError::Other(_) => 255,
            LodeError::Bare { code, .. } => *code,
        }
    }

    /// Whether the message is printed after `ERROR: `.
    pub fn prefixed(&self) -> bool {
        !matches!(self, LodeError::Bare { .. })
    }
}
