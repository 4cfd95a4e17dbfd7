//! The revisions a command looks at (the workspace, and the Git commits that `--all-branches`,
//! `--all-tags`, `--all-commits` and `--rev` select) and the outputs tracked at each.
//!
//! [`Walker::outputs_at`] is the one place that turns the files of a revision into the outputs
//! they declare (`.dvc` files and pipeline stages); [`is_declaration`] is the one place that
//! says which files those are in a commit. `push`,
//! `pull`, `fetch`, `status -c` and `gc` all read revisions through here, so a new kind of
//! declaration (a pipeline file) is added once for all of them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::git::{Git, GitError};
use crate::repo::dvcfile::{DvcFile, DvcFileError, Out};
use crate::repo::dvcignore::DvcIgnore;
use crate::repo::pipeline::owner::{self, Owner};
use crate::repo::pipeline::{self, Files, PipelineError, LOCK_FILE, PROJECT_FILE};
use crate::{ExitCode, LodeError};

/// Which Git revisions a command reads besides the workspace.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub all_branches: bool,
    pub all_tags: bool,
    pub all_commits: bool,
    /// `gc --rev`: this commit (and the ones before it, see `num`).
    pub rev: Option<String>,
    /// `gc -n`: how many commits along first parents from `rev` and from each branch tip.
    pub num: Option<usize>,
}

impl Scope {
    /// Whether any commit is in scope (else only the workspace is read).
    pub fn any(&self) -> bool {
        self.all_branches || self.all_tags || self.all_commits || self.rev.is_some()
    }
}

/// Where the files of a revision are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Revision {
    /// The files on disk.
    Workspace,
    /// A Git commit (full id), read from Git's object store without a checkout.
    Commit(String),
}

impl Revision {
    /// The short form DVC's messages use for a commit.
    fn short(&self) -> &str {
        match self {
            Revision::Workspace => "workspace",
            Revision::Commit(c) => &c[..c.len().min(7)],
        }
    }
}

/// A file that declares outputs, as read at a revision.
#[derive(Debug, Clone)]
pub(crate) struct DeclarationFile {
    /// Where the file is (or would be) in the workspace.
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// One output declared at a revision.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredOut {
    /// The output's workspace path.
    pub path: PathBuf,
    pub out: Out,
}

/// What the files of one revision track.
#[derive(Debug, Default)]
pub(crate) struct RevOutputs {
    /// Outputs of `.dvc` files and of pipeline stages (with the hashes their `dvc.lock`
    /// records), in file order.
    pub outs: Vec<DeclaredOut>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RevisionError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("`--all-branches`, `--all-tags` and `--all-commits` need a Git repository")]
    NoGit,
    /// A pipeline (or `.dvc` file) of the workspace that cannot be read, is invalid or cannot
    /// be resolved.
    #[error(transparent)]
    Pipeline(PipelineError),
    /// A pipeline of a commit that is invalid or cannot be resolved.
    #[error("{source} (at revision {rev})")]
    PipelineAtCommit {
        rev: String,
        #[source]
        source: PipelineError,
    },
    /// A `.dvc` file of a commit that is invalid.
    #[error("{source} (at revision {rev})")]
    AtCommit {
        rev: String,
        #[source]
        source: DvcFileError,
    },
    #[error("'{path}' at revision {rev} is not valid UTF-8")]
    NotUtf8 { path: String, rev: String },
}

impl RevisionError {
    /// The command's error; `code` is its exit code for an invalid workspace `.dvc` file, which
    /// is named relative to `cwd`.
    pub fn into_lode(self, code: ExitCode, cwd: &Path) -> LodeError {
        match self {
            RevisionError::Pipeline(e) => e.into_lode(code, cwd),
            RevisionError::PipelineAtCommit { rev, source } => {
                let msg = match source.into_lode(ExitCode::Error, cwd) {
                    LodeError::Bare { msg, .. } => msg,
                    other => other.to_string(),
                };
                LodeError::Other(format!(
                    "{} (at revision {rev})",
                    msg.strip_prefix("ERROR: ").unwrap_or(&msg)
                ))
            }
            RevisionError::AtCommit { rev, source } => {
                let msg = match source.into_lode(ExitCode::Error, cwd) {
                    LodeError::Bare { msg, .. } => msg,
                    other => other.to_string(),
                };
                LodeError::Other(format!("{msg} (at revision {rev})"))
            }
            other => LodeError::Other(other.to_string()),
        }
    }
}

