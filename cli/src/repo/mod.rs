//! A DVC repository on disk: discovery, `.dvc/config`, `.dvc` files, `.dvcignore`, `.gitignore`
//! edits.

pub mod config;
pub mod dvcfile;
pub mod dvcignore;
pub mod gitignore;
pub mod imported;
pub mod listing;
pub mod lock;
pub mod pipeline;
pub mod revisions;
pub mod source;
pub mod source_data;

use std::path::{Path, PathBuf};

use crate::LodeError;

pub use lock::RepoLock;

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
    /// The root of the repository containing `start`: the first folder upwards with `.dvc/`.
    pub fn find_root(start: &Path) -> Result<PathBuf, LodeError> {
        let start = std::path::absolute(start).map_err(|source| RepoError::Io {
            path: start.to_path_buf(),
            source,
        })?;
        let mut dir = start.as_path();
        loop {
            if dir.join(".dvc").is_dir() {
                return Ok(dir.to_path_buf());
            }
            // Like DVC, the search stops at the file system the start folder is on.
            match dir.parent() {
                Some(p) if !is_mount_point(dir, p) => dir = p,
                _ => return Err(LodeError::NotARepo(dir.to_path_buf())),
            }
        }
    }

    /// Like [`find_root`](Self::find_root), but `None` outside any repository.
    pub fn find_root_opt(start: &Path) -> Result<Option<PathBuf>, LodeError> {
        match Repo::find_root(start) {
            Ok(r) => Ok(Some(r)),
            Err(LodeError::NotARepo(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Finds the repository containing `start` by walking up to the first folder with `.dvc/`.
    pub fn discover(start: &Path) -> Result<Repo, LodeError> {
        let root = Repo::find_root(start)?;
        Repo::open(&root)
    }

    /// Opens the repository rooted at `root` and loads its configuration, validated.
    pub fn open(root: &Path) -> Result<Repo, LodeError> {
        let dvc_dir = root.join(".dvc");
        let config = config::Config::load(&dvc_dir)?;
        Ok(Repo {
            root: root.to_path_buf(),
            dvc_dir,
            config,
        })
    }

    /// `.dvc/tmp`, where lode keeps disposable state such as the hash cache.
    pub fn tmp_dir(&self) -> PathBuf {
        self.dvc_dir.join("tmp")
    }

    /// The local cache folder: `cache.dir` resolved against the folder of the config file that
    /// set it, else `.dvc/cache`.
    pub fn cache_dir(&self) -> PathBuf {
        self.config.cache_dir()
    }

    /// Takes `.dvc/tmp/lock` as DVC does, so Lode and DVC never change the same repository at
    /// once. Held until the returned guard is dropped.
    pub fn lock(&self) -> Result<RepoLock, LodeError> {
        RepoLock::acquire(&self.tmp_dir().join("lock"))
    }
}

/// Python's `os.path.ismount`: `dir` is on another device than `parent`, or is the same inode.
fn is_mount_point(dir: &Path, parent: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(dir), std::fs::metadata(parent)) {
        (Ok(d), Ok(p)) => d.dev() != p.dev() || d.ino() == p.ino(),
        _ => false,
    }
}
