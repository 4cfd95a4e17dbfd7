//! The error every command returns, and the exit code DVC uses for each kind.

use std::path::PathBuf;

/// The exit codes DVC's commands end with; Lode ends with the same ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// The command did what was asked.
    Ok = 0,
    /// The command ran and failed: data missing, a transfer or checkout failed, a prompt
    /// declined, changes found by `status -q`.
    Failed = 1,
    /// A DVC command lode leaves to DVC (running pipelines and experiments).
    LeftToDvc = 2,
    /// Standard output was closed before everything was written (128 + SIGPIPE).
    BrokenPipe = 141,
    /// A configuration error.
    Config = 251,
    /// Not inside a DVC repository.
    NotARepo = 253,
    /// Arguments the command line grammar rejects.
    Usage = 254,
    /// Any other error.
    Error = 255,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LodeError {
    #[error("you are not inside of a DVC repository (checked up to mount point '{}')", .0.display())]
    NotARepo(PathBuf),
    #[error("configuration error - {0}")]
    Config(#[from] crate::repo::config::ConfigError),
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    Hash(#[from] crate::hash::HashError),
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    #[error(transparent)]
    Gitignore(#[from] crate::repo::gitignore::GitignoreError),
    #[error(transparent)]
    DvcIgnore(#[from] crate::repo::dvcignore::DvcIgnoreError),
    /// A `.dvc` file that cannot be read or written.
    #[error(transparent)]
    DvcFile(crate::repo::dvcfile::DvcFileError),
    /// A command-level failure (push/pull/status problems, missing files): exit 1.
    #[error("{0}")]
    Failed(String),
    /// Any other failure: exit 255, as DVC does for its exceptions.
    #[error("{0}")]
    Other(String),
    /// A message DVC prints as it is, without the `ERROR: ` prefix (e.g. `.dvc` validation).
    #[error("{msg}")]
    Bare { msg: String, code: ExitCode },
    /// Standard output was closed (`lode status | head -1`): the command stops quietly.
    #[error("standard output was closed")]
    BrokenPipe,
    #[error("failed to write to standard output: {0}")]
    Output(#[source] std::io::Error),
}

impl LodeError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            LodeError::NotARepo(_) => ExitCode::NotARepo,
            LodeError::Config(_) => ExitCode::Config,
            LodeError::Failed(_) => ExitCode::Failed,
            LodeError::BrokenPipe => ExitCode::BrokenPipe,
            LodeError::Bare { code, .. } => *code,
            LodeError::Repo(_)
            | LodeError::Cache(_)
            | LodeError::Hash(_)
            | LodeError::Git(_)
            | LodeError::Gitignore(_)
            | LodeError::DvcIgnore(_)
            | LodeError::DvcFile(_)
            | LodeError::Other(_)
            | LodeError::Output(_) => ExitCode::Error,
        }
    }

    /// Whether the message is printed after `ERROR: `.
    pub fn prefixed(&self) -> bool {
        !matches!(self, LodeError::Bare { .. })
    }

    /// The error for a failed write to standard output.
    pub fn from_output(e: std::io::Error) -> LodeError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            LodeError::BrokenPipe
        } else {
            LodeError::Output(e)
        }
    }
}
