//! What `push`, `pull` and `fetch` open before moving data: a [`Transfer`] (a cache and a
//! remote, usable without any repository, as `get` needs) and, around it, a [`Session`] (the
//! repository under its lock and the objects its targets use).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::outputs::Outputs;
use crate::cache::Cache;
use crate::printer::Printer;
use crate::remote::progress::Progress;
use crate::remote::sync::{self, FetchReport};
use crate::remote::used::{self, Direction, UsedOut};
use crate::remote::{self as remote_mod, Remote, RemoteError};
use crate::repo::config::RemoteConfig;
use crate::repo::imported::{self, Import};
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
    pub repo: Repo,
    pub outputs: Outputs,
    /// Objects moved through the repository's remote: imports' objects are not among them.
    pub used: Vec<UsedOut>,
    /// Imports in scope, whose data comes from their source repositories (never pushed).
    pub imports: Vec<Import>,
    /// `None` only for a fetch of nothing but imports in a repository without a remote.
    transfer: Option<Transfer>,
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
        // As DVC does, imports are fetched from their sources and never pushed.
        let imports = imported::in_scope(
            &outputs.tracked(request.targets, cwd, ExitCode::Failed)?,
            cwd,
        );
        let import_ids: HashSet<_> = imports.iter().filter_map(Import::oid).collect();
        let used: Vec<UsedOut> = used
            .into_iter()
            .filter(|u| !import_ids.contains(&(u.kind, u.oid)))
            .collect();
        let only_imports = request.direction == Direction::Fetch && used.is_empty();
        let transfer = match remote_mod::resolve(&repo, request.remote) {
            Ok(conf) => Some(
                Transfer::open(Cache::for_repo(&repo)?, &conf, request.jobs)
                    .map_err(|e| e.into_lode(action))?,
            ),
            Err(_) if only_imports && !imports.is_empty() => {
                out.note("No remote provided and no default remote set.");
                None
            }
            Err(e) => return Err(e.into_lode(action)),
        };
        Ok(Session {
            cwd: cwd.to_path_buf(),
            repo,
            outputs,
            used,
            imports,
            transfer,
            _lock: lock,
        })
    }

    /// The repository's remote and cache; an error naming `action` when there is no remote.
    pub(crate) fn transfer(&self, action: &str) -> Result<&Transfer, LodeError> {
        self.transfer
            .as_ref()
            .ok_or_else(|| LodeError::Failed(format!("{action} - no remote specified")))
    }

    /// Fetches the objects of imports from their sources, then the rest from the remote.
    pub(crate) fn fetch(
        &self,
        jobs: Option<usize>,
        out: Printer,
        action: &str,
    ) -> Result<(FetchReport, Option<&Transfer>), LodeError> {
        let imported =
            imported::fetch_all(&self.repo, &self.imports, &self.cwd, jobs, out, action)?;
        let mut report = match &self.transfer {
            Some(t) => {
                let progress = Progress::new("fetched", out);
                sync::fetch(&t.remote, &t.cache, &self.used, &progress)
                    .map_err(|e| e.into_lode(action))?
            }
            None => FetchReport::default(),
        };
        report.fetched += imported;
        Ok((report, self.transfer.as_ref()))
    }
}