/// Whether a file of this name declares outputs: a `.dvc` file, a pipeline's `dvc.yaml`, or the
/// `dvc.lock` that records its stages.
pub(crate) fn is_declaration(name: &str) -> bool {
    is_dvc_file(name) || name == PROJECT_FILE || name == LOCK_FILE
}

fn is_dvc_file(name: &str) -> bool {
    name.ends_with(".dvc") && name != ".dvc"
}

/// The files of a commit: the declarations read up front, anything else (parameters files a
/// pipeline interpolates) read from Git when asked for.
struct CommitFiles<'a> {
    git: &'a Git,
    rev: &'a str,
    /// The repository's folder in the Git work tree (`/`-joined, empty at the top).
    sub: &'a str,
    root: &'a Path,
    read: HashMap<PathBuf, Vec<u8>>,
}

impl Files for CommitFiles<'_> {
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
        if let Some(b) = self.read.get(path) {
            return Ok(Some(b.clone()));
        }
        let Ok(rel) = path.strip_prefix(self.root) else {
            return Ok(None);
        };
        let mut in_git = self.sub.to_string();
        for c in rel.components() {
            if !in_git.is_empty() {
                in_git.push('/');
            }
            in_git.push_str(&c.as_os_str().to_string_lossy());
        }
        self.git
            .blob_at(self.rev, &in_git)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    fn is_dir(&self, _path: &Path) -> bool {
        false
    }
}

fn declared(owner: &Owner) -> impl Iterator<Item = DeclaredOut> + '_ {
    (0..owner.outs().len()).map(|i| DeclaredOut {
        path: owner.out_path(i),
        out: owner.outs()[i].clone(),
    })
}

/// The outputs the declaration files of a commit track; pipelines read any other file they
/// need through `files`.
fn outputs_of_commit(
    files: Vec<DeclarationFile>,
    rev: &Revision,
    commit: &CommitFiles<'_>,
) -> Result<RevOutputs, RevisionError> {
    let short = rev.short().to_string();
    let parsed: Vec<Result<Vec<Owner>, RevisionError>> = files
        .into_par_iter()
        .filter(|f| f.path.file_name() != Some(std::ffi::OsStr::new(LOCK_FILE)))
        .map(|f| {
            if f.path.file_name() == Some(std::ffi::OsStr::new(PROJECT_FILE)) {
                let stages = pipeline::load(&f.path, commit, commit.root).map_err(|source| {
                    RevisionError::PipelineAtCommit {
                        rev: short.clone(),
                        source,
                    }
                })?;
                return Ok(stages
                    .into_iter()
                    .map(|s| Owner::Stage(Box::new(s)))
                    .collect());
            }
            let text = String::from_utf8(f.bytes).map_err(|_| RevisionError::NotUtf8 {
                path: f.path.display().to_string(),
                rev: short.clone(),
            })?;
            let file = DvcFile::parse(&f.path, text).map_err(|source| RevisionError::AtCommit {
                rev: short.clone(),
                source,
            })?;
            Ok(vec![Owner::File(file)])
        })
        .collect();
    let mut found = RevOutputs::default();
    for owners in parsed {
        for o in owners? {
            found.outs.extend(declared(&o));
        }
    }
    Ok(found)
}

/// Reads the revisions of one repository.
pub(crate) struct Walker<'a> {
    root: &'a Path,
    ignore: &'a DvcIgnore,
    /// The Git work tree around the repository and the repository's folder in it (`/`-joined,
    /// empty at the top); looked up on first use.
    git: std::cell::OnceCell<Option<(Git, String)>>,
}

