//! Remotes: where `push` sends cache objects and `fetch` gets them from.
//!
//! Three kinds, chosen from the URL and from what the server answers:
//! - a local folder, in DVC's layout (`files/md5/ab/cd…`, legacy objects at the root);
//! - `lode-server`, through its native API: batch existence checks, packs of small objects in one
//!   streamed request each, parallel single-object transfers for large ones;
//! - any other HTTP server, through DVC's HTTP remote protocol.
//!
//! Commands stay synchronous: a [`Remote`] owns a tokio runtime and blocks on it at its edge.
//! Every object that comes in is verified against its name before it enters the cache, and lands
//! there atomically (temp file, flush, rename).

pub mod folder;
pub mod gc;
pub mod http;
pub mod landing;
pub mod lode;
pub mod progress;
pub mod session;
pub mod settings;
pub mod sync;
pub mod used;

use std::collections::HashSet;
use std::sync::Arc;

use lode_proto::{HashKind, ObjectId};

use crate::cache::Cache;
use crate::repo::config::RemoteConfig;
use crate::repo::Repo;
use progress::Progress;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// A configuration problem DVC reports with exit 251.
    #[error("configuration error - {0}")]
    Config(String),
    /// The remote cannot be used at all (unreachable, credentials refused, ...).
    #[error("{0}")]
    Fatal(String),
    #[error("{0}")]
    Unsupported(String),
}

impl RemoteError {
    /// The command's error: `action` is DVC's wording, e.g. "failed to push data to the cloud".
    pub fn into_lode(self, action: &str) -> crate::LodeError {
        match self {
            RemoteError::Config(m) => crate::LodeError::Bare {
                msg: format!("ERROR: configuration error - {m}"),
                code: crate::ExitCode::Config,
            },
            RemoteError::Fatal(m) => crate::LodeError::Failed(format!("{action} - {m}")),
            RemoteError::Unsupported(m) => crate::LodeError::Other(m),
        }
    }
}

/// Why one object did not transfer.
#[derive(Debug, Clone)]
pub struct Failure {
    pub oid: ObjectId,
    pub message: String,
}

/// How one transfer call went, object by object.
#[derive(Debug, Default)]
pub struct Outcome {
    pub done: Vec<ObjectId>,
    pub failed: Vec<Failure>,
    /// Objects the remote does not have (downloads only).
    pub absent: Vec<ObjectId>,
    pub bytes: u64,
}

impl Outcome {
    pub fn merge(&mut self, other: Outcome) {
        self.done.extend(other.done);
        self.failed.extend(other.failed);
        self.absent.extend(other.absent);
        self.bytes += other.bytes;
    }
}

/// What a failed request means for the rest of the transfer.
#[derive(Debug, Clone)]
pub enum Fail {
    /// Nothing else will work either (unreachable, 401/403, ...).
    Fatal(String),
    /// This object failed; others may still go through.
    Object(String),
    /// The remote does not hold this object.
    Absent,
}

/// An object to upload: its id and size in the local cache.
#[derive(Debug, Clone, Copy)]
pub struct Upload {
    pub oid: ObjectId,
    pub size: u64,
}

/// An object to download: its id and, when a `.dvc` file records it, its size.
#[derive(Debug, Clone, Copy)]
pub struct Download {
    pub oid: ObjectId,
    pub size: Option<u64>,
}

pub(crate) enum Backend {
    Folder(folder::Folder),
    Http(http::DvcHttp),
    Lode(lode::LodeServer),
}

/// An opened remote.
pub struct Remote {
    pub name: String,
    pub jobs: usize,
    backend: Backend,
    rt: tokio::runtime::Runtime,
}

/// The remote a command uses: `-r NAME`, else `core.remote`.
pub fn resolve(repo: &Repo, name: Option<&str>) -> Result<RemoteConfig, RemoteError> {
    let name = match name
        .map(str::to_lowercase)
        .or_else(|| repo.config.core_remote())
    {
        Some(n) => n,
        None => {
            return Err(RemoteError::Fatal(format!(
                "config file error: no remote specified in {}. Create a default remote with\n    \
                 dvc remote add -d <remote name> <remote url>",
                repo.root.display()
            )))
        }
    };
    repo.config.remote(&name).ok_or_else(|| {
        RemoteError::Fatal(format!("config file error: remote '{name}' doesn't exist."))
    })
}

