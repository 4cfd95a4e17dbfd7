//! The objects a transfer is about: outputs of the workspace's `.dvc` files (or of the given
//! targets), plus those of every branch, tag or commit when asked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};

use crate::cache::outputs::Outputs;
use crate::hash::walk::relative_to;
use crate::printer::Printer;
use crate::repo::pipeline::owner::Owner;
use crate::repo::revisions::{DeclaredOut, Scope, Walker};
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

/// Which way a transfer goes: a push leaves out outputs marked `push: false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Direction {
    #[default]
    Fetch,
    Push,
}

/// Adds the cached outputs among `outs` whose object is not in `seen` yet; for a push not
/// those marked `push: false`.
fn add_outs(
    used: &mut Vec<UsedOut>,
    seen: &mut HashSet<(HashKind, ObjectId)>,
    outs: impl IntoIterator<Item = DeclaredOut>,
    cwd: &Path,
    direction: Direction,
) {
    for d in outs {
        let Some(oid) = d.out.oid else { continue };
        let held_back = direction == Direction::Push && !d.out.push;
        if !d.out.cache || held_back || !seen.insert((d.out.kind, oid)) {
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

/// DVC's warning for a cached output without a recorded hash (a stage not yet reproduced or
/// committed): it cannot be transferred.
fn warn_unversioned(out: Printer, owner: &Owner, path: &Path, cwd: &Path) {
    let name = relative_to(path, cwd).to_string_lossy().into_owned();
    let addr = owner.addressing(cwd);
    let mut msg = format!(
        "Output '{name}'(stage: '{addr}') is missing version info. Cache for it will not be collected. Use `dvc repro` to get your pipeline up to date."
    );
    if path.exists() {
        msg.push_str(&format!(
            "\nYou can also use `dvc commit {addr}` to associate existing '{name}' with stage: '{addr}'."
        ));
    }
    out.warn(msg);
}

/// How [`collect`] reports and what it leaves out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Purpose {
    /// The exit code for a bad declaration or target.
    pub code: ExitCode,
    pub direction: Direction,
    /// Where DVC's warning about outputs without a recorded hash goes (`status -c` gives
    /// it; push, pull and fetch pass them over silently, as DVC's do).
    pub unversioned: Option<Printer>,
}

/// Outputs in scope, each object once: the workspace's declarations (or those `targets` name)
/// and those of the commits `scope` selects.
pub(crate) fn collect(
    outputs: &Outputs,
    targets: &[PathBuf],
    cwd: &Path,
    scope: &Scope,
    purpose: Purpose,
) -> Result<Vec<UsedOut>, LodeError> {
    let Purpose {
        code,
        direction,
        unversioned,
    } = purpose;
    let walker = Walker::new(&outputs.root, &outputs.ignore);
    let mut used = Vec::new();
    let mut seen = HashSet::new();
    for t in outputs.tracked(targets, cwd, code)? {
        let mut named = Vec::new();
        for &i in &t.outs {
            let o = &t.owner.outs()[i];
            let path = t.owner.out_path(i);
            // Outputs outside the repository are never stored in its cache.
            let held_back = direction == Direction::Push && !o.push;
            if !o.cache || held_back || !path.starts_with(&outputs.root) {
                continue;
            }
            if o.oid.is_none() {
                if let Some(out) = unversioned {
                    warn_unversioned(out, &t.owner, &path, cwd);
                }
                continue;
            }
            named.push(DeclaredOut {
                path,
                out: o.clone(),
            });
        }
        add_outs(&mut used, &mut seen, named, cwd, direction);
    }
    let failed = |e: crate::repo::revisions::RevisionError| e.into_lode(code, cwd);
    for rev in walker.commits(scope).map_err(failed)? {
        let found = walker.outputs_at(&rev).map_err(failed)?;
        add_outs(&mut used, &mut seen, found.outs, cwd, direction);
    }
    Ok(used)
}
