//! The revisions a command looks at (the workspace, and the Git commits that `--all-branches`,
//! `--all-tags`, `--all-commits` and `--rev` select) and the outputs tracked at each.
//!
//! [`outputs_of`] is the one place that turns the files of a revision into the outputs they
//! declare; [`is_declaration`] is the one place that says which files those are. `push`,
//! `pull`, `fetch`, `status -c` and `gc` all read revisions through here, so a new kind of
//! declaration (a pipeline file) is added once for all of them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use lode_proto::ObjectId;
use rayon::prelude::*;
use regex::Regex;

use crate::git::{Git, GitError};
use crate::repo::dvcfile::{self, DvcFile, DvcFileError, Out};
use crate::repo::dvcignore::DvcIgnore;
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
    /// Outputs of `.dvc` files, in file order.
    pub outs: Vec<DeclaredOut>,
    /// Every md5 a pipeline's `dvc.lock` names (outputs and dependencies alike; the lock does
    /// not say which layout). Only `gc` uses them: keeping too much is harmless there.
    pub lock_hashes: Vec<ObjectId>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RevisionError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("`--all-branches`, `--all-tags` and `--all-commits` need a Git repository")]
    NoGit,
    /// A `.dvc` file of the workspace that cannot be read or is invalid.
    #[error(transparent)]
    Workspace(DvcFileError),
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
            RevisionError::Workspace(e) => e.into_lode(code, cwd),
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

/// Whether a file of this name declares outputs: a `.dvc` file, or a pipeline's `dvc.lock`.
pub(crate) fn is_declaration(name: &str) -> bool {
    is_dvc_file(name) || is_lock_file(name)
}

fn is_dvc_file(name: &str) -> bool {
    name.ends_with(".dvc") && name != ".dvc"
}

fn is_lock_file(name: &str) -> bool {
    name == "dvc.lock"
}

static LOCK_MD5: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)\bmd5:\s*['"]?([0-9a-f]{32}(?:\.dir)?)\b"#).expect("static regex")
});

/// The outputs the declaration files of `rev` track.
pub(crate) fn outputs_of(
    files: Vec<DeclarationFile>,
    rev: &Revision,
) -> Result<RevOutputs, RevisionError> {
    let parsed: Vec<Result<Parsed, RevisionError>> =
        files.into_par_iter().map(|f| parse_one(f, rev)).collect();
    let mut found = RevOutputs::default();
    for p in parsed {
        match p? {
            Parsed::Dvc(file) => {
                for (i, out) in file.outs.iter().enumerate() {
                    found.outs.push(DeclaredOut {
                        path: file.out_path(i),
                        out: out.clone(),
                    });
                }
            }
            Parsed::Lock(hashes) => found.lock_hashes.extend(hashes),
        }
    }
    Ok(found)
}

enum Parsed {
    Dvc(DvcFile),
    Lock(Vec<ObjectId>),
}

fn parse_one(f: DeclarationFile, rev: &Revision) -> Result<Parsed, RevisionError> {
    let name = f
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if is_lock_file(&name) {
        let text = String::from_utf8_lossy(&f.bytes);
        return Ok(Parsed::Lock(
            LOCK_MD5
                .captures_iter(&text)
                .filter_map(|c| c[1].parse().ok())
                .collect(),
        ));
    }
    let file = match rev {
        Revision::Workspace => {
            DvcFile::from_bytes(&f.path, f.bytes).map_err(RevisionError::Workspace)?
        }
        Revision::Commit(c) => {
            let text = String::from_utf8(f.bytes).map_err(|_| RevisionError::NotUtf8 {
                path: f.path.display().to_string(),
                rev: c.clone(),
            })?;
            DvcFile::parse(&f.path, text).map_err(|source| RevisionError::AtCommit {
                rev: rev.short().to_string(),
                source,
            })?
        }
    };
    Ok(Parsed::Dvc(file))
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

    /// The declaration files of `rev`. In the workspace, folders `.dvcignore` hides and
    /// folders that are outputs are not searched.
    pub fn files_at(&self, rev: &Revision) -> Result<Vec<DeclarationFile>, RevisionError> {
        match rev {
            Revision::Workspace => {
                let root = self.root;
                let ignored = |p: &Path, is_dir: bool| match p.strip_prefix(root) {
                    Ok(rel) => self.ignore.is_ignored(rel, is_dir),
                    Err(_) => false,
                };
                let paths = dvcfile::collect_named(self.root, &ignored, &|name| {
                    name.to_str().is_some_and(is_declaration)
                });
                paths
                    .into_par_iter()
                    .map(|path| match std::fs::read(&path) {
                        Ok(bytes) => Ok(DeclarationFile { path, bytes }),
                        Err(source) => Err(RevisionError::Workspace(DvcFileError::Read {
                            path,
                            source,
                        })),
                    })
                    .collect()
            }
            Revision::Commit(c) => {
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
        }
    }

    /// What `rev` tracks.
    pub fn outputs_at(&self, rev: &Revision) -> Result<RevOutputs, RevisionError> {
        outputs_of(self.files_at(rev)?, rev)
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
            root.join("dvc.lock"),
            format!("schema: '2.0'\nstages:\n  s:\n    outs:\n    - path: o\n      md5: {C}\n"),
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
        assert_eq!(oids, vec![C.to_string(), C.to_string()]);
        assert!(ws.outs.iter().any(|o| o.path == root.join("d/x")));
        assert_eq!(ws.lock_hashes.len(), 1);

        assert!(w.commits(&Scope::default()).expect("none").is_empty());
        let tags = w
            .commits(&Scope {
                all_tags: true,
                ..Scope::default()
            })
            .expect("tags");
        assert_eq!(tags.len(), 1);
        let at_tag = w.outputs_at(&tags[0]).expect("tag");
        assert_eq!(at_tag.outs.len(), 1, "outside.dvc is not in the repository");
        assert_eq!(at_tag.outs[0].path, root.join("a"));
        assert_eq!(at_tag.outs[0].out.oid.expect("oid").to_string(), A);
        assert_eq!(at_tag.lock_hashes.len(), 1);

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
