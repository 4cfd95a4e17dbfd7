//! What push, fetch and `status -c` do with a remote, object by object.
//!
//! The consistency rule DVC relies on holds here: a `.dir` manifest is uploaded only after every
//! entry it lists is on the remote, and it enters the local cache only after its entries did.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use lode_proto::{HashKind, ObjectId};

use super::progress::Progress;
use super::used::UsedOut;
use super::{Download, Failure, Remote, RemoteError, Upload};
use crate::cache::Cache;
use crate::hash::manifest::Manifest;
use crate::printer::Printer;

/// How a push went.
#[derive(Debug, Default)]
pub struct PushReport {
    pub pushed: usize,
    pub failed: Vec<Failure>,
    /// Objects neither in the cache nor on the remote.
    pub missing: Vec<(HashKind, ObjectId)>,
}

/// How a fetch went.
#[derive(Debug, Default)]
pub struct FetchReport {
    pub fetched: usize,
    pub failed: Vec<Failure>,
    pub missing: Vec<(HashKind, ObjectId)>,
}

/// The objects of one hash kind: loose files and directories.
#[derive(Default)]
struct KindSet {
    files: BTreeMap<ObjectId, Option<u64>>,
    dirs: Vec<ObjectId>,
}

fn by_kind(used: &[UsedOut]) -> BTreeMap<HashKind, KindSet> {
    let mut m: BTreeMap<HashKind, KindSet> = BTreeMap::new();
    for u in used {
        let k = m.entry(u.kind).or_default();
        if u.oid.is_dir() {
            k.dirs.push(u.oid);
        } else {
            k.files.insert(u.oid, u.size);
        }
    }
    m
}

fn size_in_cache(cache: &Cache, kind: HashKind, oid: &ObjectId) -> Option<u64> {
    std::fs::metadata(cache.object_path(oid, kind))
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

pub fn push(
    remote: &Remote,
    cache: &Arc<Cache>,
    used: &[UsedOut],
    progress: &Progress,
) -> Result<PushReport, RemoteError> {
    let mut report = PushReport::default();
    for (kind, set) in by_kind(used) {
        let mut manifests: HashMap<ObjectId, Manifest> = HashMap::new();
        let mut objs: HashSet<ObjectId> = set.files.keys().copied().collect();
        for d in &set.dirs {
            if let Ok(m) = cache.read_manifest(d, kind) {
                objs.extend(m.entries().iter().map(|e| e.oid));
                manifests.insert(*d, m);
            }
        }
        let mut all: Vec<ObjectId> = objs.iter().copied().collect();
        all.extend(set.dirs.iter().copied());
        all.sort();
        all.dedup();
        let absent = remote.missing(kind, &all)?;

        let mut uploads = Vec::new();
        let mut sorted: Vec<&ObjectId> = objs.iter().filter(|o| absent.contains(o)).collect();
        sorted.sort();
        for oid in sorted {
            match size_in_cache(cache, kind, oid) {
                Some(size) => uploads.push(Upload { oid: *oid, size }),
                None => report.missing.push((kind, *oid)),
            }
        }
        progress.add_work(uploads.len() as u64, uploads.iter().map(|u| u.size).sum());
        let first = remote.upload(cache, kind, uploads, progress)?;
        let not_there: HashSet<ObjectId> = first
            .failed
            .iter()
            .map(|f| f.oid)
            .chain(
                report
                    .missing
                    .iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, o)| *o),
            )
            .collect();
        report.pushed += first.done.len();
        report.failed.extend(first.failed);

        let mut dir_uploads = Vec::new();
        for d in &set.dirs {
            if !absent.contains(d) {
                continue;
            }
            let Some(m) = manifests.get(d) else {
                report.missing.push((kind, *d));
                continue;
            };
            if m.entries().iter().any(|e| not_there.contains(&e.oid)) {
                // Its entries are not all on the remote: a `.dir` there would claim they are.
                continue;
            }
            if let Some(size) = size_in_cache(cache, kind, d) {
                dir_uploads.push(Upload { oid: *d, size });
            }
        }
        progress.add_work(
            dir_uploads.len() as u64,
            dir_uploads.iter().map(|u| u.size).sum(),
        );
        let second = remote.upload(cache, kind, dir_uploads, progress)?;
        report.pushed += second.done.len();
        report.failed.extend(second.failed);
    }
    progress.finish();
    Ok(report)
}

