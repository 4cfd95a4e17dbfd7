//! `lode fetch`: download the cache objects of tracked outputs from a remote (docs/dvc-formats.md
//! §8).

use crate::cli::TransferArgs;
use crate::commands::Ui;
use crate::remote::sync::{self, files, missing_warning, summary};
use crate::remote::used::Direction;
use crate::{ExitCode, LodeError};

const ACTION: &str = "failed to fetch data from the cloud";

pub fn run(args: TransferArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let session = super::transfer_session(&args, ui, ACTION, Direction::Fetch)?;
    let (report, transfer) = session.fetch(args.jobs, ui.out, ACTION)?;
    if let Some(w) = missing_warning(&report.missing) {
        ui.out.warn(w);
    }
    if !report.failed.is_empty() {
        let remote = transfer.map(|t| t.remote.name.as_str()).unwrap_or_default();
        sync::print_failures(ui.out, &report.failed, remote, "from");
        return Err(LodeError::Failed(format!(
            "{ACTION} - {} failed to download",
            files(report.failed.len())
        )));
    }
    ui.out.line(summary(&[(report.fetched, "fetched")]))?;
    Ok(ExitCode::Ok)
}
