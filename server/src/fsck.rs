//! `lode-server fsck`: finds (and with `--repair` fixes) disagreements between the index and the
//! blobs. Runs with the data folder locked, so never next to a running server.
//!
//! - an indexed object whose blob is missing, has the wrong size or (unless `--quick`) the wrong
//!   hash: repair drops the index rows (so clients upload it again) and moves a bad blob to
//!   `quarantine/`;
//! - a blob no project references (e.g. a crash between storing it and indexing it): reported;
//!   repair moves it to `quarantine/`;
//! - a file in the blob folders whose name is not an object id: repair moves it aside;
//! - leftover uploads in `tmp/`: repair deletes them;
//! - a project's `.dir` manifest listing objects the project no longer holds (after the repairs
//!   above, say): repair drops that project's reference to the manifest.

use std::collections::HashMap;

use lode_proto::{HashKind, ObjectId};

use crate::backends::{open_backends, BackendError};
use crate::config::ServerConfig;
use crate::db::{Index, IndexError, Occupant};
use crate::store::{BlobKey, BlobStore, FsStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Default)]
pub struct FsckReport {
    pub blobs: usize,
    pub indexed: usize,
    pub missing: Vec<String>,
    pub corrupt: Vec<String>,
    pub orphans: Vec<String>,
    pub strays: Vec<String>,
    pub incomplete_dirs: Vec<String>,
    pub temp_files: usize,
    pub repaired: bool,
}

impl FsckReport {
    pub fn problems(&self) -> usize {
        self.missing.len()
            + self.corrupt.len()
            + self.orphans.len()
            + self.strays.len()
            + self.incomplete_dirs.len()
            + self.temp_files
    }
}

/// Opens the deployment `cfg` names, alone, and checks it.
pub async fn check(cfg: &ServerConfig, repair: bool, quick: bool) -> Result<FsckReport, FsckError> {
    let backends = open_backends(cfg, Occupant::Fsck).await?;
    let report = run(&*backends.index, &backends.store, repair, quick).await;
    backends.close().await;
    report
}

pub(crate) async fn run(
    db: &dyn Index,
    store: &std::sync::Arc<FsStore>,
    repair: bool,
    quick: bool,
) -> Result<FsckReport, FsckError> {
    let mut report = FsckReport {
        repaired: repair,
        ..Default::default()
    };
    report.temp_files = if repair {
        store.clean_tmp()?
    } else {
        std::fs::read_dir(store.tmp_dir())
            .map(|d| d.count())
            .unwrap_or(0)
    };

    let referenced = db.all_referenced().await?;
    report.indexed = referenced.len();
    // Blobs on disk that no index row has claimed yet, per kind.
    let mut disk: HashMap<HashKind, HashMap<String, u64>> = HashMap::new();
    for kind in [HashKind::Md5, HashKind::Md5Dos2unix] {
        let s = store.clone();
        let listed = tokio::task::spawn_blocking(move || s.list_blocking(kind))
            .await
            .map_err(|e| StoreError::io("listing blobs", std::io::Error::other(e.to_string())))??;
        report.blobs += listed.len();
        let mut on_disk: HashMap<String, u64> = HashMap::new();
        for b in listed {
            match b.oid {
                Some(oid) => {
                    on_disk.insert(oid.to_string(), b.size);
                }
                None => {
                    report.strays.push(format!("{kind}/{}", b.name));
                    if repair {
                        store.quarantine_blocking(kind, &b.name)?;
                    }
                }
            }
        }
        for (k, oid_s, size) in referenced.iter().filter(|(k, _, _)| *k == kind) {
            let label = format!("{k}:{oid_s}");
            let Some(disk_size) = on_disk.get(oid_s).copied() else {
                let holders = db.projects_holding(*k, oid_s).await?;
                report
                    .missing
                    .push(format!("{label} (held by {})", holders.join(", ")));
                if repair {
                    db.forget_object(*k, oid_s).await?;
                }
                continue;
            };
            let Ok(oid) = oid_s.parse::<ObjectId>() else {
                report.corrupt.push(format!("{label} (bad id in index)"));
                if repair {
                    db.forget_object(*k, oid_s).await?;
                }
                continue;
            };
            let key = BlobKey { kind: *k, oid };
            let mut bad = None;
            if disk_size != *size {
                bad = Some(format!("size {disk_size}, index says {size}"));
            } else if !quick {
                let s = store.clone();
                let digest = tokio::task::spawn_blocking(move || s.hash_blocking(key))
                    .await
                    .map_err(|e| {
                        StoreError::io("hashing", std::io::Error::other(e.to_string()))
                    })??;
                if let Some(d) = digest {
                    if &d != oid.digest() {
                        bad = Some(format!("content hashes to {}", hex::encode(d)));
                    }
                }
            }
            if let Some(why) = bad {
                report.corrupt.push(format!("{label} ({why})"));
                // Reported as corrupt; not again as unreferenced once its rows are gone.
                on_disk.remove(oid_s);
                if repair {
                    let name = oid.to_string();
                    store.quarantine_blocking(*k, &format!("{}/{}", &name[..2], &name[2..]))?;
                    db.forget_object(*k, oid_s).await?;
                }
            }
        }
        disk.insert(kind, on_disk);
    }

    // A project must never claim a directory whose contents it does not hold (DVC trusts a
    // present `.dir` and skips its entries), including after the repairs above.
    for (pid, project, kind, oid) in db.all_manifests().await? {
        let key = BlobKey { kind, oid };
        let s = store.clone();
        let digests = tokio::task::spawn_blocking(move || -> Option<Vec<[u8; 16]>> {
            let f = std::fs::File::open(s.blob_path(key)).ok()?;
            crate::manifest::entry_digests(std::io::BufReader::new(f)).ok()
        })
        .await
        .ok()
        .flatten();
        let problem = match digests {
            None => Some("unreadable manifest".to_string()),
            Some(d) => {
                let missing = db.missing_digests(pid, kind, &d).await?;
                (!missing.is_empty()).then(|| format!("{} entries not held", missing.len()))
            }
        };
        if let Some(why) = problem {
            report
                .incomplete_dirs
                .push(format!("{kind}:{oid} in project {project} ({why})"));
            if repair {
                db.forget_project_object(pid, kind, &oid).await?;
            }
        }
    }

    // Unreferenced blobs, counted after the repairs above may have dropped references.
    let still: std::collections::HashSet<(HashKind, String)> = db
        .all_referenced()
        .await?
        .into_iter()
        .map(|(k, o, _)| (k, o))
        .collect();
    for (kind, on_disk) in disk {
        for oid_s in on_disk.keys() {
            if still.contains(&(kind, oid_s.clone())) {
                continue;
            }
            report.orphans.push(format!("{kind}:{oid_s}"));
            if repair {
                store.quarantine_blocking(kind, &format!("{}/{}", &oid_s[..2], &oid_s[2..]))?;
            }
        }
    }
    report.orphans.sort();
    Ok(report)
}
