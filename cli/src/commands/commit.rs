//! `lode commit`: record workspace changes of tracked outputs in the cache and their `.dvc` files.

use std::path::Path;

use lode_proto::HashKind;

use crate::cache::outputs::{out_record, Found, Outputs};
use crate::cli::CommitArgs;
use crate::commands::Ui;
use crate::hash::walk::relative_to;
use crate::repo::dvcfile;
use crate::repo::Repo;
use crate::{ExitCode, LodeError};

pub fn run(args: CommitArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let cwd = &ui.cwd;
    let repo = Repo::discover(cwd)?;
    let _lock = repo.lock()?;
    let outputs = Outputs::open(&repo, ui.out)?;
    let tracked = outputs.tracked(&args.targets, cwd, ExitCode::Failed)?;

    // Check every output first so that a refusal leaves everything as it was.
    let mut work = Vec::new();
    for t in &tracked {
        let mut changed = false;
        let mut outs = Vec::new();
        for &i in &t.outs {
            let out = &t.file.outs[i];
            let path = t.file.out_path(i);
            let now = outputs.hash(&path, out.kind)?;
            if now == Found::Missing {
                return Err(LodeError::Failed(format!(
                    "failed to commit - output '{}' does not exist",
                    relative_to(&path, cwd).display()
                )));
            }
            let same = now.oid().is_some() && now.oid() == out.oid;
            changed |= !same;
            outs.push((i, path, same));
        }
        if changed && !args.force {
            outputs.flush();
            return Err(LodeError::Failed(format!(
                "failed to commit - unable to commit changed stage: '{}'. Use `-f|--force` to force.",
                rel(&t.file.path, cwd)
            )));
        }
        work.push((t, outs));
    }

    for (t, outs) in work {
        let mut text = t.file.text().to_string();
        let mut file = t.file.clone();
        for (i, path, same) in outs {
            let out = &t.file.outs[i];
            if same && out.kind == HashKind::Md5Dos2unix {
                // An unchanged legacy entry stays as DVC 2 wrote it; only its object is ensured.
                outputs.save(&path, HashKind::Md5Dos2unix)?;
                continue;
            }
            let found = outputs.save(&path, HashKind::Md5)?;
            if let Some(rec) = out_record(out.path.clone(), HashKind::Md5, &found) {
                text = file.updated_text(i, &rec);
                file = dvcfile::DvcFile::parse(&t.file.path, text.clone())
                    .map_err(|e| e.into_lode(ExitCode::Error, cwd))?;
            }
        }
        if text != t.file.text() {
            dvcfile::write_atomic(&t.file.path, &text)
                .map_err(|e| e.into_lode(ExitCode::Error, cwd))?;
        }
    }
    outputs.flush();
    Ok(ExitCode::Ok)
}

fn rel(p: &Path, cwd: &Path) -> String {
    relative_to(p, cwd).to_string_lossy().into_owned()
}
