//! `lode add`: hash outputs, store them in the cache, write their `.dvc` files and `.gitignore`
//! entries, as `dvc add` does (docs/dvc-formats.md §1, §6).

use std::path::{Path, PathBuf};

use lode_proto::HashKind;

use crate::cache::outputs::{Found, Outputs};
use crate::cache::LinkType;
use crate::cli::AddArgs;
use crate::commands::Ui;
use crate::hash::walk::{normalize, relative_to};
use crate::repo::dvcfile::{self, DvcFile, OutRecord};
use crate::repo::pipeline::owner;
use crate::repo::{gitignore, Repo};
use crate::{ExitCode, LodeError};

pub fn run(args: AddArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    if let Some(j) = args.jobs {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(j.max(1))
            .build_global();
    }
    let cwd = &ui.cwd;
    let repo = Repo::discover(cwd)?;
    let _lock = repo.lock()?;
    let outputs = Outputs::open(&repo, ui.out)?;

    let mut targets = Vec::new();
    for t in &args.targets {
        let abs = check_target(&repo, &outputs, cwd, t)?;
        // A path inside a tracked directory re-adds that directory, as DVC 3 does.
        let abs = tracked_ancestor(&repo.root, &abs).unwrap_or(abs);
        if !targets.contains(&abs) {
            targets.push(abs);
        }
    }
    check_overlaps(&outputs, cwd, &targets)?;
    check_stage_outputs(&outputs, cwd, &targets)?;

    let mut to_stage: Vec<PathBuf> = Vec::new();
    for abs in &targets {
        let result = add_one(&repo, &outputs, abs, cwd);
        outputs.flush();
        let gi = result?;
        to_stage.push(PathBuf::from(format!("{}.dvc", abs.display())));
        if let Some(g) = gi {
            if !to_stage.contains(&g) {
                to_stage.push(g);
            }
        }
    }

    crate::commands::stage_or_hint(&repo, &to_stage, cwd, ui)?;
    Ok(ExitCode::Ok)
}

/// Validates one target as DVC does and returns its absolute, normalised path.
fn check_target(
    repo: &Repo,
    outputs: &Outputs,
    cwd: &Path,
    target: &Path,
) -> Result<PathBuf, LodeError> {
    let abs = normalize(&cwd.join(target));
    if !abs.starts_with(&repo.root) || abs == repo.root {
        return Err(LodeError::Failed(format!(
            "Cached output(s) outside of DVC project: {}. See <https://dvc.org/doc/user-guide/data-management/importing-external-data> for more info.",
            abs.display()
        )));
    }
    let meta = std::fs::metadata(&abs).map_err(|_| {
        LodeError::Failed(format!(
            "output '{}' does not exist: [Errno 2] No such file or directory: '{}'",
            target.display(),
            abs.display()
        ))
    })?;
    let matched = outputs.ignore.check_abs(&abs, meta.is_dir())?;
    if let Some(m) = matched {
        return Err(LodeError::Failed(format!(
            "Path '{}' is ignored by {m}",
            abs.display()
        )));
    }
    if abs.file_name().and_then(|n| n.to_str()).is_none() {
        return Err(LodeError::Other(format!(
            "'{}' is not a UTF-8 path, which a .dvc file cannot record",
            abs.display()
        )));
    }
    Ok(abs)
}

/// The nearest enclosing directory that is already an output of the `.dvc` file next to it.
fn tracked_ancestor(root: &Path, abs: &Path) -> Option<PathBuf> {
    let mut cur = abs.parent();
    while let Some(dir) = cur {
        if dir == root || !dir.starts_with(root) {
            return None;
        }
        let name = dir.file_name()?.to_str()?;
        let dvc = dir.with_file_name(format!("{name}.dvc"));
        if dvc.is_file() {
            if let Ok(f) = DvcFile::load(&dvc) {
                if f.outs.iter().any(|o| o.path == name) {
                    return Some(dir.to_path_buf());
                }
            }
        }
        cur = dir.parent();
    }
    None
}

