//! Pipelines: the stages of every `dvc.yaml` with the hashes their `dvc.lock` records, turned
//! into the same outputs `.dvc` files declare (see `docs/pipelines.md`).

pub mod dvclock;
pub mod dvcyaml;
pub mod emit;
pub mod interp;
pub mod owner;
pub mod params;
pub mod schema;
pub mod targets;
pub mod yaml;

use std::path::{Path, PathBuf};

use lode_proto::HashKind;

use crate::hash::walk::{normalize, relative_to};
use crate::repo::dvcfile::{DvcFileError, Out};
use dvclock::{LockItem, LockStage};
use yaml::Node;

/// The name DVC gives a pipeline file, and its lock.
pub const PROJECT_FILE: &str = "dvc.yaml";
pub const LOCK_FILE: &str = "dvc.lock";

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Unreadable, not YAML, or not what DVC's schema allows.
    #[error(transparent)]
    File(#[from] DvcFileError),
    /// A `${}`, `vars`, `foreach` or `matrix` that cannot be resolved (DVC's message).
    #[error("{0}")]
    Resolve(String),
}

/// A file that is not YAML, in DVC's words.
pub fn syntax(path: &Path, detail: String) -> PipelineError {
    PipelineError::File(DvcFileError::Syntax {
        path: path.to_path_buf(),
        detail,
    })
}

/// A file that DVC's schema rejects, with each problem.
pub fn invalid(path: &Path, errors: Vec<String>) -> PipelineError {
    PipelineError::File(DvcFileError::Invalid {
        path: path.to_path_buf(),
        errors,
    })
}

/// A path as DVC names files in its messages: relative to the current folder `cwd`, without
/// the `./` DVC puts before file names in validation messages.
pub fn shown(path: &Path, cwd: &Path) -> String {
    relative_to(path, cwd).to_string_lossy().into_owned()
}

/// Where pipeline files and the parameters they refer to are read from: the workspace, or a
/// commit.
pub trait Files: Sync {
    /// The bytes of the file at `path`, `None` when there is none.
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>>;
    fn is_dir(&self, path: &Path) -> bool;
}

/// The files on disk.
pub struct Workspace;

impl Files for Workspace {
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}

/// A dependency on a file or directory, with what the lock recorded for it.
#[derive(Debug, Clone)]
pub struct Dep {
    pub path: String,
    pub locked: Option<LockItem>,
}

/// A dependency on parameters, with the values the lock recorded (`None`: no entry for the file).
#[derive(Debug, Clone)]
pub struct ParamsDep {
    pub path: String,
    /// The keys tracked; empty for the whole file.
    pub keys: Vec<String>,
    pub locked: Option<Vec<(String, Node)>>,
}

/// A stage of a `dvc.yaml`, filled from its `dvc.lock` entry.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    /// The `dvc.yaml` (absolute).
    pub dvcyaml: PathBuf,
    /// The folder its paths are relative to (absolute).
    pub wdir: PathBuf,
    pub cmd: Node,
    pub deps: Vec<Dep>,
    pub params: Vec<ParamsDep>,
    /// Outputs (`outs`, `metrics` and `plots`), with the hashes the lock recorded.
    pub outs: Vec<Out>,
    pub frozen: bool,
    pub always_changed: bool,
    /// The stage's lock entry, if any.
    pub locked: Option<LockStage>,
}

impl Stage {
    /// The workspace path of output `i`.
    pub fn out_path(&self, i: usize) -> PathBuf {
        resolve(&self.wdir, &self.outs[i].path)
    }

    /// How DVC names the stage in messages: the bare name for the `dvc.yaml` of the current
    /// folder, else `path/dvc.yaml:name`.
    pub fn addressing(&self, cwd: &Path) -> String {
        let rel = relative_to(&self.dvcyaml, cwd);
        if rel == Path::new(PROJECT_FILE) {
            self.name.clone()
        } else {
            format!("{}:{}", rel.display(), self.name)
        }
    }

    /// Whether `cmd` differs from the one the lock recorded (only when there is an entry).
    pub fn cmd_changed(&self) -> bool {
        self.locked
            .as_ref()
            .is_some_and(|l| !params::same(&l.cmd, &self.cmd))
    }

    /// A stage with a command and neither dependencies nor outputs always runs, as does one
    /// marked `always_changed`.
    pub fn always_runs(&self) -> bool {
        self.always_changed
            || (self.deps.is_empty() && self.params.is_empty() && self.outs.is_empty())
    }

    /// The lock file next to the stage's `dvc.yaml`.
    pub fn lock_path(&self) -> PathBuf {
        self.dvcyaml.with_file_name(LOCK_FILE)
    }
}

/// A path of a stage (relative to `wdir`, or absolute) as a workspace path.
pub fn resolve(wdir: &Path, p: &str) -> PathBuf {
    let mut out = wdir.to_path_buf();
    for part in p.split(['/', '\\']).filter(|s| !s.is_empty()) {
        out.push(part);
    }
    if p.starts_with('/') {
        out = PathBuf::from(p);
    }
    normalize(&out)
}

