//! `lode checkout`: make tracked outputs match their `.dvc` files from the cache
//! (docs/dvc-formats.md §8).

use crate::cache::checkout::Relink;
use crate::cache::outputs::Outputs;
use crate::cli::CheckoutArgs;
use crate::commands::Ui;
use crate::repo::Repo;
use crate::{ExitCode, LodeError};

pub fn run(args: CheckoutArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let cwd = &ui.cwd;
    let repo = Repo::discover(cwd)?;
    let _lock = repo.lock()?;
    let outputs = Outputs::open(&repo, ui.out)?;
    let tracked = outputs.tracked(&args.targets, cwd, ExitCode::Error)?;
    let relink = if args.relink { Relink::Yes } else { Relink::No };
    let batch = outputs.plan_batch(&tracked, relink)?;
    if let Some(refusal) = batch.unsaved_refusal().filter(|_| !args.force) {
        outputs.flush();
        return Err(LodeError::Other(refusal));
    }
    batch.warn_unhashed(ui.out);
    let missing = batch.missing_report(cwd);
    outputs.apply_batch(batch, |done| {
        if !done.changed {
            return Ok::<(), LodeError>(());
        }
        ui.out.line(done.shown(cwd))
    })?;
    if args.relink && missing.is_none() {
        ui.out.line("Relinked successfully")?;
    }
    if let Some(report) = missing {
        return Err(LodeError::Other(report));
    }
    Ok(ExitCode::Ok)
}
