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
use crate::store::verify::blob_digest;
use crate::store::{BlobKey, BlobStore, StoreError, Upkeep};

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
    let report = run(
        &*backends.index,
        &*backends.store,
        &*backends.upkeep,
        repair,
        quick,
    )
    .await;
    backends.close().await;
    report
}

/// Checks the data folder; with `repair`, fixes what it finds. `quick` skips re-hashing blobs.
pub(crate) async fn run(
    db: &dyn Index,
    store: &dyn BlobStore,
    upkeep: &dyn Upkeep,
    repair: bool,
    quick: bool,
) -> Result<FsckReport, FsckError> {
    let mut fsck = Fsck {
        db,
        store,
        upkeep,
        repair,
        quick,
        report: FsckReport {
            repaired: repair,
            ..Default::default()
        },
    };
    fsck.report.temp_files = if repair {
        upkeep.clean_unfinished().await?
    } else {
        upkeep.unfinished().await?
    };
    let referenced = db.all_referenced().await?;
    fsck.report.indexed = referenced.len();
    let mut unclaimed = HashMap::new();
    for kind in [HashKind::Md5, HashKind::Md5Dos2unix] {
        let on_disk = fsck.listed(kind).await?;
        unclaimed.insert(kind, fsck.indexed(kind, &referenced, on_disk).await?);
    }
    fsck.manifests().await?;
    fsck.unreferenced(unclaimed).await?;
    Ok(fsck.report)
}

/// Blobs found by a listing, by object id, with their sizes.
type OnDisk = HashMap<String, u64>;

struct Fsck<'a> {
    db: &'a dyn Index,
    store: &'a dyn BlobStore,
    upkeep: &'a dyn Upkeep,
    repair: bool,
    quick: bool,
    report: FsckReport,
}

impl Fsck<'_> {
    /// The blobs of a kind; files whose names are not object ids are strays.
    async fn listed(&mut self, kind: HashKind) -> Result<OnDisk, FsckError> {
        let listed = self.store.list(kind).await?;
        self.report.blobs += listed.len();
        let mut on_disk = OnDisk::new();
        for b in listed {
            match b.oid {
                Some(oid) => {
                    on_disk.insert(oid.to_string(), b.size);
                }
                None => {
                    self.report.strays.push(format!("{kind}/{}", b.name));
                    if self.repair {
                        self.upkeep.quarantine(kind, &b.name).await?;
                    }
                }
            }
        }
        Ok(on_disk)
    }

    /// Compares the index rows of a kind with its blobs: missing, wrong size, wrong hash.
    /// Returns the blobs left to check for references (less the corrupt ones).
    async fn indexed(
        &mut self,
        kind: HashKind,
        referenced: &[(HashKind, String, u64)],
        mut on_disk: OnDisk,
    ) -> Result<OnDisk, FsckError> {
        let (db, store) = (self.db, self.store);
        for (k, oid_s, size) in referenced.iter().filter(|(k, _, _)| *k == kind) {
            let label = format!("{k}:{oid_s}");
            let Some(disk_size) = on_disk.get(oid_s).copied() else {
                let holders = db.projects_holding(*k, oid_s).await?;
                self.report
                    .missing
                    .push(format!("{label} (held by {})", holders.join(", ")));
                if self.repair {
                    db.forget_object(*k, oid_s).await?;
                }
                continue;
            };
            let Ok(oid) = oid_s.parse::<ObjectId>() else {
                self.report
                    .corrupt
                    .push(format!("{label} (bad id in index)"));
                if self.repair {
                    db.forget_object(*k, oid_s).await?;
                }
                continue;
            };
            let key = BlobKey { kind: *k, oid };
            let mut bad = None;
            if disk_size != *size {
                bad = Some(format!("size {disk_size}, index says {size}"));
            } else if !self.quick {
                if let Some(d) = blob_digest(store, key).await? {
                    if &d != oid.digest() {
                        bad = Some(format!("content hashes to {}", hex::encode(d)));
                    }
                }
            }
            if let Some(why) = bad {
                self.report.corrupt.push(format!("{label} ({why})"));
                // Reported as corrupt; not again as unreferenced once its rows are gone.
                on_disk.remove(oid_s);
                if self.repair {
                    self.upkeep.quarantine(*k, &blob_name(oid_s)).await?;
                    db.forget_object(*k, oid_s).await?;
                }
            }
        }
        Ok(on_disk)
    }

    /// A project must never claim a directory whose contents it does not hold (DVC trusts a
    /// present `.dir` and skips its entries), including after the repairs above.
    async fn manifests(&mut self) -> Result<(), FsckError> {
        for (pid, project, kind, oid) in self.db.all_manifests().await? {
            let problem = match manifest_digests(self.store, BlobKey { kind, oid }).await {
                None => Some("unreadable manifest".to_string()),
                Some(d) => {
                    let missing = self.db.missing_digests(pid, kind, &d).await?;
                    (!missing.is_empty()).then(|| format!("{} entries not held", missing.len()))
                }
            };
            if let Some(why) = problem {
                self.report
                    .incomplete_dirs
                    .push(format!("{kind}:{oid} in project {project} ({why})"));
                if self.repair {
                    self.db.forget_project_object(pid, kind, &oid).await?;
                }
            }
        }
        Ok(())
    }

    /// Unreferenced blobs, counted after the repairs above may have dropped references.
    async fn unreferenced(
        &mut self,
        unclaimed: HashMap<HashKind, OnDisk>,
    ) -> Result<(), FsckError> {
        let still: std::collections::HashSet<(HashKind, String)> = self
            .db
            .all_referenced()
            .await?
            .into_iter()
            .map(|(k, o, _)| (k, o))
            .collect();
        for (kind, on_disk) in unclaimed {
            for oid_s in on_disk.keys() {
                if still.contains(&(kind, oid_s.clone())) {
                    continue;
                }
                self.report.orphans.push(format!("{kind}:{oid_s}"));
                if self.repair {
                    self.upkeep.quarantine(kind, &blob_name(oid_s)).await?;
                }
            }
        }
        self.report.orphans.sort();
        Ok(())
    }
}

/// A blob's name as listed: `ab/cdef...`.
fn blob_name(oid: &str) -> String {
    format!("{}/{}", &oid[..2], &oid[2..])
}

/// The entries of a stored `.dir` manifest; `None` when it is missing or unreadable.
async fn manifest_digests(store: &dyn BlobStore, key: BlobKey) -> Option<Vec<[u8; 16]>> {
    let blob = store.open(key).await.ok()??;
    let size = blob.meta.size;
    let stream = blob.range(0, size).ok()?;
    crate::manifest::entry_digests_of(stream).await.ok()
}
