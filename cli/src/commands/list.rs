//! `lode list URL [PATH]`: what `dvc list` prints for a commit of another repository.

use crate::cache::link::LinkType;
use crate::cache::{Cache, Sharing};
use crate::cli::ListArgs;
use crate::commands::Ui;
use crate::repo::listing::ListingError;
use crate::repo::source::{user_cache_dir, Source};
use crate::repo::source_data::SourceData;
use crate::{ExitCode, LodeError};

pub fn run(a: ListArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let failed =
        |e: crate::repo::source::SourceError| e.into_lode(&format!("failed to list '{}'", a.url));
    let source = Source::open(&a.url, &ui.cwd, a.rev.as_deref()).map_err(failed)?;
    // Manifests read to expand folders are kept for the next look.
    let manifests = Cache::new(
        user_cache_dir().join("objects"),
        vec![LinkType::Copy],
        Sharing::Private,
    );
    let data = SourceData::open(source, manifests, None).map_err(failed)?;
    let path = a.path.as_deref().unwrap_or("");
    let entries = data
        .listing
        .list(path, a.recursive, a.dvc_only, &mut |k, o| {
            data.manifest(k, o)
        })
        .map_err(|e| match e {
            ListingError::NotFound { .. } => LodeError::Failed(e.to_string()),
            ListingError::Manifest(e) => {
                LodeError::Failed(format!("failed to list '{}' - {e}", a.url))
            }
        })?;
    if a.json {
        let mut s = String::from("[");
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            e.to_json(&mut s);
        }
        s.push(']');
        ui.out.line(s)?;
    } else if !entries.is_empty() {
        let text: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        ui.out.line(text.join("\n"))?;
    }
    Ok(ExitCode::Ok)
}