impl<'a> Walker<'a> {
    /// A walker over the repository at `root`, whose workspace is filtered by `ignore`.
    pub fn new(root: &'a Path, ignore: &'a DvcIgnore) -> Walker<'a> {
        Walker {
            root,
            ignore,
            git: std::cell::OnceCell::new(),
        }
    }

    /// A walker over the commits of `git` (a bare clone of another repository, say) whose
    /// DVC repository is in its folder `sub` (`/`-joined, empty at the top); outputs are
    /// named under `root`.
    pub fn of_git(root: &'a Path, ignore: &'a DvcIgnore, git: Git, sub: String) -> Walker<'a> {
        let cell = std::cell::OnceCell::new();
        let _ = cell.set(Some((git, sub)));
        Walker {
            root,
            ignore,
            git: cell,
        }
    }

    fn git(&self) -> Result<&(Git, String), RevisionError> {
        if self.git.get().is_none() {
            let found = Git::discover(self.root)?.map(|g| {
                let sub = subdir_in(&g.root, self.root);
                (g, sub)
            });
            let _ = self.git.set(found);
        }
        self.git
            .get()
            .and_then(Option::as_ref)
            .ok_or(RevisionError::NoGit)
    }

    /// The commits `scope` selects, each once, in DVC's order: `--rev` and the commits before
    /// it, then every commit or the branch tips (and the commits before them) and tags.
    pub fn commits(&self, scope: &Scope) -> Result<Vec<Revision>, RevisionError> {
        if !scope.any() {
            return Ok(Vec::new());
        }
        let (git, _) = self.git()?;
        let num = scope.num.unwrap_or(1);
        let mut revs: Vec<String> = Vec::new();
        if let Some(rev) = &scope.rev {
            revs.extend(git.first_parent_commits(rev, num)?);
        }
        if scope.all_commits {
            revs.extend(git.all_commits()?);
        } else {
            if scope.all_branches {
                for tip in git.branch_commits()? {
                    if num == 1 {
                        revs.push(tip);
                    } else {
                        revs.extend(git.first_parent_commits(&tip, num)?);
                    }
                }
            }
            if scope.all_tags {
                revs.extend(git.tag_commits()?);
            }
        }
        let mut seen = HashSet::new();
        revs.retain(|r| seen.insert(r.clone()));
        Ok(revs.into_iter().map(Revision::Commit).collect())
    }

    /// The declaration files of a commit (`.dvc` files, `dvc.yaml` and `dvc.lock`).
    fn files_at_commit(&self, c: &str) -> Result<Vec<DeclarationFile>, RevisionError> {
        let (git, sub) = self.git()?;
        let files = git.files_at(c, sub, &is_declaration)?;
        Ok(files
            .into_iter()
            .map(|f| {
                let rel = if sub.is_empty() {
                    f.path.as_str()
                } else {
                    f.path.get(sub.len() + 1..).unwrap_or(f.path.as_str())
                };
                DeclarationFile {
                    path: self.root.join(rel),
                    bytes: f.bytes,
                }
            })
            .collect())
    }

    /// What `rev` tracks. The workspace is walked as every command walks it: folders
    /// `.dvcignore` hides and folders that are outputs are not searched.
    pub fn outputs_at(&self, rev: &Revision) -> Result<RevOutputs, RevisionError> {
        match rev {
            Revision::Workspace => {
                let root = self.root;
                let ignored = |p: &Path, is_dir: bool| match p.strip_prefix(root) {
                    Ok(rel) => self.ignore.is_ignored(rel, is_dir),
                    Err(_) => false,
                };
                let owners = owner::collect(self.root, &ignored, self.root)
                    .map_err(RevisionError::Pipeline)?;
                let mut found = RevOutputs::default();
                for o in &owners {
                    found.outs.extend(declared(o));
                }
                Ok(found)
            }
            Revision::Commit(c) => {
                let files = self.files_at_commit(c)?;
                let (git, sub) = self.git()?;
                let commit = CommitFiles {
                    git,
                    rev: c,
                    sub,
                    root: self.root,
                    read: files
                        .iter()
                        .map(|f| (f.path.clone(), f.bytes.clone()))
                        .collect(),
                };
                outputs_of_commit(files, rev, &commit)
            }
        }
    }
}

