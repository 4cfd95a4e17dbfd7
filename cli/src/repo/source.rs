//! Another repository that `list`, `get` and `import` read from: a bare clone made with the
//! system `git` and kept in the user's cache folder, so the second look at a repository costs
//! one `git fetch` (none for a commit already there), and what a commit of it declares.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::git::{Git, GitError};
use crate::repo::config::{Config, ConfigError, ConfigFile, RemoteConfig};
use crate::repo::dvcignore::DvcIgnore;
use crate::repo::lock::RepoLock;
use crate::repo::revisions::{DeclaredOut, Revision, RevisionError, Walker};
use crate::LodeError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    /// Worded as DVC words it.
    #[error("SCM error: Failed to clone repo '{url}': {detail}")]
    Clone { url: String, detail: String },
    #[error("unknown Git revision '{0}'")]
    UnknownRev(String),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Revision(#[from] RevisionError),
    #[error("configuration error - {0}")]
    Config(#[from] ConfigError),
}

/// The folder lode keeps disposable per-user data in: `$XDG_CACHE_HOME/lode`, else
/// `~/.cache/lode`.
pub(crate) fn user_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".cache")
        });
    base.join("lode")
}

/// A commit of another repository, cloned into the user's cache.
pub(crate) struct Source {
    /// The full id of the commit read.
    pub commit: String,
    git: Git,
    /// For a source on this machine, its folder (relative remotes are resolved against it).
    local: Option<PathBuf>,
}

/// Whether `url` names a folder rather than something with a scheme or an `scp`-like
/// `host:path`.
fn is_local(url: &str) -> bool {
    if url.contains("://") {
        return false;
    }
    match url.split_once(':') {
        Some((host, _)) => host.contains('/'),
        None => true,
    }
}

fn run_git(dir: &Path, args: &[&str]) -> Result<std::process::Output, SourceError> {
    Command::new("git")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| SourceError::Git(GitError::Spawn(e)))
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("git exited with an error")
        .to_string()
}

impl Source {
    /// Clones `url` (relative folders are taken from `cwd`) into the cache if it is not there
    /// yet, and finds `rev` (the source's `HEAD` when `None`), fetching it when the clone does
    /// not hold it or when it may have moved.
    pub fn open(url: &str, cwd: &Path, rev: Option<&str>) -> Result<Source, SourceError> {
        let local = is_local(url).then(|| {
            let p = cwd.join(url);
            std::fs::canonicalize(&p).unwrap_or(p)
        });
        let clone_url = match &local {
            Some(p) => p.to_string_lossy().into_owned(),
            None => url.to_string(),
        };
        let repos = user_cache_dir().join("repos");
        std::fs::create_dir_all(&repos).map_err(|source| SourceError::Io {
            path: repos.clone(),
            source,
        })?;
        let key = hex::encode(crate::hash::md5_bytes(clone_url.as_bytes()));
        let dir = repos.join(&key);
        let _lock =
            RepoLock::acquire(&repos.join(format!("{key}.lock"))).map_err(|e| SourceError::Io {
                path: repos.join(format!("{key}.lock")),
                source: std::io::Error::other(e.to_string()),
            })?;
        // A shallow clone only over the network: for a folder git links the objects instead.
        let shallow = local.is_none();
        let fresh = !dir.join("HEAD").is_file();
        if fresh {
            Self::clone_into(&clone_url, &repos, &dir, shallow)?;
        }
        let git = Git::bare(&dir);
        let commit = Self::resolve(&git, &clone_url, rev, fresh, shallow)?;
        Ok(Source { commit, git, local })
    }

    fn clone_into(url: &str, repos: &Path, dir: &Path, shallow: bool) -> Result<(), SourceError> {
        let tmp = tempfile::Builder::new()
            .prefix(".clone-")
            .tempdir_in(repos)
            .map_err(|source| SourceError::Io {
                path: repos.to_path_buf(),
                source,
            })?;
        let target = tmp.path().join("repo.git");
        let target_s = target.to_string_lossy().into_owned();
        let mut args = vec!["clone", "--bare", "--quiet"];
        if shallow {
            args.extend(["--depth", "1", "--no-single-branch"]);
        }
        args.extend(["--", url, &target_s]);
        let out = run_git(repos, &args)?;
        if !out.status.success() {
            return Err(SourceError::Clone {
                url: url.to_string(),
                detail: last_line(&out.stderr),
            });
        }
        std::fs::rename(&target, dir).map_err(|source| SourceError::Io {
            path: dir.to_path_buf(),
            source,
        })
    }

