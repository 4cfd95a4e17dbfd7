//! `lode commit`: record workspace changes of tracked outputs in the cache and in their `.dvc`
//! files, or for pipeline stages in `dvc.lock` (with the stage's dependencies and parameters),
//! as `dvc commit` does.

use std::path::{Path, PathBuf};

use lode_proto::HashKind;

use crate::cache::outputs::{out_record, Found, Outputs};
use crate::cli::CommitArgs;
use crate::commands::Ui;
use crate::hash::walk::relative_to;
use crate::repo::dvcfile::{self, DvcFile};
use crate::repo::pipeline::dvclock::{self, LockItem, LockStage};
use crate::repo::pipeline::owner::Owner;
use crate::repo::pipeline::{params, resolve, Stage};
use crate::repo::{gitignore, Repo};
use crate::{ExitCode, LodeError};

fn failed(msg: String) -> LodeError {
    LodeError::Failed(format!("failed to commit - {msg}"))
}

fn changed_stage(name: &str) -> LodeError {
    failed(format!(
        "unable to commit changed stage: '{name}'. Use `-f|--force` to force."
    ))
}

pub fn run(args: CommitArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let cwd = &ui.cwd;
    let repo = Repo::discover(cwd)?;
    let _lock = repo.lock()?;
    let outputs = Outputs::open(&repo, ui.out)?;
    // Like DVC, each target is committed on its own, in order; its errors name it.
    let groups: Vec<Option<&PathBuf>> = if args.targets.is_empty() {
        vec![None]
    } else {
        args.targets.iter().map(Some).collect()
    };
    for target in groups {
        let targets: Vec<PathBuf> = target.into_iter().cloned().collect();
        commit_group(&repo, &outputs, &targets, ui, args.force).map_err(|e| match (target, e) {
            (Some(t), LodeError::Failed(m)) => LodeError::Failed(m.replacen(
                "failed to commit - ",
                &format!("failed to commit {} - ", t.display()),
                1,
            )),
            (_, e) => e,
        })?;
    }
    outputs.flush();
    Ok(ExitCode::Ok)
}

fn commit_group(
    repo: &Repo,
    outputs: &Outputs,
    targets: &[PathBuf],
    ui: &Ui,
    force: bool,
) -> Result<(), LodeError> {
    let cwd = &ui.cwd;
    let tracked = outputs.tracked(targets, cwd, ExitCode::Failed)?;
    // Check everything first so that a refusal leaves everything as it was.
    let mut files = Vec::new();
    let mut stages = Vec::new();
    for t in &tracked {
        match &t.owner {
            Owner::File(f) => files.push(check_file(outputs, f, &t.outs, cwd, force)?),
            Owner::Stage(s) => stages.push(check_stage(outputs, s, cwd, force)?),
        }
    }
    for (file, outs) in files {
        commit_file(outputs, file, outs, cwd)?;
    }
    commit_stages(repo, outputs, stages, ui)
}

/// A `.dvc` file's outputs: index, path, and whether the recorded hash still holds.
type FileWork<'a> = (&'a DvcFile, Vec<(usize, PathBuf, bool)>);

fn check_file<'a>(
    outputs: &Outputs,
    file: &'a DvcFile,
    which: &[usize],
    cwd: &Path,
    force: bool,
) -> Result<FileWork<'a>, LodeError> {
    let mut changed = false;
    let mut outs = Vec::new();
    for &i in which {
        let out = &file.outs[i];
        let path = file.out_path(i);
        let now = outputs.hash(&path, out.kind)?;
        if now == Found::Missing {
            return Err(failed(format!(
                "output '{}' does not exist",
                relative_to(&path, cwd).display()
            )));
        }
        let same = now.oid().is_some() && now.oid() == out.oid;
        changed |= !same;
        outs.push((i, path, same));
    }
    if changed && !force {
        outputs.flush();
        return Err(changed_stage(&rel(&file.path, cwd)));
    }
    Ok((file, outs))
}

fn commit_file(
    outputs: &Outputs,
    file: &DvcFile,
    outs: Vec<(usize, PathBuf, bool)>,
    cwd: &Path,
) -> Result<(), LodeError> {
    let mut text = file.text().to_string();
    let mut current = file.clone();
    for (i, path, same) in outs {
        let out = &file.outs[i];
        if same && out.kind == HashKind::Md5Dos2unix {
            // An unchanged legacy entry stays as DVC 2 wrote it; only its object is ensured.
            outputs.save(&path, HashKind::Md5Dos2unix)?;
            continue;
        }
        let found = outputs.save(&path, HashKind::Md5)?;
        if let Some(rec) = out_record(out.path.clone(), HashKind::Md5, &found) {
            text = current.updated_text(i, &rec);
            current = DvcFile::parse(&file.path, text.clone())
                .map_err(|e| e.into_lode(ExitCode::Error, cwd))?;
        }
    }
    if text != file.text() {
        dvcfile::write_atomic(&file.path, &text).map_err(|e| e.into_lode(ExitCode::Error, cwd))?;
    }
    Ok(())
}

/// A stage ready to be recorded: its lock entry, and the outputs to store in the cache.
struct StageWork<'a> {
    stage: &'a Stage,
    entry: LockStage,
    store: Vec<(PathBuf, HashKind)>,
}

