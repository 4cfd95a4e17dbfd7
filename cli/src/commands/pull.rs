//! `lode pull`: fetch, then check the fetched outputs out into the workspace (docs/dvc-formats.md
//! §8).

use crate::cache::checkout::{Change, Relink};
use crate::cli::PullArgs;
use crate::commands::Ui;
use crate::remote::session::Session;
use crate::remote::sync::{self, files, missing_warning, summary};
use crate::remote::used::Direction;
use crate::{ExitCode, LodeError};

const ACTION: &str = "failed to pull data from the cloud";

pub fn run(args: PullArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let session = super::transfer_session(&args.transfer, ui, ACTION, Direction::Fetch)?;
    let (report, transfer) = session.fetch(args.transfer.jobs, ui.out, ACTION)?;
    if let Some(w) = missing_warning(&report.missing) {
        ui.out.warn(w);
    }
    let remote = transfer.map(|t| t.remote.name.as_str()).unwrap_or_default();
    sync::print_failures(ui.out, &report.failed, remote, "from");
    let counts = check_out(&session, &args, ui)?;
    if !report.failed.is_empty() {
        return Err(LodeError::Failed(format!(
            "{ACTION} - {} failed to download",
            files(report.failed.len())
        )));
    }
    ui.out.line(summary(&[
        (report.fetched, "fetched"),
        (counts.added, "added"),
        (counts.deleted, "deleted"),
        (counts.modified, "modified"),
    ]))?;
    Ok(ExitCode::Ok)
}

/// Files a pull's checkout added, modified and deleted.
#[derive(Default)]
struct Counts {
    added: usize,
    modified: usize,
    deleted: usize,
}

/// Checks out what was fetched, printing each output it changes.
fn check_out(session: &Session, args: &PullArgs, ui: &Ui) -> Result<Counts, LodeError> {
    let (outputs, cwd) = (&session.outputs, &session.cwd);
    let tracked = outputs.tracked(&args.transfer.targets, cwd, ExitCode::Failed)?;
    let batch = outputs.plan_batch(&tracked, Relink::No)?;
    if let Some(refusal) = batch.unsaved_refusal().filter(|_| !args.force) {
        outputs.flush();
        return Err(LodeError::Failed(format!("{ACTION} - {refusal}")));
    }
    batch.warn_unhashed(ui.out);
    let missing = batch.missing_report(cwd);
    let mut counts = Counts::default();
    outputs.apply_batch(batch, |done| {
        match done.change {
            Change::Added => counts.added += done.linked,
            Change::Modified => counts.modified += done.linked,
        }
        counts.deleted += done.deleted;
        ui.out.line(done.shown(cwd))
    })?;
    if let Some(report) = missing {
        return Err(LodeError::Failed(format!("{ACTION} - {report}")));
    }
    Ok(counts)
}