/// `root` relative to the Git work tree's top `top`, `/`-joined (empty at the top).
fn subdir_in(top: &Path, root: &Path) -> String {
    let top = std::fs::canonicalize(top).unwrap_or_else(|_| top.to_path_buf());
    let here = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    here.strip_prefix(&top)
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let st = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("git");
        assert!(st.success(), "git {args:?}");
    }

    const A: &str = "0cc175b9c0f1b6a831c399e269772661";
    const B: &str = "92eb5ffee6ae2fec3ad71c777531578f";
    const C: &str = "4a8a08f09d37b73795649038408b5f33";

    fn dvc_text(md5: &str, path: &str) -> String {
        format!("outs:\n- md5: {md5}\n  size: 1\n  hash: md5\n  path: {path}\n")
    }

    #[test]
    fn reads_workspace_and_commits_of_a_subfolder_repository() {
        let dir = tempfile::tempdir().expect("tempdir");
        let top = dir.path();
        git(top, &["init", "-q", "-b", "main"]);
        git(top, &["config", "user.email", "t@example.com"]);
        git(top, &["config", "user.name", "T"]);
        let root = top.join("proj");
        std::fs::create_dir_all(root.join(".dvc")).expect("mkdir");
        std::fs::create_dir_all(root.join("d")).expect("mkdir");
        std::fs::write(root.join("a.dvc"), dvc_text(A, "a")).expect("write");
        std::fs::write(top.join("outside.dvc"), dvc_text(C, "c")).expect("write");
        std::fs::write(
            root.join("dvc.yaml"),
            "stages:\n  s:\n    cmd: x\n    outs: [o]\n",
        )
        .expect("write");
        std::fs::write(
            root.join("dvc.lock"),
            format!("schema: '2.0'\nstages:\n  s:\n    cmd: x\n    outs:\n    - path: o\n      md5: {C}\n"),
        )
        .expect("write");
        git(top, &["add", "."]);
        git(top, &["commit", "-q", "-m", "one"]);
        git(top, &["tag", "v1"]);
        std::fs::write(root.join("a.dvc"), dvc_text(B, "a")).expect("write");
        std::fs::write(root.join("d/x.dvc"), dvc_text(C, "x")).expect("write");
        git(top, &["add", "."]);
        git(top, &["commit", "-q", "-m", "two"]);
        std::fs::write(root.join("a.dvc"), dvc_text(C, "a")).expect("write");

        let ignore = DvcIgnore::new(&root);
        let w = Walker::new(&root, &ignore);
        let ws = w.outputs_at(&Revision::Workspace).expect("workspace");
        let mut oids: Vec<String> = ws
            .outs
            .iter()
            .map(|o| o.out.oid.expect("oid").to_string())
            .collect();
        oids.sort();
        assert_eq!(oids, vec![C.to_string(), C.to_string(), C.to_string()]);
        assert!(ws.outs.iter().any(|o| o.path == root.join("d/x")));
        assert!(ws.outs.iter().any(|o| o.path == root.join("o")));

        assert!(w.commits(&Scope::default()).expect("none").is_empty());
        let tags = w
            .commits(&Scope {
                all_tags: true,
                ..Scope::default()
            })
            .expect("tags");
        assert_eq!(tags.len(), 1);
        let at_tag = w.outputs_at(&tags[0]).expect("tag");
        assert_eq!(at_tag.outs.len(), 2, "outside.dvc is not in the repository");
        let a = at_tag
            .outs
            .iter()
            .find(|o| o.path == root.join("a"))
            .expect("a");
        assert_eq!(a.out.oid.expect("oid").to_string(), A);
        let o = at_tag
            .outs
            .iter()
            .find(|o| o.path == root.join("o"))
            .expect("o");
        assert_eq!(o.out.oid.expect("oid").to_string(), C);

        let all = w
            .commits(&Scope {
                all_commits: true,
                all_tags: true,
                ..Scope::default()
            })
            .expect("all");
        assert_eq!(all.len(), 2, "each commit once");
        let last_two = w
            .commits(&Scope {
                rev: Some("main".into()),
                num: Some(2),
                ..Scope::default()
            })
            .expect("rev");
        assert_eq!(last_two.len(), 2);
        assert!(w
            .commits(&Scope {
                rev: Some("nope".into()),
                ..Scope::default()
            })
            .is_err());
    }

    #[test]
    fn names_the_commit_of_an_invalid_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        git(root, &["init", "-q", "-b", "main"]);
        git(root, &["config", "user.email", "t@example.com"]);
        git(root, &["config", "user.name", "T"]);
        std::fs::write(root.join("a.dvc"), "outs: 3\n").expect("write");
        git(root, &["add", "."]);
        git(root, &["commit", "-q", "-m", "bad"]);
        let ignore = DvcIgnore::new(root);
        let w = Walker::new(root, &ignore);
        let revs = w
            .commits(&Scope {
                all_branches: true,
                ..Scope::default()
            })
            .expect("branches");
        let e = w.outputs_at(&revs[0]).expect_err("invalid").to_string();
        assert!(e.contains("expected a list, in outs"), "{e}");
        assert!(e.contains(" (at revision "), "{e}");
        let outside = tempfile::tempdir().expect("tempdir");
        let ignore = DvcIgnore::new(outside.path());
        let w = Walker::new(outside.path(), &ignore);
        let e = w
            .commits(&Scope {
                all_tags: true,
                ..Scope::default()
            })
            .expect_err("no git");
        assert!(matches!(e, RevisionError::NoGit));
    }
}