/// DVC refuses to track a directory that holds an already tracked output.
fn check_overlaps(outputs: &Outputs, cwd: &Path, targets: &[PathBuf]) -> Result<(), LodeError> {
    let dirs: Vec<&PathBuf> = targets.iter().filter(|t| t.is_dir()).collect();
    if dirs.is_empty() {
        return Ok(());
    }
    let files = dvcfile::collect(&outputs.root, &|p: &Path, d: bool| outputs.ignored(p, d));
    for f in files {
        let Ok(d) = DvcFile::load(&f) else { continue };
        for i in 0..d.outs.len() {
            let out = d.out_path(i);
            for dir in &dirs {
                if out.starts_with(dir) && out != **dir {
                    let t = relative_to(dir, cwd).display().to_string();
                    let o = relative_to(&out, cwd).display().to_string();
                    let df = relative_to(&f, cwd).display().to_string();
                    return Err(LodeError::Failed(format!(
                        "Cannot add '{t}', because it is overlapping with other DVC tracked output: '{o}'.\nTo include '{o}' in '{t}', run 'dvc remove {df}' and then 'dvc add {t}'"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// DVC refuses to add what a pipeline stage produces (its output, or a path inside it): the
/// stage records it in `dvc.lock`.
fn check_stage_outputs(
    outputs: &Outputs,
    cwd: &Path,
    targets: &[PathBuf],
) -> Result<(), LodeError> {
    let ignored = |p: &Path, d: bool| outputs.ignored(p, d);
    let owners = owner::collect(&outputs.root, &ignored, cwd)
        .map_err(|e| e.into_lode(ExitCode::Error, cwd))?;
    for o in &owners {
        let Some(stage) = o.stage() else { continue };
        for i in 0..stage.outs.len() {
            let out = stage.out_path(i);
            if let Some(t) = targets.iter().find(|t| t.starts_with(&out)) {
                let name = t.file_name().unwrap_or_default().to_string_lossy();
                return Err(LodeError::Failed(format!(
                    "cannot update '{name}': overlaps with an output of stage: '{}' in '{}'.\nRun the pipeline or use 'dvc commit' to force update it.",
                    stage.addressing(cwd),
                    relative_to(&stage.dvcyaml, cwd).display()
                )));
            }
        }
    }
    Ok(())
}

/// Adds one output; returns the `.gitignore` it wrote to, if any.
fn add_one(
    repo: &Repo,
    outputs: &Outputs,
    abs: &Path,
    cwd: &Path,
) -> Result<Option<PathBuf>, LodeError> {
    std::thread::scope(|s| {
        // Whether Git already ignores the output takes running `git`; ask while it is stored.
        let ignore = s.spawn(|| gitignore::plan_entry(&repo.root, abs));
        let stored = store_one(outputs, abs, cwd);
        let plan = ignore
            .join()
            .map_err(|_| LodeError::Other("checking .gitignore panicked".into()))?;
        stored?;
        match plan? {
            Some(plan) => Ok(Some(plan.apply()?)),
            None => Ok(None),
        }
    })
}

/// Stores one output in the cache and writes its `.dvc` file.
fn store_one(outputs: &Outputs, abs: &Path, cwd: &Path) -> Result<(), LodeError> {
    let file_err = |e: dvcfile::DvcFileError| e.into_lode(ExitCode::Error, cwd);
    let name = abs
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let dvc_path = abs.with_file_name(format!("{name}.dvc"));
    let existing = if dvc_path.exists() {
        Some(DvcFile::load(&dvc_path).map_err(file_err)?)
    } else {
        None
    };
    let prior = existing
        .as_ref()
        .and_then(|f| f.outs.iter().position(|o| o.path == name).map(|i| (f, i)));

    // DVC 3 leaves an unchanged legacy entry as it is; only its object must be in the cache.
    if let Some((f, i)) = prior {
        let out = &f.outs[i];
        if out.kind == HashKind::Md5Dos2unix && out.oid.is_some() {
            let now = outputs.hash(abs, HashKind::Md5Dos2unix)?;
            if now.oid() == out.oid {
                outputs.save(abs, HashKind::Md5Dos2unix)?;
                return link_workspace(outputs, abs, HashKind::Md5Dos2unix, &now);
            }
        }
    }

    let found = outputs.save(abs, HashKind::Md5)?;
    let rec = match found {
        Found::File { oid, size, isexec } => OutRecord {
            path: name,
            oid,
            kind: HashKind::Md5,
            size,
            nfiles: None,
            isexec,
        },
        Found::Dir { oid, size, nfiles } => OutRecord {
            path: name,
            oid,
            kind: HashKind::Md5,
            size,
            nfiles: Some(nfiles),
            isexec: false,
        },
        Found::Missing => {
            return Err(LodeError::Failed(format!(
                "output '{}' does not exist",
                abs.display()
            )))
        }
    };
    let text = match prior {
        Some((f, i)) => f.updated_text(i, &rec),
        None => dvcfile::render_new(&rec),
    };
    if existing.as_ref().map(DvcFile::text) != Some(text.as_str()) {
        dvcfile::write_atomic(&dvc_path, &text).map_err(file_err)?;
    }
    link_workspace(outputs, abs, HashKind::Md5, &found)
}

/// With `hardlink` or `symlink` first in `cache.type`, DVC replaces the added files with links
/// to the cache; with `reflink`/`copy` the workspace copy is already what a checkout would make.
fn link_workspace(
    outputs: &Outputs,
    abs: &Path,
    kind: HashKind,
    found: &Found,
) -> Result<(), LodeError> {
    let first = outputs.cache.link_types().first().copied();
    if !matches!(first, Some(LinkType::Hardlink | LinkType::Symlink)) {
        if let Found::File { isexec: true, .. } = found {
            // DVC's checkout after add leaves an executable as a fresh copy would be: mode | 0100.
            use std::os::unix::fs::PermissionsExt;
            let mode = (0o666 & !crate::cache::umask()) | 0o100;
            std::fs::set_permissions(abs, std::fs::Permissions::from_mode(mode))
                .map_err(|e| LodeError::Other(format!("{}: {e}", abs.display())))?;
        }
        return Ok(());
    }
    match found {
        Found::File { oid, isexec, .. } => {
            outputs.cache.link_to(oid, kind, abs, *isexec)?;
        }
        Found::Dir { oid, .. } => {
            use rayon::prelude::*;
            let m = outputs.cache.read_manifest(oid, kind)?;
            m.entries().par_iter().try_for_each(|e| {
                let dest = crate::cache::outputs::join_rel(abs, &e.relpath);
                outputs.cache.link_to(&e.oid, kind, &dest, false)
            })?;
        }
        Found::Missing => {}
    }
    Ok(())
}