    fn resolve(
        git: &Git,
        url: &str,
        rev: Option<&str>,
        fresh: bool,
        shallow: bool,
    ) -> Result<String, SourceError> {
        let is_full_id = |r: &str| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit());
        match rev {
            None if fresh => {
                return git
                    .commit_of("HEAD")?
                    .ok_or_else(|| SourceError::UnknownRev("HEAD".into()))
            }
            Some(r) if is_full_id(r) => {
                if let Some(c) = git.commit_of(r)? {
                    return Ok(c);
                }
            }
            _ => {}
        }
        // Branches and tags may have moved since the last look: ask the source.
        let wanted = rev.unwrap_or("HEAD");
        let mut args = vec!["fetch", "--quiet", "--no-tags"];
        if shallow {
            args.extend(["--depth", "1"]);
        }
        args.extend(["--", url, wanted]);
        let out = run_git(&git.root, &args)?;
        if out.status.success() {
            if let Some(c) = git.commit_of("FETCH_HEAD")? {
                return Ok(c);
            }
        }
        // An abbreviated commit id cannot be fetched by name, but a full clone may hold it.
        if let Some(c) = git.commit_of(wanted)? {
            return Ok(c);
        }
        if !out.status.success() && rev.is_none() {
            return Err(SourceError::Clone {
                url: url.to_string(),
                detail: last_line(&out.stderr),
            });
        }
        Err(SourceError::UnknownRev(wanted.to_string()))
    }

    pub fn git(&self) -> &Git {
        &self.git
    }

    /// Where the source's files are named: its own folder for a local source, the clone
    /// otherwise.
    fn root(&self) -> &Path {
        self.local.as_deref().unwrap_or(&self.git.root)
    }

    /// The outputs the commit declares (`.dvc` files and pipelines), with paths relative to
    /// the top of the repository, `/`-separated.
    pub fn outputs(&self) -> Result<Vec<(String, DeclaredOut)>, SourceError> {
        let root = self.root().to_path_buf();
        let ignore = DvcIgnore::new(&root);
        let walker = Walker::of_git(&root, &ignore, self.git.clone(), String::new());
        let found = walker.outputs_at(&Revision::Commit(self.commit.clone()))?;
        let mut outs = Vec::new();
        for d in found.outs {
            let Ok(rel) = d.path.strip_prefix(&root) else {
                continue;
            };
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if rel.iter().any(|c| c == "..") || rel.is_empty() {
                continue;
            }
            outs.push((rel.join("/"), d));
        }
        Ok(outs)
    }

    /// The source's configuration at the commit (plus the user's and the system's).
    pub fn config(&self) -> Result<Config, SourceError> {
        let path = self.root().join(".dvc").join("config");
        let file = match self.git.blob_at(&self.commit, ".dvc/config")? {
            Some(bytes) => {
                let text = String::from_utf8(bytes).map_err(|e| {
                    SourceError::Config(ConfigError::Parse {
                        path: path.clone(),
                        message: e.to_string(),
                    })
                })?;
                ConfigFile::parse(&path, &text)?
            }
            None => ConfigFile::empty(path),
        };
        Ok(Config::of_source(file)?)
    }

    /// The source's default remote, `None` when it has none.
    pub fn default_remote(&self) -> Result<Option<RemoteConfig>, SourceError> {
        let config = self.config()?;
        Ok(config.core_remote().and_then(|n| config.remote(&n)))
    }
}

impl SourceError {
    /// The command's error, after DVC's `failed to <action> - `.
    pub fn into_lode(self, action: &str) -> LodeError {
        match self {
            SourceError::Config(e) => LodeError::Config(e),
            other => LodeError::Failed(format!("{action} - {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_local;

    #[test]
    fn tells_folders_from_urls() {
        assert!(is_local("../registry"));
        assert!(is_local("/srv/git/registry.git"));
        assert!(is_local("./a:b"));
        assert!(!is_local("file:///srv/registry.git"));
        assert!(!is_local("https://example.com/r.git"));
        assert!(!is_local("git@example.com:team/r.git"));
    }
}
