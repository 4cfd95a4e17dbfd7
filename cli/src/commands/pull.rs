//! `lode pull`: fetch, then check the fetched outputs out into the workspace (spec §8).

use std::path::{Path, PathBuf};

use crate::cache::checkout::{Change, Plan};
use crate::cli::PullArgs;
use crate::commands::Ui;
use crate::hash::walk::relative_to;
use crate::remote::progress::Progress;
use crate::remote::sync::{self, files, missing_warning};
use crate::{ExitCode, LodeError};

const ACTION: &str = "failed to pull data from the cloud";

/// "6 files fetched and 5 files added", as DVC joins its counts.
fn summary(parts: &[(usize, &str)]) -> String {
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{} {what}", files(*n)))
        .collect();
    match words.as_slice() {
        [] => "Everything is up to date.".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

pub fn run(args: PullArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let t = args.transfer;
    let session = super::transfer_session(&t, ui, ACTION, false)?;
    let (remote, cache, outputs, cwd) = (
        &session.transfer.remote,
        &session.transfer.cache,
        &session.outputs,
        &session.cwd,
    );
    let progress = Progress::new("fetched", ui.out);
    let report =
        sync::fetch(remote, cache, &session.used, &progress).map_err(|e| e.into_lode(ACTION))?;
    drop(progress);
    if let Some(w) = missing_warning(&report.missing) {
        ui.out.warn(w);
    }
    sync::print_failures(ui.out, &report.failed, &remote.name, "from");

    let tracked = outputs.tracked(&t.targets, cwd, ExitCode::Failed)?;
    let mut plans = Vec::new();
    let mut unsaved: Vec<PathBuf> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut no_hash: Vec<PathBuf> = Vec::new();
    for tr in &tracked {
        for &i in &tr.outs {
            let out = &tr.owner.outs()[i];
            let path = tr.owner.out_path(i);
            if !outputs.checks_out(out, &path) {
                continue;
            }
            let planned = outputs.plan_checkout(&path, out, false)?;
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
            plans.push((path, out, planned.plan));
        }
    }
    if !unsaved.is_empty() && !args.force {
        outputs.flush();
        unsaved.sort();
        let list: Vec<String> = unsaved.iter().map(|p| p.display().to_string()).collect();
        return Err(LodeError::Failed(format!(
            "{ACTION} - Can't remove the following unsaved files without confirmation. Use `--force` to force.\n{}",
            list.join("\n")
        )));
    }
    for p in &no_hash {
        ui.out.warn(format_args!(
            "No file hash info found for '{}'. It won't be created.",
            p.display()
        ));
    }
    let (mut added, mut modified, mut deleted) = (0usize, 0usize, 0usize);
    let mut result: Result<(), LodeError> = Ok(());
    for (path, out, plan) in plans {
        let (is_dir, files_linked, files_deleted) = match &plan {
            Plan::Dir {
                manifest,
                existed,
                link,
                delete,
                ..
            } => (
                true,
                if *existed {
                    link.len()
                } else {
                    manifest.entries().len()
                },
                delete.len(),
            ),
            _ => (false, 1, 0),
        };
        match outputs.apply_checkout(&path, out, plan) {
            Ok(Some(change)) => {
                match change {
                    Change::Added => added += files_linked,
                    Change::Modified => modified += files_linked,
                }
                deleted += files_deleted;
                let slash = if is_dir { "/" } else { "" };
                let shown = format!("{}       {}{slash}", change.letter(), rel(&path, cwd));
                if let Err(e) = ui.out.line(shown) {
                    result = Err(e);
                    break;
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
    if !failed.is_empty() {
        return Err(LodeError::Failed(format!(
            "{ACTION} - Checkout failed for following targets:\n{}\nIs your cache up to date?\n<https://error.dvc.org/missing-files>",
            failed.join("\n")
        )));
    }
    if !report.failed.is_empty() {
        return Err(LodeError::Failed(format!(
            "{ACTION} - {} failed to download",
            files(report.failed.len())
        )));
    }
    ui.out.line(summary(&[
        (report.fetched, "fetched"),
        (added, "added"),
        (deleted, "deleted"),
        (modified, "modified"),
    ]))?;
    Ok(ExitCode::Ok)
}

fn rel(p: &Path, cwd: &Path) -> String {
    relative_to(p, cwd).to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn summaries() {
        assert_eq!(summary(&[(0, "fetched")]), "Everything is up to date.");
        assert_eq!(
            summary(&[(6, "fetched"), (5, "added")]),
            "6 files fetched and 5 files added"
        );
        assert_eq!(
            summary(&[(1, "fetched"), (2, "added"), (3, "modified")]),
            "1 file fetched, 2 files added and 3 files modified"
        );
    }
}
