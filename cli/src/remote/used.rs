//! The objects a transfer is about: outputs of the workspace's `.dvc` files (or of the given
//! targets), plus those of every branch, tag or commit when asked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};

use crate::cache::outputs::Outputs;
use crate::git::Git;
use crate::hash::walk::relative_to;
use crate::repo::dvcfile::DvcFile;
use crate::repo::Repo;
use crate::LodeError;

/// Which Git revisions besides the workspace contribute objects.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope {
    pub all_branches: bool,
    pub all_tags: bool,
    pub all_commits: bool,
}

impl Scope {
    pub fn any(&self) -> bool {
        self.all_branches || self.all_tags || self.all_commits
    }
}

/// One cached output in scope.
#[derive(Debug, Clone)]
pub struct UsedOut {
    /// The output's path as shown to the user (relative to the current folder).
    pub name: String,
    pub kind: HashKind,
    pub oid: ObjectId,
    /// Size recorded in the `.dvc` file (for a directory: of all its files).
    pub size: Option<u64>,
}

fn add_file(
    out: &mut Vec<UsedOut>,
    seen: &mut HashSet<(HashKind, ObjectId)>,
    f: &DvcFile,
    outs: &[usize],
    cwd: &Path,
) {
    for &i in outs {
        let o = &f.outs[i];
        let Some(oid) = o.oid else { continue };
        if !o.cache || !seen.insert((o.kind, oid)) {
            continue;
        }
        out.push(UsedOut {
            name: relative_to(&f.out_path(i), cwd)
                .to_string_lossy()
                .into_owned(),
            kind: o.kind,
            oid,
            size: o.size,
        });
    }
}

fn git_err(e: crate::git::GitError) -> LodeError {
    LodeError::Other(e.to_string())
}

/// Outputs in scope, each object once. `code` is the exit code for a bad `.dvc` file or target.
pub fn collect(
    repo: &Repo,
    outputs: &Outputs,
    targets: &[PathBuf],
    cwd: &Path,
    scope: Scope,
    code: u8,
) -> Result<Vec<UsedOut>, LodeError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for t in outputs.tracked(targets, cwd, code)? {
        add_file(&mut out, &mut seen, &t.file, &t.outs, cwd);
    }
    if !scope.any() {
        return Ok(out);
    }
    let git = Git::discover(&repo.root).map_err(git_err)?.ok_or_else(|| {
        LodeError::Other(
            "`--all-branches`, `--all-tags` and `--all-commits` need a Git repository".into(),
        )
    })?;
    let mut revs: Vec<String> = Vec::new();
    if scope.all_commits {
        revs.extend(git.all_commits().map_err(git_err)?);
    } else {
        if scope.all_branches {
            revs.extend(git.branch_commits().map_err(git_err)?);
        }
        if scope.all_tags {
            revs.extend(git.tag_commits().map_err(git_err)?);
        }
    }
    let mut seen_revs = HashSet::new();
    revs.retain(|r| seen_revs.insert(r.clone()));
    let top = std::fs::canonicalize(&git.root).unwrap_or_else(|_| git.root.clone());
    let here = std::fs::canonicalize(&repo.root).unwrap_or_else(|_| repo.root.clone());
    let sub = here
        .strip_prefix(&top)
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default();
    for rev in revs {
        for f in git.dvc_files_at(&rev, &sub).map_err(git_err)? {
            let rel = if sub.is_empty() {
                f.path.as_str()
            } else {
                f.path.get(sub.len() + 1..).unwrap_or(f.path.as_str())
            };
            let path = repo.root.join(rel);
            let text = String::from_utf8(f.bytes).map_err(|_| {
                LodeError::Other(format!("'{}' at revision {rev} is not valid UTF-8", f.path))
            })?;
            let parsed = DvcFile::parse(&path, text).map_err(|e| {
                LodeError::Other(format!("{e} (at revision {})", &rev[..rev.len().min(7)]))
            })?;
            let all: Vec<usize> = (0..parsed.outs.len()).collect();
            add_file(&mut out, &mut seen, &parsed, &all, cwd);
        }
    }
    Ok(out)
}
