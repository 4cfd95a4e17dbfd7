//! Imports: a path of another repository copied into this one with a `.dvc` file that
//! remembers where it came from (`deps:` with `repo: {url, rev, rev_lock}`, `frozen: true`), as
//! `dvc import` writes it. `import` and `update` resolve the path at a commit of the source,
//! fetch its objects into this repository's cache and write the file and the workspace copy.

use std::path::Path;

use lode_proto::{HashKind, ObjectId};

use crate::cache::outputs::Tracked;
use crate::cache::Cache;
use crate::hash::walk::relative_to;
use crate::repo::pipeline::owner::Owner;
use crate::repo::source::Source;
use crate::repo::Repo;

use crate::hash::manifest::{Entry, Manifest};
use crate::printer::Printer;
use crate::remote::sync;
use crate::repo::dvcfile::deps::write::render_import;
use crate::repo::dvcfile::deps::RepoSource;
use crate::repo::dvcfile::{Dep, DvcFile, Out, OutRecord};
use crate::repo::listing::{normalize, Content, File, ListingError};
use crate::repo::source_data::SourceData;
use crate::LodeError;

/// A source path at one commit, as this repository will track it.
pub(crate) struct Resolved {
    pub is_dir: bool,
    /// Every file, its bytes in this repository's cache (empty without download).
    pub files: Vec<File>,
    /// The output's hash, size and file count; `None` without download.
    pub record: Option<(ObjectId, u64, Option<u64>)>,
    /// Objects downloaded from the source's remote.
    pub fetched: usize,
}

/// Resolves `path` in the source; with `download`, fetches its objects (Git-tracked files are
/// hashed and stored too) and computes what the output records. `action` prefixes errors.
pub(crate) fn resolve(
    data: &SourceData,
    path: &str,
    download: bool,
    out: Printer,
    action: &str,
) -> Result<Resolved, LodeError> {
    let (is_dir, files) = data
        .listing
        .files(path, false, &mut |k, o| data.manifest(k, o))
        .map_err(|e| match e {
            ListingError::NotFound { path } => LodeError::Other(format!(
                "{action} - '{path}' does not exist at revision {}",
                &data.source.commit[..7]
            )),
            ListingError::Manifest(e) => LodeError::Failed(format!("{action} - {e}")),
        })?;
    if !download {
        return Ok(Resolved {
            is_dir,
            files: Vec::new(),
            record: None,
            fetched: 0,
        });
    }
    let report = data.fetch(&files, out).map_err(|e| match e {
        LodeError::Other(m) => LodeError::Failed(format!("{action} - {m}")),
        other => other,
    })?;
    if !report.failed.is_empty() || !report.missing.is_empty() {
        let remote = data.remote().map(|r| r.name.clone()).unwrap_or_default();
        sync::print_failures(out, &report.failed, &remote, "from");
        if let Some(w) = sync::missing_warning(&report.missing) {
            out.warn(w);
        }
        return Err(LodeError::Failed(format!(
            "{action} - {} could not be downloaded",
            sync::files(report.failed.len() + report.missing.len())
        )));
    }
    let top = normalize(path);
    let mut stored = Vec::with_capacity(files.len());
    let mut total = 0u64;
    let mut from_git = 0;
    for f in files {
        let (kind, oid) = match &f.content {
            Content::Dvc { kind, oid } => (*kind, *oid),
            Content::Git { .. } => {
                let full = match (top.is_empty(), f.rel.is_empty()) {
                    (_, true) => top.clone(),
                    (true, false) => f.rel.clone(),
                    (false, false) => format!("{top}/{}", f.rel),
                };
                let bytes = data
                    .source
                    .git()
                    .blob_at(&data.source.commit, &full)?
                    .ok_or_else(|| LodeError::Other(format!("'{full}' is not in Git")))?;
                let oid = ObjectId::from_digest(crate::hash::md5_bytes(&bytes), false);
                if !data.cache.contains(&oid, HashKind::Md5) {
                    data.cache.insert_bytes(oid, HashKind::Md5, &bytes)?;
                    from_git += 1;
                }
                (HashKind::Md5, oid)
            }
        };
        let p = data.cache.object_path(&oid, kind);
        let size = std::fs::metadata(&p)
            .map_err(|source| crate::repo::RepoError::Io { path: p, source })?
            .len();
        total += size;
        stored.push(File {
            content: Content::Dvc { kind, oid },
            size: Some(size),
            ..f
        });
    }
    let record = if is_dir {
        let manifest = Manifest::new(
            stored
                .iter()
                .filter_map(|f| match f.content {
                    Content::Dvc { oid, .. } => Some(Entry {
                        relpath: f.rel.clone(),
                        oid,
                    }),
                    Content::Git { .. } => None,
                })
                .collect(),
        );
        let oid = manifest.oid();
        data.cache
            .insert_bytes(oid, HashKind::Md5, &manifest.to_json())?;
        (oid, total, Some(stored.len() as u64))
    } else {
        match stored.first().map(|f| &f.content) {
            Some(Content::Dvc { oid, .. }) => (*oid, total, None),
            _ => return Err(LodeError::Other(format!("{action} - nothing to import"))),
        }
    };
    Ok(Resolved {
        is_dir,
        files: stored,
        record: Some(record),
        fetched: report.fetched + from_git,
    })
}