fn read_text(files: &dyn Files, path: &Path) -> Result<Option<String>, PipelineError> {
    let Some(bytes) = files.read(path).map_err(|source| DvcFileError::Read {
        path: path.to_path_buf(),
        source,
    })?
    else {
        return Ok(None);
    };
    String::from_utf8(bytes).map(Some).map_err(|e| {
        syntax(
            path,
            format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        )
    })
}

/// The stages of the `dvc.yaml` at `path` (absolute), filled from the `dvc.lock` beside it.
/// Messages name files relative to `cwd`.
pub fn load(path: &Path, files: &dyn Files, cwd: &Path) -> Result<Vec<Stage>, PipelineError> {
    let text = read_text(files, path)?.unwrap_or_default();
    let defs = dvcyaml::stages(path, &text, files, cwd)?;
    let lock_path = path.with_file_name(LOCK_FILE);
    let lock = match read_text(files, &lock_path)? {
        Some(t) => dvclock::parse(&lock_path, &t)?,
        None => dvclock::Lock::default(),
    };
    Ok(defs
        .into_iter()
        .map(|d| {
            let locked = lock.stage(&d.name).cloned();
            let find = |items: Option<&Vec<LockItem>>, p: &str| {
                items.and_then(|v| v.iter().find(|i| i.path == p).cloned())
            };
            let outs = d
                .outs
                .iter()
                .map(|o| {
                    let item = find(locked.as_ref().map(|l| &l.outs), &o.path);
                    Out {
                        path: o.path.clone(),
                        oid: item.as_ref().and_then(|i| i.oid),
                        kind: item.as_ref().map_or(HashKind::Md5, |i| i.kind),
                        size: item.as_ref().and_then(|i| i.size),
                        nfiles: item.as_ref().and_then(|i| i.nfiles),
                        isexec: item.as_ref().is_some_and(|i| i.isexec),
                        cache: o.cache,
                        push: o.push,
                    }
                })
                .collect();
            let deps = d
                .deps
                .iter()
                .map(|p| Dep {
                    path: p.clone(),
                    locked: find(locked.as_ref().map(|l| &l.deps), p),
                })
                .collect();
            let params = d
                .params
                .iter()
                .map(|p| ParamsDep {
                    path: p.path.clone(),
                    keys: p.keys.clone(),
                    locked: locked.as_ref().and_then(|l| {
                        l.params
                            .iter()
                            .find(|(f, _)| *f == p.path)
                            .map(|(_, vals)| {
                                if p.keys.is_empty() {
                                    vals.clone()
                                } else {
                                    vals.iter()
                                        .filter(|(k, _)| p.keys.contains(k))
                                        .cloned()
                                        .collect()
                                }
                            })
                    }),
                })
                .collect();
            Stage {
                name: d.name,
                dvcyaml: path.to_path_buf(),
                wdir: d.wdir,
                cmd: d.cmd,
                deps,
                params,
                outs,
                frozen: d.frozen,
                always_changed: d.always_changed,
                locked,
            }
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Files held in memory, keyed by absolute path.
    pub struct MemFiles(pub Vec<(PathBuf, Vec<u8>)>);

    impl MemFiles {
        pub fn new(files: &[(&str, &str)]) -> MemFiles {
            MemFiles(
                files
                    .iter()
                    .map(|(p, t)| (PathBuf::from(p), t.as_bytes().to_vec()))
                    .collect(),
            )
        }
    }

    impl Files for MemFiles {
        fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
            Ok(self
                .0
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, b)| b.clone()))
        }

        fn is_dir(&self, path: &Path) -> bool {
            self.0.iter().any(|(p, _)| p.starts_with(path) && p != path)
        }
    }

    #[test]
    fn fills_stages_from_the_lock() {
        let files = MemFiles::new(&[
            (
                "/r/dvc.yaml",
                "stages:\n  prep:\n    cmd: cp in out\n    deps: [in]\n    outs:\n    - out\n    - new\n  nolock:\n    cmd: x\n    outs: [o]\n",
            ),
            (
                "/r/dvc.lock",
                "schema: '2.0'\nstages:\n  prep:\n    cmd: cp in out\n    deps:\n    - path: in\n      hash: md5\n      md5: b1946ac92492d2347c6235b4d2611184\n      size: 6\n    outs:\n    - path: out\n      hash: md5\n      md5: b1946ac92492d2347c6235b4d2611184\n      size: 6\n",
            ),
        ]);
        let st = load(Path::new("/r/dvc.yaml"), &files, Path::new("/r")).unwrap();
        assert_eq!(st.len(), 2);
        assert!(st[0].outs[0].oid.is_some());
        assert_eq!(st[0].outs[0].kind, HashKind::Md5);
        assert!(st[0].outs[1].oid.is_none());
        assert!(st[0].deps[0].locked.is_some());
        assert!(!st[0].cmd_changed());
        assert!(st[1].locked.is_none());
        assert_eq!(st[0].out_path(0), PathBuf::from("/r/out"));
        assert_eq!(st[0].addressing(Path::new("/r")), "prep");
        assert_eq!(st[0].addressing(Path::new("/r/sub")), "../dvc.yaml:prep");
    }
}
