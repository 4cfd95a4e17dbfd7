//! `lode checkout`: make tracked outputs match their `.dvc` files from the cache (spec §8).

use std::path::{Path, PathBuf};

use crate::cache::checkout::Plan;
use crate::cache::outputs::Outputs;
use crate::cli::CheckoutArgs;
use crate::commands::Ui;
use crate::hash::walk::relative_to;
use crate::repo::Repo;
use crate::{ExitCode, LodeError};

pub fn run(args: CheckoutArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let cwd = &ui.cwd;
    let repo = Repo::discover(cwd)?;
    let _lock = repo.lock()?;
    let outputs = Outputs::open(&repo, ui.out)?;
    let tracked = outputs.tracked(&args.targets, cwd, ExitCode::Error)?;

    let mut plans = Vec::new();
    let mut unsaved: Vec<PathBuf> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut no_hash: Vec<PathBuf> = Vec::new();
    for t in &tracked {
        for &i in &t.outs {
            let out = &t.owner.outs()[i];
            let path = t.owner.out_path(i);
            if !outputs.checks_out(out, &path) {
                continue;
            }
            let planned = outputs.plan_checkout(&path, out, args.relink)?;
            if matches!(planned.plan, Plan::Missing) {
                if out.oid.is_none() {
                    // DVC would delete what is there; it is kept, and reported.
                    unsaved.extend(outputs.unversioned_files(&path));
                    no_hash.push(path.clone());
                }
                failed.push(rel(&path, cwd));
                continue;
            }
            unsaved.extend(planned.unsaved);
            plans.push((path, out, planned.plan, planned.changed));
        }
    }
    if !unsaved.is_empty() && !args.force {
        outputs.flush();
        unsaved.sort();
        let list: Vec<String> = unsaved.iter().map(|p| p.display().to_string()).collect();
        return Err(LodeError::Other(format!(
            "Can't remove the following unsaved files without confirmation. Use `--force` to force.\n{}",
            list.join("\n")
        )));
    }
    for p in &no_hash {
        ui.out.warn(format_args!(
            "No file hash info found for '{}'. It won't be created.",
            p.display()
        ));
    }

    let mut result: Result<(), LodeError> = Ok(());
    for (path, out, plan, changed) in plans {
        let is_dir = matches!(plan, Plan::Dir { .. });
        match outputs.apply_checkout(&path, out, plan) {
            Ok(Some(change)) => {
                if changed {
                    let slash = if is_dir { "/" } else { "" };
                    let shown = format!("{}       {}{slash}", change.letter(), rel(&path, cwd));
                    if let Err(e) = ui.out.line(shown) {
                        result = Err(e);
                        break;
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
    }
    outputs.flush();
    result?;
    if args.relink && failed.is_empty() {
        ui.out.line("Relinked successfully")?;
    }
    if !failed.is_empty() {
        return Err(LodeError::Other(format!(
            "Checkout failed for following targets:\n{}\nIs your cache up to date?\n<https://error.dvc.org/missing-files>",
            failed.join("\n")
        )));
    }
    Ok(ExitCode::Ok)
}

fn rel(p: &Path, cwd: &Path) -> String {
    relative_to(p, cwd).to_string_lossy().into_owned()
}
