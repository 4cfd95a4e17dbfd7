//! What `push`, `pull` and `fetch` open before moving data: a [`Transfer`] (a cache and a
//! remote, usable without any repository, as `get` needs) and, around it, a [`Session`] (the
//! repository under its lock and the objects its targets use).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::outputs::Outputs;
use crate::cache::Cache;
use crate::printer::Printer;
use crate::remote::used::{self, Direction, UsedOut};
use crate::remote::{self as remote_mod, Remote, RemoteError};
use crate::repo::config::RemoteConfig;
use crate::repo::lock::RepoLock;
use crate::repo::revisions::Scope;
use crate::repo::Repo;
use crate::{ExitCode, LodeError};

/// A local cache and a remote to move objects between.
pub struct Transfer {
    pub remote: Remote,
    pub cache: Arc<Cache>,
}

impl Transfer {
    /// Opens `remote` for moving objects in and out of `cache`; `jobs` overrides the remote's
    /// own `jobs` option.
    pub fn open(
        cache: Cache,
        remote: &RemoteConfig,
        jobs: Option<usize>,
    ) -> Result<Transfer, RemoteError> {
        Ok(Transfer {
            remote: Remote::open(remote, jobs)?,
            cache: Arc::new(cache),
        })
    }
}

/// Which outputs a command transfers, and through which remote.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request<'a> {
    /// `.dvc` files or outputs; all of the workspace's when empty.
    pub targets: &'a [PathBuf],
    pub scope: Scope,
    /// The remote's name; `core.remote` when `None`.
    pub remote: Option<&'a str>,
    pub jobs: Option<usize>,
    /// A push: outputs marked `push: false` are left out.
    pub direction: Direction,
}

pub(crate) struct Session {
    pub cwd: PathBuf,
    pub outputs: Outputs,
    pub used: Vec<UsedOut>,
    pub transfer: Transfer,
    /// Declared last so the lock is released after everything else is dropped.
    _lock: RepoLock,
}

impl Session {
    /// Takes the repository's lock and opens what `request` needs. Targets are relative to
    /// `cwd`; `out` hears warnings; `action` prefixes remote errors the way DVC does
    /// (`failed to push data to the cloud - ...`).
    pub(crate) fn open(
        repo: Repo,
        cwd: &Path,
        request: &Request<'_>,
        out: Printer,
        action: &str,
    ) -> Result<Session, LodeError> {
        let lock = repo.lock()?;
        let outputs = Outputs::open(&repo, out)?;
        let purpose = used::Purpose {
            code: ExitCode::Failed,
            direction: request.direction,
            unversioned: None,
        };
        let used = used::collect(&outputs, request.targets, cwd, &request.scope, purpose)?;
        let conf = remote_mod::resolve(&repo, request.remote).map_err(|e| e.into_lode(action))?;
        let transfer = Transfer::open(Cache::for_repo(&repo)?, &conf, request.jobs)
            .map_err(|e| e.into_lode(action))?;
        Ok(Session {
            cwd: cwd.to_path_buf(),
            outputs,
            used,
            transfer,
            _lock: lock,
        })
    }
}
