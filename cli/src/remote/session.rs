//! What `push`, `pull` and `fetch` open before moving data: the repository under its lock, the
//! objects their targets use, the remote and the local cache.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::outputs::Outputs;
use crate::cache::Cache;
use crate::remote::used::{self, UsedOut};
use crate::remote::{self as remote_mod, Remote};
use crate::repo::lock::RepoLock;
use crate::repo::revisions::Scope;
use crate::repo::{current_dir, Repo};
use crate::LodeError;

pub struct Session {
    pub repo: Repo,
    pub cwd: PathBuf,
    pub outputs: Outputs,
    pub used: Vec<UsedOut>,
    pub remote: Remote,
    pub cache: Arc<Cache>,
    /// Declared last so the lock is released after everything else is dropped.
    _lock: RepoLock,
}

impl Session {
    /// Opens the repository of the current directory; `action` prefixes remote errors the way
    /// DVC does (`failed to push data to the cloud - ...`).
    pub(crate) fn open(
        targets: &[PathBuf],
        remote: Option<&str>,
        jobs: Option<usize>,
        scope: Scope,
        action: &str,
    ) -> Result<Session, LodeError> {
        let repo = Repo::from_cwd()?;
        let lock = repo.lock()?;
        let cwd = current_dir()?;
        let outputs = Outputs::open(&repo)?;
        let used = used::collect(&outputs, targets, &cwd, &scope, 1)?;
        let conf = remote_mod::resolve(&repo, remote).map_err(|e| e.into_lode(action))?;
        let remote = Remote::open(&conf, jobs).map_err(|e| e.into_lode(action))?;
        let cache = Arc::new(Cache::for_repo(&repo)?);
        Ok(Session {
            repo,
            cwd,
            outputs,
            used,
            remote,
            cache,
            _lock: lock,
        })
    }
}
