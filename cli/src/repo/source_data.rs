//! The data of a commit of another repository: its [`Listing`], `.dir` manifests read from a
//! cache or else from the source's default remote, and the objects under one path fetched into
//! a cache with one batch check (`get`, `import`) and written out.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lode_proto::{HashKind, ObjectId};

use crate::cache::Cache;
use crate::hash::manifest::Manifest;
use crate::printer::Printer;
use crate::remote::progress::Progress;
use crate::remote::sync::{self, FetchReport};
use crate::remote::used::UsedOut;
use crate::remote::Remote;
use crate::repo::listing::{normalize, Content, File, Listing};
use crate::repo::source::{Source, SourceError};
use crate::LodeError;

/// A source commit, its listing, and a cache its objects go to.
pub(crate) struct SourceData {
    pub source: Source,
    pub listing: Listing,
    pub cache: Arc<Cache>,
    remote: OnceCell<Remote>,
    jobs: Option<usize>,
    /// The cache is deleted after this command: objects used once are moved out of it rather
    /// than copied.
    pub cache_is_temporary: bool,
}

impl SourceData {
    /// Reads what the source's commit tracks; manifests and objects will go to `cache`.
    pub fn open(
        source: Source,
        cache: Cache,
        jobs: Option<usize>,
    ) -> Result<SourceData, SourceError> {
        let tree = source.git().tree(&source.commit)?;
        let trees: Vec<&str> = tree
            .iter()
            .filter(|t| t.is_tree)
            .map(|t| t.oid.as_str())
            .collect();
        let sizes = source.git().object_sizes(&trees)?;
        let outs: Vec<(String, crate::repo::dvcfile::Out)> = source
            .outputs()?
            .into_iter()
            .map(|(p, d)| (p, d.out))
            .collect();
        let listing = Listing::new(tree, &sizes, &outs);
        Ok(SourceData {
            source,
            listing,
            cache: Arc::new(cache),
            remote: OnceCell::new(),
            jobs,
            cache_is_temporary: false,
        })
    }

    /// The source's default remote, opened on first use.
    pub fn remote(&self) -> Result<&Remote, LodeError> {
        if let Some(r) = self.remote.get() {
            return Ok(r);
        }
        let conf = self
            .source
            .default_remote()
            .map_err(|e| LodeError::Other(e.to_string()))?
            .ok_or_else(|| {
                LodeError::Other(
                    "config file error: no remote specified in the source repository. Create a \
                     default remote with\n    dvc remote add -d <remote name> <remote url>"
                        .into(),
                )
            })?;
        let remote = Remote::open(&conf, self.jobs).map_err(|e| LodeError::Other(e.to_string()))?;
        let _ = self.remote.set(remote);
        self.remote
            .get()
            .ok_or_else(|| LodeError::Other("the source's remote could not be opened".into()))
    }

    /// A `.dir` manifest from the cache, else from the remote (verified, then cached).
    pub fn manifest(&self, kind: HashKind, oid: ObjectId) -> Result<Manifest, LodeError> {
        if let Ok(m) = self.cache.read_manifest(&oid, kind) {
            return Ok(m);
        }
        let bytes = self
            .remote()?
            .read_small(kind, oid)
            .map_err(|e| LodeError::Other(e.to_string()))?;
        let Some(bytes) = bytes else {
            return Err(LodeError::Other(format!(
                "the source's remote does not hold '{oid}', the manifest of a tracked directory"
            )));
        };
        let m = Manifest::parse(&bytes).map_err(|e| LodeError::Other(format!("{oid}: {e}")))?;
        self.cache.insert_bytes(oid, kind, &bytes)?;
        Ok(m)
    }

    /// Fetches the DVC objects of `files` the cache lacks, in one transfer.
    pub fn fetch(&self, files: &[File], out: Printer) -> Result<FetchReport, LodeError> {
        let used: Vec<UsedOut> = files
            .iter()
            .filter_map(|f| match f.content {
                Content::Dvc { kind, oid } => Some(UsedOut {
                    name: f.rel.clone(),
                    kind,
                    oid,
                    size: f.size,
                }),
                Content::Git { .. } => None,
            })
            .collect();
        let ids: Vec<(HashKind, ObjectId)> = used.iter().map(|u| (u.kind, u.oid)).collect();
        if ids.iter().all(|(k, o)| self.cache.contains(o, *k)) {
            return Ok(FetchReport::default());
        }
        let remote = self.remote()?;
        let progress = Progress::new("fetched", out);
        sync::fetch(remote, &self.cache, &used, &progress)
            .map_err(|e| LodeError::Other(e.to_string()))
    }

