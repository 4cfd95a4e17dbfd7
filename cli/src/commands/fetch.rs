//! `lode fetch`: download the cache objects of tracked outputs from a remote (spec §8).

use crate::cli::TransferArgs;
use crate::commands::Ui;
use crate::remote::progress::Progress;
use crate::remote::sync::{self, files, missing_warning};
use crate::{ExitCode, LodeError};

const ACTION: &str = "failed to fetch data from the cloud";

pub fn run(args: TransferArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let session = super::transfer_session(&args, ui, ACTION, false)?;
    let (remote, cache) = (&session.transfer.remote, &session.transfer.cache);
    let progress = Progress::new("fetched", ui.out);
    let report =
        sync::fetch(remote, cache, &session.used, &progress).map_err(|e| e.into_lode(ACTION))?;
    if let Some(w) = missing_warning(&report.missing) {
        ui.out.warn(w);
    }
    if !report.failed.is_empty() {
        sync::print_failures(ui.out, &report.failed, &remote.name, "from");
        return Err(LodeError::Failed(format!(
            "{ACTION} - {} failed to download",
            files(report.failed.len())
        )));
    }
    if report.fetched == 0 {
        ui.out.line("Everything is up to date.")?;
    } else {
        ui.out
            .line(format_args!("{} fetched", files(report.fetched)))?;
    }
    Ok(ExitCode::Ok)
}