/// The hash kind to record: an unchanged DVC 2 entry stays DVC 2, anything else is DVC 3.
fn current_hash(
    outputs: &Outputs,
    path: &Path,
    locked: Option<&LockItem>,
) -> Result<(Found, HashKind, bool), LodeError> {
    let kind = locked.map_or(HashKind::Md5, |l| l.kind);
    let found = outputs.hash(path, kind)?;
    let same = found.oid().is_some() && found.oid() == locked.and_then(|l| l.oid);
    if kind == HashKind::Md5Dos2unix && !same {
        return Ok((outputs.hash(path, HashKind::Md5)?, HashKind::Md5, false));
    }
    Ok((found, kind, same))
}

fn item(path: &str, kind: HashKind, found: &Found) -> LockItem {
    let (oid, size, nfiles, isexec) = match *found {
        Found::File { oid, size, isexec } => (Some(oid), Some(size), None, isexec),
        Found::Dir { oid, size, nfiles } => (Some(oid), Some(size), Some(nfiles), false),
        Found::Missing => (None, None, None, false),
    };
    LockItem {
        path: path.to_string(),
        kind,
        oid,
        size,
        nfiles,
        isexec,
    }
}

fn check_stage<'a>(
    outputs: &Outputs,
    stage: &'a Stage,
    cwd: &Path,
    force: bool,
) -> Result<StageWork<'a>, LodeError> {
    let show = |p: &Path| {
        if p.starts_with(&outputs.root) {
            rel(p, cwd)
        } else {
            p.display().to_string()
        }
    };
    let mut changed = stage.cmd_changed();
    let mut deps = Vec::new();
    for d in &stage.deps {
        let path = resolve(&stage.wdir, &d.path);
        let (found, kind, same) = current_hash(outputs, &path, d.locked.as_ref())?;
        if found == Found::Missing {
            return Err(failed(format!(
                "dependency '{}' does not exist",
                show(&path)
            )));
        }
        changed |= !same;
        deps.push(item(&d.path, kind, &found));
    }
    let mut values = Vec::new();
    for p in &stage.params {
        let path = resolve(&stage.wdir, &p.path);
        let bytes = std::fs::read(&path)
            .map_err(|_| failed(format!("dependency '{}' does not exist", show(&path))))?;
        let root = params::parse_file(&path, &bytes)
            .map_err(|_| failed(format!("Unable to read parameters from '{}'", show(&path))))?;
        let picked = params::pick(&root, &p.keys);
        let missing: Vec<&str> = p
            .keys
            .iter()
            .filter(|k| !picked.iter().any(|(n, _)| n == *k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(failed(format!(
                "Parameters '{}' are missing from '{}'.",
                missing.join(", "),
                show(&path)
            )));
        }
        changed |= match &p.locked {
            Some(locked) => !params::changes(&p.keys, &picked, locked).is_empty(),
            None => true,
        };
        values.push((p.path.clone(), picked));
    }
    let mut outs = Vec::new();
    let mut store = Vec::new();
    for (i, o) in stage.outs.iter().enumerate() {
        let path = stage.out_path(i);
        if !path.starts_with(&outputs.root) && o.cache {
            return Err(failed(format!(
                "Saving cached external output {} is not supported since DVC 3.0. See <https://dvc.org/doc/user-guide/upgrade> for more info.",
                path.display()
            )));
        }
        let locked = stage
            .locked
            .as_ref()
            .and_then(|l| l.outs.iter().find(|x| x.path == o.path));
        let (found, kind, same) = current_hash(outputs, &path, locked)?;
        if found == Found::Missing {
            return Err(failed(format!("output '{}' does not exist", show(&path))));
        }
        changed |= !same;
        if o.cache {
            store.push((path, kind));
        }
        outs.push(item(&o.path, kind, &found));
    }
    if changed && !force {
        outputs.flush();
        return Err(changed_stage(&stage.addressing(cwd)));
    }
    Ok(StageWork {
        stage,
        entry: LockStage {
            cmd: stage.cmd.clone(),
            deps,
            params: values,
            outs,
        },
        store,
    })
}

/// Stores the stages' outputs in the cache, then writes each `dvc.lock` once with all of its
/// stages' new entries.
fn commit_stages(
    repo: &Repo,
    outputs: &Outputs,
    work: Vec<StageWork<'_>>,
    ui: &Ui,
) -> Result<(), LodeError> {
    let cwd = &ui.cwd;
    let mut locks: Vec<(PathBuf, Vec<(String, LockStage)>)> = Vec::new();
    for w in work {
        for (path, kind) in &w.store {
            outputs.save(path, *kind)?;
            gitignore::add_entry(&repo.root, path)?;
        }
        let lock = w.stage.lock_path();
        let entry = (w.stage.name.clone(), w.entry);
        match locks.iter_mut().find(|(p, _)| *p == lock) {
            Some((_, list)) => list.push(entry),
            None => locks.push((lock, vec![entry])),
        }
    }
    for (lock, updates) in locks {
        let current = match std::fs::read_to_string(&lock) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(LodeError::Other(format!("{}: {e}", lock.display()))),
        };
        let text = dvclock::updated_text(&lock, current.as_deref(), &updates)
            .map_err(|e| e.into_lode(ExitCode::Failed, cwd))?;
        if current.as_deref() != Some(text.as_str()) {
            let shown = rel(&lock, cwd);
            if current.is_none() {
                ui.out
                    .line(format_args!("Generating lock file '{shown}'"))?;
            }
            ui.out.line(format_args!("Updating lock file '{shown}'"))?;
            dvcfile::write_atomic(&lock, &text).map_err(|e| e.into_lode(ExitCode::Error, cwd))?;
        }
    }
    Ok(())
}

fn rel(p: &Path, cwd: &Path) -> String {
    relative_to(p, cwd).to_string_lossy().into_owned()
}