    /// Writes `files` (found under `path` in the source) to `dest`: a file when `is_dir` is
    /// false, else a folder. Everything is written into a temporary sibling first and moved
    /// into place at the end, so `dest` is either untouched or complete.
    pub fn write_out(
        &self,
        path: &str,
        is_dir: bool,
        files: &[File],
        dest: &Path,
        force: bool,
    ) -> Result<(), LodeError> {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
        let staging = tempfile::Builder::new()
            .prefix(".lode-get-")
            .tempdir_in(&parent)
            .map_err(|e| io(&parent, e))?;
        let staged = staging.path().join("out");
        if is_dir {
            std::fs::create_dir(&staged).map_err(|e| io(&staged, e))?;
        }
        let mut uses: HashMap<(HashKind, ObjectId), usize> = HashMap::new();
        if self.cache_is_temporary {
            for f in files {
                if let Content::Dvc { kind, oid } = f.content {
                    *uses.entry((kind, oid)).or_default() += 1;
                }
            }
        }
        for f in files {
            let target = if f.rel.is_empty() {
                staged.clone()
            } else {
                staged.join(&f.rel)
            };
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(|e| io(p, e))?;
            }
            match &f.content {
                Content::Dvc { kind, oid } if uses.get(&(*kind, *oid)) == Some(&1) => {
                    let object = self.cache.object_path(oid, *kind);
                    std::fs::rename(&object, &target).map_err(|e| io(&object, e))?;
                    // Cache objects are read-only; a downloaded file is the user's to edit.
                    let mode = if f.isexec { 0o777 } else { 0o666 } & !crate::cache::umask();
                    std::fs::set_permissions(
                        &target,
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    )
                    .map_err(|e| io(&target, e))?;
                }
                Content::Dvc { kind, oid } => {
                    self.cache.link_to(oid, *kind, &target, f.isexec)?;
                }
                Content::Git { .. } => {
                    let full = match (path.is_empty(), f.rel.is_empty()) {
                        (_, true) => path.to_string(),
                        (true, false) => f.rel.clone(),
                        (false, false) => format!("{path}/{}", f.rel),
                    };
                    let bytes = self
                        .source
                        .git()
                        .blob_at(&self.source.commit, &full)?
                        .ok_or_else(|| LodeError::Other(format!("'{full}' is not in Git")))?;
                    // Written with the default mode, as `dvc get` writes Git's files.
                    std::fs::write(&target, bytes).map_err(|e| io(&target, e))?;
                }
            }
        }
        if force {
            match std::fs::symlink_metadata(dest) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(dest).map_err(|e| io(dest, e))?,
                Ok(_) => std::fs::remove_file(dest).map_err(|e| io(dest, e))?,
                Err(_) => {}
            }
        }
        std::fs::rename(&staged, dest).map_err(|e| io(dest, e))?;
        Ok(())
    }
}

/// Where `get` and `import` write `path`, as DVC's `resolve_output`: `out`, inside `out` when it is a
/// folder, else the path's name here. Refuses an existing destination without `force`.
pub(crate) fn resolve_output(
    cwd: &Path,
    path: &str,
    out: Option<&Path>,
    force: bool,
) -> Result<PathBuf, String> {
    let name = normalize(path)
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(".")
        .to_string();
    let shown = match out {
        None => PathBuf::from(&name),
        Some(o) if cwd.join(o).is_dir() => o.join(&name),
        Some(o) => o.to_path_buf(),
    };
    let abs = cwd.join(&shown);
    if !force {
        if let Ok(m) = std::fs::symlink_metadata(&abs) {
            let kind = if m.is_dir() { "directory" } else { "file" };
            return Err(format!(
                "The {kind} '{}' already exists locally. \nTo override it, re-run with '--force'.",
                shown.display()
            ));
        }
    }
    Ok(abs)
}

fn io(path: &Path, source: std::io::Error) -> LodeError {
    crate::repo::RepoError::Io {
        path: path.to_path_buf(),
        source,
    }
    .into()
}
