//! `lode import URL PATH`: a file or folder of another repository copied into this one, with
//! the `.dvc` file `dvc import` writes, so that `update` (lode's or DVC's) can move it later.

use crate::cache::Cache;
use crate::cli::ImportArgs;
use crate::commands::Ui;
use crate::hash::walk::relative_to;
use crate::repo::imported;
use crate::repo::listing::normalize;
use crate::repo::source::{Source, SourceError};
use crate::repo::source_data::{resolve_output, SourceData};
use crate::repo::{gitignore, Repo};
use crate::{ExitCode, LodeError};

pub fn run(a: ImportArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let repo = Repo::discover(&ui.cwd)?;
    let action = format!("failed to import '{}' from '{}'.", a.path, a.url);
    let dest = resolve_output(&ui.cwd, &a.path, a.out.as_deref(), a.force)
        .map_err(|m| LodeError::Failed(format!("{action} - {m}")))?;
    let dest = crate::hash::walk::normalize(&dest);
    if !dest.starts_with(&repo.root) || dest == repo.root {
        return Err(LodeError::Failed(format!(
            "{action} - '{}' is outside of the repository",
            relative_to(&dest, &ui.cwd).display()
        )));
    }
    let _lock = repo.lock()?;
    let shown = relative_to(&dest, &ui.cwd);
    ui.out.line(format_args!(
        "Importing '{} ({})' -> '{}'",
        a.path,
        a.url,
        shown.display()
    ))?;
    let source = Source::open(&a.url, &ui.cwd, a.rev.as_deref()).map_err(|e| match e {
        SourceError::Clone { .. } => e.into_lode(&format!("failed to import '{}'", a.path)),
        other => other.into_lode(&action),
    })?;
    let commit = source.commit.clone();
    let data = SourceData::open(source, Cache::for_repo(&repo)?, a.jobs)
        .map_err(|e| e.into_lode(&action))?;
    let resolved = imported::resolve(&data, &a.path, !a.no_download, ui.out, &action)?;
    let out_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = imported::render(
        &a.url,
        &a.path,
        a.rev.as_deref(),
        &commit,
        &out_name,
        &resolved,
    );
    if resolved.record.is_some() {
        data.write_out(
            &normalize(&a.path),
            resolved.is_dir,
            &resolved.files,
            &dest,
            true,
        )?;
    }
    let dvc_file = dest.with_file_name(format!("{out_name}.dvc"));
    crate::repo::dvcfile::write_atomic(&dvc_file, &text)
        .map_err(|e| e.into_lode(ExitCode::Error, &ui.cwd))?;
    let mut to_stage = vec![dvc_file];
    if let Some(g) = gitignore::add_entry(&repo.root, &dest)? {
        to_stage.push(g);
    }
    crate::commands::stage_or_hint(&repo, &to_stage, &ui.cwd, ui)?;
    Ok(ExitCode::Ok)
}
