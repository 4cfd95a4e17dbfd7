//! Which declarations and outputs a command's targets name, the way DVC reads a target: a
//! `.dvc` file, a `dvc.yaml` (optionally with `:stage`), a stage or `foreach` group name of the
//! current folder's `dvc.yaml`, or an output path (or a path inside or above outputs).

use std::path::{Path, PathBuf};

use super::owner::{load_file, Owner};
use super::{PipelineError, PROJECT_FILE};
use crate::hash::walk::{normalize, relative_to};
use crate::{ExitCode, LodeError};

/// A declaration and which of its outputs a command is about.
#[derive(Debug)]
pub struct Selected {
    pub owner: Owner,
    pub outs: Vec<usize>,
}

impl PipelineError {
    /// The command error, with the exit code the calling command uses for bad input; files
    /// named relative to `cwd`.
    pub fn into_lode(self, code: ExitCode, cwd: &Path) -> LodeError {
        match self {
            PipelineError::File(e) => e.into_lode(code, cwd),
            PipelineError::Resolve(msg) => LodeError::Bare {
                msg: format!("ERROR: {msg}"),
                code,
            },
        }
    }
}

fn bare(msg: String, code: ExitCode) -> LodeError {
    LodeError::Bare {
        msg: format!("ERROR: {msg}"),
        code,
    }
}

fn add(list: &mut Vec<Selected>, owner: Owner, outs: Vec<usize>) {
    if let Some(s) = list.iter_mut().find(|s| s.owner.same(&owner)) {
        for i in outs {
            if !s.outs.contains(&i) {
                s.outs.push(i);
            }
        }
    } else {
        list.push(Selected { owner, outs });
    }
}

fn whole(owner: Owner) -> Selected {
    Selected {
        outs: (0..owner.outs().len()).collect(),
        owner,
    }
}

/// Whether DVC takes `name` for a file that declares stages.
fn is_dvc_filename(p: &Path) -> bool {
    p.file_name().is_some_and(|n| {
        n == PROJECT_FILE || (n.as_encoded_bytes().ends_with(b".dvc") && n.len() > 4)
    })
}

/// Stages of `owners` (all from one `dvc.yaml`) that `name` names: the stage itself, or every
/// stage a `foreach`/`matrix` group of that name generated.
fn stages_named(owners: Vec<Owner>, name: &str) -> Vec<Owner> {
    let exact: Vec<Owner> = owners
        .iter()
        .filter(|o| o.stage().is_some_and(|s| s.name == name))
        .cloned()
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    let prefix = format!("{name}@");
    owners
        .into_iter()
        .filter(|o| o.stage().is_some_and(|s| s.name.starts_with(&prefix)))
        .collect()
}

/// Reports an output path declared twice, as DVC does when it builds its graph.
pub fn check_duplicates(owners: &[Owner], cwd: &Path, code: ExitCode) -> Result<(), LodeError> {
    let mut seen: std::collections::HashMap<PathBuf, usize> = std::collections::HashMap::new();
    for (n, o) in owners.iter().enumerate() {
        for i in 0..o.outs().len() {
            let p = o.out_path(i);
            match seen.get(&p) {
                Some(&first) if first != n => {
                    let names: Vec<String> = owners
                        .iter()
                        .filter(|x| (0..x.outs().len()).any(|j| x.out_path(j) == p))
                        .map(|x| format!("\t- {}", x.addressing(cwd)))
                        .collect();
                    return Err(bare(
                        format!(
                            "output '{}' is specified in:\n{}\nUse `dvc remove` with any of the above targets to stop tracking the overlapping output.",
                            relative_to(&p, cwd).display(),
                            names.join("\n")
                        ),
                        code,
                    ));
                }
                _ => {
                    seen.insert(p, n);
                }
            }
        }
    }
    Ok(())
}

/// The declarations and outputs `targets` name (all when empty). `all` lists every declaration
/// of the workspace; it is called at most once, and only when needed. `code` is the exit code
/// for a bad declaration or an unknown target.
pub fn select(
    targets: &[PathBuf],
    cwd: &Path,
    code: ExitCode,
    all: &dyn Fn() -> Result<Vec<Owner>, PipelineError>,
) -> Result<Vec<Selected>, LodeError> {
    let load_all = || -> Result<Vec<Owner>, LodeError> {
        let owners = all().map_err(|e| e.into_lode(code, cwd))?;
        check_duplicates(&owners, cwd, code)?;
        Ok(owners)
    };
    // Every declaration is read even for named targets: an output declared twice is an error
    // whatever the command is about, as in DVC.
    let everything = load_all()?;
    if targets.is_empty() {
        return Ok(everything.into_iter().map(whole).collect());
    }
    let load = |p: &Path| load_file(p, cwd).map_err(|e| e.into_lode(code, cwd));
    let mut out: Vec<Selected> = Vec::new();
    for t in targets {
        let text = t.to_string_lossy();
        // `path/dvc.yaml:stage` (a `.dvc` file takes no stage name).
        if let Some((file, name)) = text.rsplit_once(':') {
            let fp = cwd.join(file);
            if !name.contains('/') && fp.file_name() == Some(std::ffi::OsStr::new(PROJECT_FILE)) {
                if !fp.is_file() {
                    return Err(bare(format!("'{file}' does not exist"), code));
                }
                let found = stages_named(load(&fp)?, name);
                if found.is_empty() {
                    return Err(bare(
                        format!("Stage '{name}' not found inside '{file}' file"),
                        code,
                    ));
                }
                for o in found {
                    let s = whole(o);
                    add(&mut out, s.owner, s.outs);
                }
                continue;
            }
        }
        let abs = normalize(&cwd.join(t));
        if is_dvc_filename(&abs) && abs.is_file() {
            for o in load(&abs)? {
                let s = whole(o);
                add(&mut out, s.owner, s.outs);
            }
            continue;
        }
        let sibling = PathBuf::from(format!("{}.dvc", abs.display()));
        if sibling.is_file() {
            for o in load(&sibling)? {
                let s = whole(o);
                add(&mut out, s.owner, s.outs);
            }
            continue;
        }
        let here = cwd.join(PROJECT_FILE);
        let in_here = if here.is_file() && !text.contains('/') {
            stages_named(load(&here)?, &text)
        } else {
            Vec::new()
        };
        if !in_here.is_empty() {
            for o in in_here {
                let s = whole(o);
                add(&mut out, s.owner, s.outs);
            }
            continue;
        }
        let mut hit = false;
        for o in &everything {
            let outs: Vec<usize> = (0..o.outs().len())
                .filter(|&i| {
                    let p = o.out_path(i);
                    abs.starts_with(&p) || p.starts_with(&abs)
                })
                .collect();
            if !outs.is_empty() {
                add(&mut out, o.clone(), outs);
                hit = true;
            }
        }
        if !hit {
            let cause = if here.is_file() {
                format!("Stage '{text}' not found inside '{PROJECT_FILE}' file")
            } else {
                format!("'{PROJECT_FILE}' does not exist")
            };
            return Err(bare(
                format!("'{text}' does not exist as an output or a stage name in '{PROJECT_FILE}': {cause}"),
                code,
            ));
        }
    }
    Ok(out)
}