/// Default parallelism: transfers wait on the network and the server, not on local cores.
pub const DEFAULT_JOBS: usize = 8;

impl Remote {
    /// Opens a remote; for an HTTP URL this asks the server whether it is `lode-server`.
    pub fn open(conf: &RemoteConfig, jobs: Option<usize>) -> Result<Remote, RemoteError> {
        let url = conf
            .url()
            .ok_or_else(|| {
                RemoteError::Config(format!(
                    "config file error: remote '{}' has no url",
                    conf.name
                ))
            })?
            .to_string();
        let jobs = jobs
            .or_else(|| conf.get("jobs").and_then(|j| j.parse().ok()))
            .unwrap_or(DEFAULT_JOBS)
            .max(1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| {
                RemoteError::Fatal(format!("failed to start the transfer runtime: {e}"))
            })?;
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let backend = match scheme.as_deref() {
            None => Backend::Folder(folder::Folder::new(&url)),
            Some("file") => Backend::Folder(folder::Folder::new(
                url.split_once("://").map(|x| x.1).unwrap_or_default(),
            )),
            Some("http") | Some("https") => {
                let s = settings::HttpSettings::from_config(conf)?;
                let core = http::Http::new(&conf.name, &s)?;
                match rt.block_on(lode::LodeServer::detect(&core, &url))? {
                    Some(l) => Backend::Lode(l),
                    None => Backend::Http(http::DvcHttp::new(core, &url, s.put)),
                }
            }
            Some(other) => {
                return Err(RemoteError::Unsupported(format!(
                    "remote '{}': '{other}://' remotes are not supported; use a folder, \
                     lode-server or an HTTP remote",
                    conf.name
                )))
            }
        };
        Ok(Remote {
            name: conf.name.clone(),
            jobs,
            backend,
            rt,
        })
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn fatal(&self, msg: String) -> RemoteError {
        RemoteError::Fatal(format!("remote '{}': {msg}", self.name))
    }

    /// The subset of `oids` the remote does not hold.
    pub fn missing(
        &self,
        kind: HashKind,
        oids: &[ObjectId],
    ) -> Result<HashSet<ObjectId>, RemoteError> {
        if oids.is_empty() {
            return Ok(HashSet::new());
        }
        let r = match &self.backend {
            Backend::Folder(f) => f.missing(kind, oids),
            Backend::Http(h) => self.rt.block_on(h.missing(kind, oids, self.jobs)),
            Backend::Lode(l) => self.rt.block_on(l.missing(kind, oids, self.jobs)),
        };
        r.map_err(|m| self.fatal(m))
    }

    /// Sends objects from the cache. An `Err` means the remote is unusable; per-object problems
    /// are in the outcome.
    pub fn upload(
        &self,
        cache: &Arc<Cache>,
        kind: HashKind,
        items: Vec<Upload>,
        progress: &Progress,
    ) -> Result<Outcome, RemoteError> {
        if items.is_empty() {
            return Ok(Outcome::default());
        }
        let r = match &self.backend {
            Backend::Folder(f) => f.upload(cache, kind, items, progress),
            Backend::Http(h) => self
                .rt
                .block_on(h.upload(cache, kind, items, self.jobs, progress)),
            Backend::Lode(l) => self
                .rt
                .block_on(l.upload(cache, kind, items, self.jobs, progress)),
        };
        r.map_err(|m| self.fatal(m))
    }

    /// Fetches objects into the cache, verified and committed.
    pub fn download(
        &self,
        cache: &Arc<Cache>,
        kind: HashKind,
        items: Vec<Download>,
        progress: &Progress,
    ) -> Result<Outcome, RemoteError> {
        if items.is_empty() {
            return Ok(Outcome::default());
        }
        let r = match &self.backend {
            Backend::Folder(f) => f.download(cache, kind, items, progress),
            Backend::Http(h) => self
                .rt
                .block_on(h.download(cache, kind, items, self.jobs, progress)),
            Backend::Lode(l) => self
                .rt
                .block_on(l.download(cache, kind, items, self.jobs, progress)),
        };
        r.map_err(|m| self.fatal(m))
    }

    /// Reads one small object (a `.dir` manifest) into memory, verified; `None` when absent.
    pub fn read_small(
        &self,
        kind: HashKind,
        oid: ObjectId,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        let r = match &self.backend {
            Backend::Folder(f) => f.read_small(kind, oid),
            Backend::Http(h) => self.rt.block_on(h.read_small(kind, oid)),
            Backend::Lode(l) => self.rt.block_on(l.read_small(kind, oid)),
        };
        match r {
            Ok(v) => Ok(v),
            Err(Fail::Absent) => Ok(None),
            Err(Fail::Fatal(m)) => Err(self.fatal(m)),
            Err(Fail::Object(m)) => Err(self.fatal(format!("{oid}: {m}"))),
        }
    }
}

/// Whether `url` is a project of a reachable `lode-server`. Quick and quiet: any failure
/// counts as "no", since this only decides whether to print a hint.
pub fn is_lode_server_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return false;
    }
    let settings = settings::HttpSettings {
        auth: None,
        put: false,
        ssl: settings::SslVerify::On,
        connect_timeout: std::time::Duration::from_millis(1500),
        read_timeout: std::time::Duration::from_millis(1500),
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return false;
    };
    let Ok(core) = http::Http::new("", &settings) else {
        return false;
    };
    rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(3),
            lode::LodeServer::probe(&core, url),
        )
        .await
        .unwrap_or(false)
    })
}

