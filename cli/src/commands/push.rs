//! `lode push`: upload the cache objects of tracked outputs to a remote (spec §8).

use crate::cli::TransferArgs;
use crate::commands::Ui;
use crate::remote::progress::Progress;
use crate::remote::sync::{self, files, missing_warning};
use crate::LodeError;

const ACTION: &str = "failed to push data to the cloud";

pub fn run(args: TransferArgs, ui: Ui) -> Result<u8, LodeError> {
    let session = super::transfer_session(&args, ACTION)?;
    let (remote, cache) = (&session.transfer.remote, &session.transfer.cache);
    let progress = Progress::new("pushed", ui.quiet, ui.verbose > 0);
    let report =
        sync::push(remote, cache, &session.used, &progress).map_err(|e| e.into_lode(ACTION))?;
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
