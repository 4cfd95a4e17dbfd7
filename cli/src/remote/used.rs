//! The objects a transfer is about: outputs of the workspace's `.dvc` files (or of the given
//! targets), plus those of every branch, tag or commit when asked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};

use crate::cache::outputs::Outputs;
use crate::hash::walk::relative_to;
use crate::repo::revisions::{DeclaredOut, Revision, Scope, Walker};
use crate::{ExitCode, LodeError};

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

/// Adds the cached outputs among `outs` whose object is not in `seen` yet.
fn add_outs(
    used: &mut Vec<UsedOut>,
    seen: &mut HashSet<(HashKind, ObjectId)>,
    outs: impl IntoIterator<Item = DeclaredOut>,
    cwd: &Path,
) {
    for d in outs {
        let Some(oid) = d.out.oid else { continue };
        if !d.out.cache || !seen.insert((d.out.kind, oid)) {
            continue;
        }
        used.push(UsedOut {
            name: relative_to(&d.path, cwd).to_string_lossy().into_owned(),
            kind: d.out.kind,
            oid,
            size: d.out.size,
        });
    }
}

/// Outputs in scope, each object once. `code` is the exit code for a bad `.dvc` file or target.
pub(crate) fn collect(
    outputs: &Outputs,
    targets: &[PathBuf],
    cwd: &Path,
    scope: &Scope,
    code: ExitCode,
) -> Result<Vec<UsedOut>, LodeError> {
    let walker = Walker::new(&outputs.root, &outputs.ignore);
    let mut used = Vec::new();
    let mut seen = HashSet::new();
    if targets.is_empty() {
        let here = walker
            .outputs_at(&Revision::Workspace)
            .map_err(|e| e.into_lode(code, cwd))?;
        add_outs(&mut used, &mut seen, here.outs, cwd);
    } else {
        for t in outputs.tracked(targets, cwd, code)? {
            let named = t.outs.iter().map(|&i| DeclaredOut {
                path: t.file.out_path(i),
                out: t.file.outs[i].clone(),
            });
            add_outs(&mut used, &mut seen, named, cwd);
        }
    }
    let failed = |e: crate::repo::revisions::RevisionError| e.into_lode(code, cwd);
    for rev in walker.commits(scope).map_err(failed)? {
        let found = walker.outputs_at(&rev).map_err(failed)?;
        add_outs(&mut used, &mut seen, found.outs, cwd);
    }
    Ok(used)
}