/// How to give `lode` (and DVC) a lode-server token without committing it.
pub fn token_hint(name: &str) -> String {
    format!(
        "This is a lode-server remote. Store its token in the git-ignored .dvc/config.local:\n    \
         lode remote modify --local {name} auth basic\n    \
         lode remote modify --local {name} user token\n    \
         lode remote modify --local {name} password <token>\n\
         or set LODE_TOKEN in the environment."
    )
}

/// Checks bytes against an object name with the hashing rule of `kind`.
pub fn verify_bytes(kind: HashKind, oid: &ObjectId, bytes: &[u8]) -> Result<(), String> {
    let mut h = crate::hash::StreamHasher::new(kind);
    for chunk in bytes.chunks(crate::hash::CHUNK) {
        h.update(chunk);
    }
    if bytes.is_empty() {
        h.update(&[]);
    }
    let got = h.finish();
    if &got == oid.digest() {
        Ok(())
    } else {
        Err(format!(
            "downloaded content hashes to {} ({kind}), not to its name",
            hex::encode(got)
        ))
    }
}

/// `url` with any `user:password@` removed, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map(|x| x.1).unwrap_or(authority);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo() {
        assert_eq!(redact("http://u:p@h:1/x/y"), "http://h:1/x/y");
        assert_eq!(redact("http://h/x"), "http://h/x");
        assert_eq!(redact("/local/path"), "/local/path");
    }

    #[test]
    fn verifies_both_kinds() {
        let oid: ObjectId = "b202f333fba4fd38d4b8e5e693077aab".parse().unwrap();
        assert!(verify_bytes(HashKind::Md5, &oid, b"a,b\r\n1,2\r\n").is_ok());
        let legacy: ObjectId = "e5ebd4c02cefbe7955977c67ada242b7".parse().unwrap();
        assert!(verify_bytes(HashKind::Md5Dos2unix, &legacy, b"a,b\r\n1,2\r\n").is_ok());
        assert!(verify_bytes(HashKind::Md5, &legacy, b"a,b\r\n1,2\r\n").is_err());
        let empty: ObjectId = "d41d8cd98f00b204e9800998ecf8427e".parse().unwrap();
        assert!(verify_bytes(HashKind::Md5, &empty, b"").is_ok());
    }
}
