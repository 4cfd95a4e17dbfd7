//! `lode push`: upload the cache objects of tracked outputs to a remote (spec §8).

use std::sync::Arc;

use crate::cache::outputs::Outputs;
use crate::cache::Cache;
use crate::cli::TransferArgs;
use crate::commands::Ui;
use crate::remote::progress::Progress;
use crate::remote::sync::{self, files, missing_warning};
use crate::remote::used::{self, Scope};
use crate::remote::{self as remote_mod, Remote};
use crate::repo::{current_dir, Repo};
use crate::LodeError;

const ACTION: &str = "failed to push data to the cloud";

pub fn run(args: TransferArgs, ui: Ui) -> Result<u8, LodeError> {
    let repo = Repo::from_cwd()?;
    let _lock = repo.lock()?;
    let cwd = current_dir()?;
    let outputs = Outputs::open(&repo)?;
    let scope = Scope {
        all_branches: args.all_branches,
        all_tags: args.all_tags,
        all_commits: args.all_commits,
    };
    let used = used::collect(&repo, &outputs, &args.targets, &cwd, scope, 1)?;
    let conf =
        remote_mod::resolve(&repo, args.remote.as_deref()).map_err(|e| e.into_lode(ACTION))?;
    let remote = Remote::open(&conf, args.jobs).map_err(|e| e.into_lode(ACTION))?;
    let cache = Arc::new(Cache::for_repo(&repo)?);
    let progress = Progress::new("pushed", ui.quiet, ui.verbose > 0);
    let report = sync::push(&remote, &cache, &used, &progress).map_err(|e| e.into_lode(ACTION))?;
    if let Some(w) = missing_warning(&report.missing) {
        eprintln!("WARNING: {w}");
    }
    if !report.failed.is_empty() {
        sync::print_failures(&report.failed, &remote.name, "to");
        return Err(LodeError::Failed(format!(
            "{ACTION} - {} failed to upload",
            files(report.failed.len())
        )));
    }
    if !ui.quiet {
        if report.pushed == 0 {
            println!("Everything is up to date.");
        } else {
            println!("{} pushed", files(report.pushed));
        }
    }
    Ok(0)
}
