//! `lode push`: upload the cache objects of tracked outputs to a remote (docs/dvc-formats.md §8).

use crate::cli::TransferArgs;
use crate::commands::Ui;
use crate::remote::progress::Progress;
use crate::remote::sync::{self, files, missing_warning, summary};
use crate::remote::used::Direction;
use crate::{ExitCode, LodeError};

const ACTION: &str = "failed to push data to the cloud";

pub fn run(args: TransferArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let session = super::transfer_session(&args, ui, ACTION, Direction::Push)?;
    let transfer = session.transfer(ACTION)?;
    let (remote, cache) = (&transfer.remote, &transfer.cache);
    let progress = Progress::new("pushed", ui.out);
    let report =
        sync::push(remote, cache, &session.used, &progress).map_err(|e| e.into_lode(ACTION))?;
    if let Some(w) = missing_warning(&report.missing) {
        ui.out.warn(w);
    }
    if !report.failed.is_empty() {
        sync::print_failures(ui.out, &report.failed, &remote.name, "to");
        return Err(LodeError::Failed(format!(
            "{ACTION} - {} failed to upload",
            files(report.failed.len())
        )));
    }
    ui.out.line(summary(&[(report.pushed, "pushed")]))?;
    Ok(ExitCode::Ok)
}
