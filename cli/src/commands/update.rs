//! `lode update TARGET...`: moves imports to the latest commit of their source (or to `--rev`),
//! rewriting their `.dvc` files as `dvc update` does and the data in the workspace.

use std::path::PathBuf;

use crate::cache::Cache;
use crate::cli::UpdateArgs;
use crate::commands::Ui;
use crate::hash::walk::{normalize, relative_to};
use crate::repo::dvcfile::DvcFile;
use crate::repo::imported;
use crate::repo::listing;
use crate::repo::source::Source;
use crate::repo::source_data::SourceData;
use crate::repo::Repo;
use crate::{ExitCode, LodeError};

pub fn run(a: UpdateArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let repo = Repo::discover(&ui.cwd)?;
    let _lock = repo.lock()?;
    for target in &a.targets {
        let abs = normalize(&ui.cwd.join(target));
        let dvc_path = if abs.extension().is_some_and(|e| e == "dvc") {
            abs
        } else {
            PathBuf::from(format!("{}.dvc", abs.display()))
        };
        let shown = relative_to(&dvc_path, &ui.cwd);
        let action = format!("failed to update '{}'.", target.display());
        let file = DvcFile::load(&dvc_path).map_err(|e| e.into_lode(ExitCode::Error, &ui.cwd))?;
        let (Some(dep), Some(out)) = (file.deps.first(), file.outs.first()) else {
            return Err(LodeError::Other(format!(
                "{action} - '{}' is not an import",
                shown.display()
            )));
        };
        let Some(src) = &dep.repo else {
            return Err(LodeError::Other(format!(
                "{action} - '{}' is not an import from a repository",
                shown.display()
            )));
        };
        let rev = a.rev.clone().or_else(|| src.rev.clone());
        let source =
            Source::open(&src.url, &ui.cwd, rev.as_deref()).map_err(|e| e.into_lode(&action))?;
        let commit = source.commit.clone();
        let dest = dvc_path.parent().unwrap_or(&repo.root).join(&out.path);
        ui.out.line(format_args!(
            "Importing '{} ({})' -> '{}'",
            dep.path,
            src.url,
            relative_to(&dest, &ui.cwd).display()
        ))?;
        let unchanged = src.rev_lock.as_deref() == Some(commit.as_str())
            && rev == src.rev
            && (a.no_download || out.oid.is_some());
        if unchanged && (a.no_download || dest.exists()) {
            continue;
        }
        let data = SourceData::open(source, Cache::for_repo(&repo)?, a.jobs)
            .map_err(|e| e.into_lode(&action))?;
        let resolved = imported::resolve(&data, &dep.path, !a.no_download, ui.out, &action)?;
        let canonical = imported::render(
            &src.url,
            &dep.path,
            rev.as_deref(),
            &commit,
            &out.path,
            &resolved,
        );
        let text = match resolved.record {
            Some(record) => imported::edited(&file, &canonical, record),
            None => canonical,
        };
        if resolved.record.is_some() {
            data.write_out(
                &listing::normalize(&dep.path),
                resolved.is_dir,
                &resolved.files,
                &dest,
                true,
            )?;
        }
        crate::repo::dvcfile::write_atomic(&dvc_path, &text)
            .map_err(|e| e.into_lode(ExitCode::Error, &ui.cwd))?;
    }
    Ok(ExitCode::Ok)
}
