//! `gc -c`: removing from a remote what no `.dvc` file in scope uses.
//!
//! The keep-set is the one local gc computed, plus the entries of kept `.dir` manifests that are
//! only on the remote (read from there): without them a directory's files would look unused.
//! On `lode-server` the server drops the project's references (keeping recently pushed objects
//! for a grace period) and deletes blobs no project references; on a folder remote unused
//! objects are deleted as DVC does, manifests first. Plain HTTP cannot list or delete.

use std::collections::HashSet;

use lode_proto::transfer::{GcRequest, KindedOids};
use lode_proto::{HashKind, ObjectId};

use super::{Backend, Remote, RemoteError};
use crate::cache::Cache;
use crate::hash::manifest::Manifest;

/// `LODE_GC_GRACE_SECONDS` overrides the server's grace period for recently pushed objects.
fn grace() -> Option<u64> {
    std::env::var("LODE_GC_GRACE_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

fn expand(
    remote: &Remote,
    cache: &Cache,
    kind: HashKind,
    keep: &HashSet<ObjectId>,
) -> Result<HashSet<ObjectId>, RemoteError> {
    let mut out = keep.clone();
    for d in keep.iter().filter(|o| o.is_dir()) {
        if cache.read_manifest(d, kind).is_ok() {
            continue;
        }
        if let Some(bytes) = remote.read_small(kind, *d)? {
            let m = Manifest::parse(&bytes).map_err(|e| {
                RemoteError::Fatal(format!(
                    "remote '{}': manifest {d} is unreadable ({e}); nothing was removed",
                    remote.name
                ))
            })?;
            out.extend(m.entries().iter().map(|e| e.oid));
        }
    }
    Ok(out)
}

/// Whether gc deletes what is unused or only says what it would delete (`--dry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcMode {
    Delete,
    DryRun,
}

/// Collects garbage on `remote`; returns the lines to print.
pub fn collect(
    remote: &Remote,
    cache: &Cache,
    keep_md5: &HashSet<ObjectId>,
    keep_legacy: &HashSet<ObjectId>,
    mode: GcMode,
) -> Result<Vec<String>, RemoteError> {
    let dry = mode == GcMode::DryRun;
    let md5 = expand(remote, cache, HashKind::Md5, keep_md5)?;
    let legacy = expand(remote, cache, HashKind::Md5Dos2unix, keep_legacy)?;
    match remote.backend() {
        Backend::Lode(l) => {
            let req = GcRequest {
                keep: vec![
                    KindedOids {
                        kind: HashKind::Md5,
                        oids: md5.into_iter().collect(),
                    },
                    KindedOids {
                        kind: HashKind::Md5Dos2unix,
                        oids: legacy.into_iter().collect(),
                    },
                ],
                dry_run: dry,
                grace_seconds: grace(),
            };
            let resp = remote
                .block_on(l.gc(&req))
                .map_err(|m| RemoteError::Fatal(format!("remote '{}': {m}", remote.name)))?;
            let n: usize = resp.removed.iter().map(|k| k.oids.len()).sum();
            let mut lines = Vec::new();
            if dry {
                for k in &resp.removed {
                    for oid in &k.oids {
                        lines.push(format!("Would remove {}", oid.dvc_key(k.kind)));
                    }
                }
                lines.push(format!(
                    "Would remove {n} objects ({} bytes) from remote.",
                    resp.removed_bytes
                ));
            } else if n > 0 {
                lines.push(format!("Removed {n} objects from remote."));
            } else {
                lines.push("No unused cache to remove from remote.".into());
            }
            if resp.kept_recent > 0 {
                lines.push(format!(
                    "Kept {} unused objects pushed within the grace period.",
                    resp.kept_recent
                ));
            }
            Ok(lines)
        }
        Backend::Folder(f) => {
            let mut unused: Vec<(HashKind, ObjectId, std::path::PathBuf)> = f
                .list()
                .into_iter()
                .filter(|(kind, oid, _)| match kind {
                    HashKind::Md5 => !md5.contains(oid),
                    HashKind::Md5Dos2unix => !legacy.contains(oid),
                })
                .collect();
            // Manifests go first, so a `.dir` never outlives one of its entries.
            unused.sort_by_key(|(_, oid, path)| (!oid.is_dir(), path.clone()));
            let mut lines = Vec::new();
            for (_, _, path) in &unused {
                if dry {
                    lines.push(format!("Removing {}", path.display()));
                    continue;
                }
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(RemoteError::Fatal(format!(
                            "remote '{}': cannot remove {}: {e}",
                            remote.name,
                            path.display()
                        )))
                    }
                }
            }
            if unused.is_empty() {
                lines.push("No unused cache to remove from remote.".into());
            } else if !dry {
                lines.push(format!("Removed {} objects from remote.", unused.len()));
            }
            Ok(lines)
        }
        Backend::Http(_) => Err(RemoteError::Unsupported(format!(
            "remote '{}' is a plain HTTP remote, which cannot list or delete objects; \
             `gc -c` works with lode-server and folder remotes",
            remote.name
        ))),
    }
}