/// The `.dvc` text of an import of `path` from `url` (`rev` as asked, `rev_lock` the commit)
/// into the output named `out_name` (relative to the `.dvc` file's folder).
pub(crate) fn render(
    url: &str,
    path: &str,
    rev: Option<&str>,
    rev_lock: &str,
    out_name: &str,
    resolved: &Resolved,
) -> String {
    let dep = Dep {
        path: path.to_string(),
        repo: Some(RepoSource {
            url: url.to_string(),
            rev: rev.map(str::to_string),
            rev_lock: Some(rev_lock.to_string()),
            config: None,
            remote: None,
        }),
        oid: None,
        kind: HashKind::Md5Dos2unix,
        size: None,
        nfiles: None,
        isexec: false,
    };
    let (oid, size, nfiles) = match resolved.record {
        Some((oid, size, nfiles)) => (Some(oid), Some(size), nfiles),
        None => (None, None, None),
    };
    let out = Out {
        path: out_name.to_string(),
        oid,
        kind: HashKind::Md5,
        size,
        nfiles,
        isexec: false,
        cache: true,
        push: true,
    };
    render_import(&[dep], &[out])
}

/// `file` (an import whose source moved) edited in place as `dvc update` edits it: the
/// output's values replaced or appended, the stage hash, `rev_lock` and `rev` taken from
/// `canonical`, the new file as `render` writes it.
pub(crate) fn edited(
    file: &DvcFile,
    canonical: &str,
    record: (ObjectId, u64, Option<u64>),
) -> String {
    let (oid, size, nfiles) = record;
    let Some(out) = file.outs.first() else {
        return canonical.to_string();
    };
    let rec = OutRecord {
        path: out.path.clone(),
        oid,
        kind: HashKind::Md5,
        size,
        nfiles,
        isexec: false,
    };
    let new_line = |prefix: &str| {
        canonical
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(str::to_string)
    };
    let (Some(md5), Some(rev_lock)) = (new_line("md5: "), new_line("rev_lock: ")) else {
        return canonical.to_string();
    };
    // A `rev` the file did not have goes after `rev_lock`, where DVC's round-trip edit puts it.
    let rev = new_line("rev: ");
    let updated = file.updated_text(0, &rec);
    let had_rev = updated.lines().any(|l| l.trim_start().starts_with("rev: "));
    let mut text = String::new();
    for line in updated.split_inclusive('\n') {
        let body = line.trim_end_matches('\n').trim_start();
        if line.starts_with("md5: ") {
            text.push_str(&md5);
            text.push('\n');
        } else if body.starts_with("rev_lock: ") {
            text.push_str(&rev_lock);
            text.push('\n');
            if let (false, Some(r)) = (had_rev, &rev) {
                text.push_str(r);
                text.push('\n');
            }
        } else if let (true, Some(r), true) = (body.starts_with("rev: "), &rev, had_rev) {
            text.push_str(r);
            text.push('\n');
        } else {
            text.push_str(line);
        }
    }
    text
}

/// An import `.dvc` file of the workspace whose output has a recorded hash.
pub(crate) struct Import {
    pub dep: Dep,
    pub source: RepoSource,
    pub out: Out,
    /// The output's path as shown to the user.
    pub name: String,
}

impl Import {
    pub fn oid(&self) -> Option<(HashKind, ObjectId)> {
        self.out.oid.map(|o| (self.out.kind, o))
    }
}

/// The imports among `tracked` (`.dvc` files whose dependency is another repository).
pub(crate) fn in_scope(tracked: &[Tracked], cwd: &Path) -> Vec<Import> {
    let mut found = Vec::new();
    for t in tracked {
        let Owner::File(file) = &t.owner else {
            continue;
        };
        let (Some(dep), Some(out)) = (file.deps.first(), file.outs.first()) else {
            continue;
        };
        let Some(source) = &dep.repo else { continue };
        if out.oid.is_none() {
            continue;
        }
        found.push(Import {
            dep: dep.clone(),
            source: source.clone(),
            out: out.clone(),
            name: relative_to(&file.out_path(0), cwd)
                .to_string_lossy()
                .into_owned(),
        });
    }
    found
}

/// Brings the data of `imports` into `repo`'s cache from each source's remote, at the commit
/// the import records; returns how many objects were downloaded. An import whose source now
/// yields other data than it records is an error.
pub(crate) fn fetch_all(
    repo: &Repo,
    imports: &[Import],
    cwd: &Path,
    jobs: Option<usize>,
    out: Printer,
    action: &str,
) -> Result<usize, LodeError> {
    let mut fetched = 0;
    for import in imports {
        let cache = Cache::for_repo(repo)?;
        let Some((kind, oid)) = import.oid() else {
            continue;
        };
        let complete = cache.contains(&oid, kind)
            && (!oid.is_dir()
                || cache.read_manifest(&oid, kind).is_ok_and(|m| {
                    let ids: Vec<ObjectId> = m.entries().iter().map(|e| e.oid).collect();
                    cache.contains_all(&ids, kind)
                }));
        if complete {
            continue;
        }
        let rev = import
            .source
            .rev_lock
            .as_deref()
            .or(import.source.rev.as_deref());
        let source = Source::open(&import.source.url, cwd, rev).map_err(|e| e.into_lode(action))?;
        let data = SourceData::open(source, cache, jobs).map_err(|e| e.into_lode(action))?;
        let resolved = resolve(&data, &import.dep.path, true, out, action)?;
        if resolved.record.map(|r| r.0) != Some(oid) {
            return Err(LodeError::Failed(format!(
                "{action} - '{}' no longer matches its source at {}",
                import.name,
                &data.source.commit[..7]
            )));
        }
        fetched += resolved.fetched;
    }
    Ok(fetched)
}