pub fn fetch(
    remote: &Remote,
    cache: &Arc<Cache>,
    used: &[UsedOut],
    progress: &Progress,
) -> Result<FetchReport, RemoteError> {
    let mut report = FetchReport::default();
    for (kind, set) in by_kind(used) {
        let mut wanted: BTreeMap<ObjectId, Option<u64>> = set.files.clone();
        // Manifests read from the remote, stored after their entries.
        let mut fetched_dirs: Vec<(ObjectId, Vec<u8>, Manifest)> = Vec::new();
        for d in &set.dirs {
            let manifest = match cache.read_manifest(d, kind) {
                Ok(m) => m,
                Err(_) => match remote.read_small(kind, *d)? {
                    Some(bytes) => match Manifest::parse(&bytes) {
                        Ok(m) => {
                            fetched_dirs.push((*d, bytes, m.clone()));
                            m
                        }
                        Err(e) => {
                            report.failed.push(Failure {
                                oid: *d,
                                message: e.to_string(),
                            });
                            continue;
                        }
                    },
                    None => {
                        report.missing.push((kind, *d));
                        continue;
                    }
                },
            };
            for e in manifest.entries() {
                wanted.entry(e.oid).or_insert(None);
            }
        }
        let ids: Vec<ObjectId> = wanted.keys().copied().collect();
        let mut present = cache.present(&ids, kind);
        let downloads: Vec<Download> = wanted
            .iter()
            .filter(|(oid, _)| !present.contains(oid))
            .map(|(oid, size)| Download {
                oid: *oid,
                size: *size,
            })
            .collect();
        progress.add_work(
            downloads.len() as u64,
            downloads.iter().filter_map(|d| d.size).sum(),
        );
        let outcome = remote.download(cache, kind, downloads, progress)?;
        report.fetched += outcome.done.len();
        report.failed.extend(outcome.failed);
        report
            .missing
            .extend(outcome.absent.iter().map(|o| (kind, *o)));
        present.extend(outcome.done.iter().copied());
        for (oid, bytes, m) in fetched_dirs {
            if m.entries().iter().all(|e| present.contains(&e.oid)) {
                cache
                    .insert_bytes(oid, kind, &bytes)
                    .map_err(|e| RemoteError::Fatal(format!("cannot write to the cache: {e}")))?;
                report.fetched += 1;
            }
        }
    }
    progress.finish();
    Ok(report)
}

/// One line of `status -c`: where an object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudState {
    pub name: String,
    /// `new` (only in the cache), `deleted` (only on the remote) or `missing` (neither).
    pub state: &'static str,
}

pub fn status(
    remote: &Remote,
    cache: &Arc<Cache>,
    used: &[UsedOut],
) -> Result<Vec<CloudState>, RemoteError> {
    let mut named: Vec<(String, HashKind, ObjectId)> = Vec::new();
    for u in used {
        named.push((u.name.clone(), u.kind, u.oid));
        if !u.oid.is_dir() {
            continue;
        }
        let manifest = match cache.read_manifest(&u.oid, u.kind) {
            Ok(m) => Some(m),
            Err(_) => remote
                .read_small(u.kind, u.oid)?
                .and_then(|b| Manifest::parse(&b).ok()),
        };
        if let Some(m) = manifest {
            for e in m.entries() {
                named.push((format!("{}/{}", u.name, e.relpath), u.kind, e.oid));
            }
        }
    }
    let mut absent: HashMap<HashKind, HashSet<ObjectId>> = HashMap::new();
    for kind in [HashKind::Md5, HashKind::Md5Dos2unix] {
        let mut ids: Vec<ObjectId> = named
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|(_, _, o)| *o)
            .collect();
        ids.sort();
        ids.dedup();
        absent.insert(kind, remote.missing(kind, &ids)?);
    }
    let mut out = Vec::new();
    for (name, kind, oid) in named {
        let local = cache.contains(&oid, kind);
        let on_remote = !absent.get(&kind).is_some_and(|s| s.contains(&oid));
        let state = match (local, on_remote) {
            (true, true) => continue,
            (true, false) => "new",
            (false, true) => "deleted",
            (false, false) => "missing",
        };
        out.push(CloudState { name, state });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// "1 file", "7 files".
pub fn files(n: usize) -> String {
    if n == 1 {
        "1 file".into()
    } else {
        format!("{n} files")
    }
}

/// "6 files fetched and 5 files added", as DVC joins its counts.
pub fn summary(parts: &[(usize, &str)]) -> String {
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{} {what}", files(*n)))
        .collect();
    match words.as_slice() {
        [] => "Everything is up to date.".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The warning DVC prints for objects that are nowhere.
pub fn missing_warning(missing: &[(HashKind, ObjectId)]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let mut s = String::from(
        "Some of the cache files do not exist neither locally nor on remote. Missing cache files:",
    );
    let mut sorted = missing.to_vec();
    sorted.sort();
    sorted.dedup();
    for (kind, oid) in sorted {
        s.push_str(&format!("\n{kind}: {oid}"));
    }
    Some(s)
}

/// Failures are printed one per line; beyond this many, the rest are counted.
const SHOWN_FAILURES: usize = 20;

/// Reports transfer failures, one line each, naming the object and the remote.
pub fn print_failures(out: Printer, failed: &[Failure], remote: &str, direction: &str) {
    for f in failed.iter().take(SHOWN_FAILURES) {
        out.error(format_args!(
            "failed to transfer '{}' {direction} remote '{remote}' - {}",
            f.oid, f.message
        ));
    }
    if failed.len() > SHOWN_FAILURES {
        out.error(format_args!(
            "... and {} more objects failed the same way",
            failed.len() - SHOWN_FAILURES
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn summaries() {
        assert_eq!(summary(&[(0, "fetched")]), "Everything is up to date.");
        assert_eq!(
            summary(&[(6, "fetched"), (5, "added")]),
            "6 files fetched and 5 files added"
        );
        assert_eq!(
            summary(&[(1, "fetched"), (2, "added"), (3, "modified")]),
            "1 file fetched, 2 files added and 3 files modified"
        );
    }
}
