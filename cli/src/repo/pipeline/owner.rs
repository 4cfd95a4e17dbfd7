//! What declares an output: a `.dvc` file or a pipeline stage, and finding all of them in the
//! workspace in one walk.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{load, PipelineError, Stage, Workspace, PROJECT_FILE};
use crate::hash::walk::{relative_to, IgnoreFn};
use crate::repo::dvcfile::{DvcFile, Out};

/// A `.dvc` file or a stage, seen through the outputs both declare.
#[derive(Debug, Clone)]
pub enum Owner {
    File(DvcFile),
    Stage(Box<Stage>),
}

impl Owner {
    pub fn outs(&self) -> &[Out] {
        match self {
            Owner::File(f) => &f.outs,
            Owner::Stage(s) => &s.outs,
        }
    }

    /// The workspace path of output `i`.
    pub fn out_path(&self, i: usize) -> PathBuf {
        match self {
            Owner::File(f) => f.out_path(i),
            Owner::Stage(s) => s.out_path(i),
        }
    }

    /// How DVC names it in messages: the `.dvc` file's path, or the stage's address.
    pub fn addressing(&self, cwd: &Path) -> String {
        match self {
            Owner::File(f) => relative_to(&f.path, cwd).to_string_lossy().into_owned(),
            Owner::Stage(s) => s.addressing(cwd),
        }
    }

    /// Identifies the declaration among all others.
    pub fn same(&self, other: &Owner) -> bool {
        match (self, other) {
            (Owner::File(a), Owner::File(b)) => a.path == b.path,
            (Owner::Stage(a), Owner::Stage(b)) => a.dvcyaml == b.dvcyaml && a.name == b.name,
            _ => false,
        }
    }

    pub fn stage(&self) -> Option<&Stage> {
        match self {
            Owner::Stage(s) => Some(s),
            Owner::File(_) => None,
        }
    }
}

fn is_dvc_file(name: &OsStr) -> bool {
    name.as_encoded_bytes().ends_with(b".dvc") && name.len() > 4
}

/// Loads one declaration file: every stage of a `dvc.yaml`, or a `.dvc` file. Messages name
/// files relative to `cwd`.
pub fn load_file(path: &Path, cwd: &Path) -> Result<Vec<Owner>, PipelineError> {
    if path.file_name() == Some(OsStr::new(PROJECT_FILE)) {
        Ok(load(path, &Workspace, cwd)?
            .into_iter()
            .map(|s| Owner::Stage(Box::new(s)))
            .collect())
    } else {
        Ok(vec![Owner::File(DvcFile::load(path)?)])
    }
}

/// Every declaration of the workspace under `root`, in the order DVC walks the repository (a
/// folder's files by name, then its subfolders), skipping what `ignored` rejects (absolute path,
/// is-dir). Folders that are outputs declared above them are not descended into: data
/// directories can be huge and never hold declarations DVC would use. The first file that
/// cannot be loaded, in that order, is the error.
pub fn collect(
    root: &Path,
    ignored: &IgnoreFn<'_>,
    cwd: &Path,
) -> Result<Vec<Owner>, PipelineError> {
    let mut out = Vec::new();
    for r in collect_in(root, ignored, cwd, &[]) {
        out.extend(r?);
    }
    Ok(out)
}

type Loaded = Result<Vec<Owner>, PipelineError>;

fn collect_in(
    dir: &Path,
    ignored: &IgnoreFn<'_>,
    cwd: &Path,
    above: &[&HashSet<PathBuf>],
) -> Vec<Loaded> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    let mut subdirs = Vec::new();
    for ent in rd.flatten() {
        let path = ent.path();
        let Ok(ft) = ent.file_type() else { continue };
        // Links to folders are not followed: they may point anywhere, even back up.
        let is_dir = !ft.is_symlink() && ft.is_dir();
        let name = ent.file_name();
        if is_dir {
            if name != ".git" && name != ".dvc" && !ignored(&path, true) {
                subdirs.push(path);
            }
        } else if (is_dvc_file(&name) || name == PROJECT_FILE)
            && path.is_file()
            && !ignored(&path, false)
        {
            files.push(path);
        }
    }
    files.sort();
    subdirs.sort();
    let loaded: Vec<Loaded> = files.par_iter().map(|f| load_file(f, cwd)).collect();
    let mut here = HashSet::new();
    for owners in loaded.iter().flatten() {
        for o in owners {
            here.extend((0..o.outs().len()).map(|i| o.out_path(i)));
        }
    }
    let mut outputs: Vec<&HashSet<PathBuf>> = above.to_vec();
    outputs.push(&here);
    subdirs.retain(|d| !outputs.iter().any(|set| set.contains(d)));
    let nested: Vec<Vec<Loaded>> = subdirs
        .par_iter()
        .map(|d| collect_in(d, ignored, cwd, &outputs))
        .collect();
    let mut all = loaded;
    all.extend(nested.into_iter().flatten());
    all
}
