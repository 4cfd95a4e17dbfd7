//! `lode get URL PATH`: downloads a file or folder of another repository, without tracking it,
//! inside a repository or not.

use crate::cache::link::LinkType;
use crate::cache::{Cache, Sharing};
use crate::cli::GetArgs;
use crate::commands::Ui;
use crate::remote::sync;
use crate::repo::listing::{normalize, ListingError};
use crate::repo::source::{Source, SourceError};
use crate::repo::source_data::{resolve_output, SourceData};
use crate::repo::Repo;
use crate::{ExitCode, LodeError};

pub fn run(a: GetArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let action = format!("failed to get '{}' from '{}'", a.path, a.url);
    let dest = resolve_output(&ui.cwd, &a.path, a.out.as_deref(), a.force)
        .map_err(|m| LodeError::Failed(format!("{action} - {m}")))?;
    if dest.to_string_lossy().ends_with(".dvc") {
        return Err(LodeError::Failed(format!(
            "{action} - the given path is a DVC file, you must specify a data file or a directory"
        )));
    }
    let source = Source::open(&a.url, &ui.cwd, a.rev.as_deref()).map_err(|e| match e {
        SourceError::Clone { .. } => e.into_lode(&format!("failed to get '{}'", a.path)),
        other => other.into_lode(&action),
    })?;
    // Inside a repository the objects land in its cache; elsewhere in a temporary one next to
    // the destination, so that moving them into place stays on one file system.
    let parent = dest.parent().unwrap_or(&ui.cwd).to_path_buf();
    let mut temp_cache = None;
    let cache_dir = match Repo::find_root_opt(&ui.cwd)? {
        Some(root) => Repo::open(&root)?.cache_dir(),
        None => {
            std::fs::create_dir_all(&parent).map_err(|source| crate::repo::RepoError::Io {
                path: parent.clone(),
                source,
            })?;
            let t = tempfile::Builder::new()
                .prefix(".lode-cache-")
                .tempdir_in(&parent)
                .map_err(|source| crate::repo::RepoError::Io {
                    path: parent.clone(),
                    source,
                })?;
            let dir = t.path().to_path_buf();
            temp_cache = Some(t);
            dir
        }
    };
    let cache = Cache::new(
        cache_dir,
        vec![LinkType::Reflink, LinkType::Copy],
        Sharing::Private,
    );
    let mut data = SourceData::open(source, cache, a.jobs).map_err(|e| e.into_lode(&action))?;
    data.cache_is_temporary = temp_cache.is_some();
    let (is_dir, files) = data
        .listing
        .files(&a.path, false, &mut |k, o| data.manifest(k, o))
        .map_err(|e| match e {
            ListingError::NotFound { path } => LodeError::Other(format!(
                "{action} - '{path}' does not exist at revision {}",
                &data.source.commit[..7]
            )),
            ListingError::Manifest(e) => LodeError::Failed(format!("{action} - {e}")),
        })?;
    let report = data.fetch(&files, ui.out).map_err(|e| match e {
        LodeError::Other(m) => LodeError::Failed(format!("{action} - {m}")),
        other => other,
    })?;
    if !report.failed.is_empty() || !report.missing.is_empty() {
        let remote = data.remote().map(|r| r.name.clone()).unwrap_or_default();
        sync::print_failures(ui.out, &report.failed, &remote, "from");
        if let Some(w) = sync::missing_warning(&report.missing) {
            ui.out.warn(w);
        }
        return Err(LodeError::Failed(format!(
            "{action} - {} could not be downloaded",
            sync::files(report.failed.len() + report.missing.len())
        )));
    }
    data.write_out(&normalize(&a.path), is_dir, &files, &dest, a.force)?;
    Ok(ExitCode::Ok)
}
