//! A DVC repository on disk: discovery, `.dvc/config`, `.dvc` files, `.dvcignore`, `.gitignore` edits.

pub mod config;
pub mod dvcfile;
pub mod dvcignore;
pub mod gitignore;

use std::path::{Path, PathBuf};

use crate::LodeError;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An opened repository: its root (the folder holding `.dvc/`) and merged configuration.
#[derive(Debug)]
pub struct Repo {
    pub root: PathBuf,
    pub dvc_dir: PathBuf,
    pub config: config::Config,
}

impl Repo {
    /// Finds the repository containing `start` by walking up to the first folder with `.dvc/`.
    pub fn discover(start: &Path) -> Result<Repo, LodeError> {
        let start = std::path::absolute(start).map_err(|source| RepoError::Io {
            path: start.to_path_buf(),
            source,
        })?;
        let mut dir = start.as_path();
        loop {
            let dvc_dir = dir.join(".dvc");
            if dvc_dir.is_dir() {
                return Repo::open(dir);
            }
            match dir.parent() {
                Some(p) => dir = p,
                None => return Err(LodeError::NotARepo(dir.to_path_buf())),
            }
        }
    }

    /// Opens the repository rooted at `root` and loads its configuration.
    pub fn open(root: &Path) -> Result<Repo, LodeError> {
        let dvc_dir = root.join(".dvc");
        let config = config::Config::load(&dvc_dir)?;
        Ok(Repo {
            root: root.to_path_buf(),
            dvc_dir,
            config,
        })
    }

    /// Finds the repository containing the current directory.
    pub fn from_cwd() -> Result<Repo, LodeError> {
        let cwd = std::env::current_dir().map_err(|source| RepoError::Io {
            path: PathBuf::from("."),
            source,
        })?;
        Repo::discover(&cwd)
    }

    /// `.dvc/tmp`, where lode keeps disposable state such as the hash cache.
    pub fn tmp_dir(&self) -> PathBuf {
        self.dvc_dir.join("tmp")
    }
}
