//! The filesystem blob store: `{data}/blobs/{kind}/{ab}/{cdef...}`, uploads in `{data}/tmp/`.
//!
//! One concern a file: where blobs live ([`layout`]), the files uploads are written to
//! ([`temp`]), writing large ones around the page cache ([`direct`]), receiving bodies
//! ([`staging`]), reading blobs back ([`read`]), when to flush the whole filesystem rather than
//! file by file ([`durability`], [`flush_pool`]), and commits made durable together
//! ([`group_commit`]). Blocking work runs on threads of the store's own choosing; callers only
//! see the async [`BlobStore`] trait.

mod direct;
mod durability;
mod flush_pool;
mod group_commit;
mod layout;
mod read;
mod staging;
mod temp;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use lode_proto::HashKind;

use super::{
    BatchOutcome, BlobKey, BlobMeta, BlobSink, BlobStore, ByteStream, FsMaintenance, ListedBlob,
    OpenBlob, Received, SmallReads, Staged, StoreError, StoreResult, Upkeep,
};
use direct::ChunkPool;
use flush_pool::FlushPool;
use group_commit::GroupQueue;
use temp::LinkWay;

pub struct FsStore {
    blobs: PathBuf,
    tmp: PathBuf,
    quarantine: PathBuf,
    max_size: u64,
    /// The queue of the group-commit thread, started by the first commit.
    group: OnceLock<GroupQueue>,
    /// Descriptors for filesystem-wide flushes (see `durability::sync_filesystem`), one for the
    /// group commits and one for bulk commits, opened with the store: `syncfs` reports a
    /// writeback error once to each descriptor opened before it happened, so a descriptor
    /// opened just for the call would miss an error from the background writeback of a batch's
    /// data.
    group_sync: File,
    bulk_sync: File,
    /// How uploads' unnamed files are linked; `None` when uploads go to named files (see
    /// `temp::TempBlob`).
    unnamed_temps: Option<LinkWay>,
    /// Handles on the fan-out folders, by kind and first byte (see `FsStore::folder`).
    folders: Vec<OnceLock<File>>,
    /// Group commit rounds and bulk placements take turns (see `group_commit`).
    turns: Mutex<()>,
    /// Threads that wait on flushes side by side, started by the first batch that needs them.
    flush_pool: OnceLock<Option<FlushPool>>,
    /// Aligned chunks large uploads gather their direct writes in.
    chunks: ChunkPool,
}

impl FsStore {
    /// Opens the store under `data`, creating its folders. `max_size` caps a single object.
    pub fn open(data: &Path, max_size: u64) -> StoreResult<Arc<FsStore>> {
        let blobs = data.join("blobs");
        let tmp = data.join("tmp");
        for kind in [HashKind::Md5, HashKind::Md5Dos2unix] {
            let dir = blobs.join(kind.as_str());
            fs::create_dir_all(&dir)
                .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        }
        fs::create_dir_all(&tmp)
            .map_err(|e| StoreError::io(format!("creating {}", tmp.display()), e))?;
        let open_dir = |dir: &Path| {
            File::open(dir).map_err(|e| StoreError::io(format!("opening {}", dir.display()), e))
        };
        Ok(Arc::new(FsStore {
            group_sync: open_dir(&blobs)?,
            bulk_sync: open_dir(&blobs)?,
            unnamed_temps: temp::unnamed_temps_way(&tmp),
            folders: (0..2 * 256).map(|_| OnceLock::new()).collect(),
            quarantine: data.join("quarantine"),
            blobs,
            tmp,
            max_size,
            group: OnceLock::new(),
            turns: Mutex::new(()),
            flush_pool: OnceLock::new(),
            chunks: ChunkPool::new(),
        }))
    }

    /// Deletes uploads left behind by a crash. Only safe when no server is running on this
    /// data folder (the caller holds the data folder lock).
    pub fn clean_tmp(&self) -> StoreResult<usize> {
        let mut n = 0;
        let entries = fs::read_dir(&self.tmp)
            .map_err(|e| StoreError::io(format!("listing {}", self.tmp.display()), e))?;
        for entry in entries.flatten() {
            if fs::remove_file(entry.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Runs blocking work of the store on the blocking pool.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&FsStore) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(StoreError::join)?
    }
}

impl BlobStore for Arc<FsStore> {
    fn max_object_size(&self) -> u64 {
        self.max_size
    }

    fn receive(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Box<dyn BlobSink>>> {
        self.clone().sink(key).boxed()
    }

    fn receive_bytes(&self, key: BlobKey, data: Bytes) -> BoxFuture<'_, StoreResult<Received>> {
        self.receive_one(key, data).boxed()
    }

    fn receive_batch(&self, items: Vec<(BlobKey, Bytes)>) -> BoxFuture<'_, BatchOutcome<Received>> {
        self.receive_many(items).boxed()
    }

    fn read_staged(&self, staged: &Staged) -> BoxFuture<'_, StoreResult<ByteStream>> {
        let opened = self.open_staged(staged.received());
        async move { opened?.await }.boxed()
    }

    fn commit(&self, staged: Staged) -> BoxFuture<'_, StoreResult<()>> {
        self.clone().group_commit(staged.into_received()).boxed()
    }

    fn commit_many(&self, staged: Vec<Staged>) -> BoxFuture<'_, StoreResult<()>> {
        let received = staged.into_iter().map(Staged::into_received).collect();
        self.blocking(move |s| s.commit_many_blocking(received))
            .boxed()
    }

    fn stat(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Option<BlobMeta>>> {
        futures::future::ready(self.stat_now(key)).boxed()
    }

    fn open(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Option<OpenBlob>>> {
        self.open_blob(key).boxed()
    }

    fn read_small(&self, keys: Vec<BlobKey>, limit: u64) -> BoxFuture<'_, StoreResult<SmallReads>> {
        self.blocking(move |s| {
            Ok(keys
                .into_iter()
                .map(|k| s.read_small_blocking(k, limit))
                .collect())
        })
        .boxed()
    }

    fn delete(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<bool>> {
        let path = self.blob_path(key);
        async move {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(StoreError::io(format!("deleting {key}"), e)),
            }
        }
        .boxed()
    }

    fn check_ready(&self) -> BoxFuture<'_, StoreResult<()>> {
        self.blocking(|s| s.write_probe()).boxed()
    }

    fn list(&self, kind: HashKind) -> BoxFuture<'_, StoreResult<Vec<ListedBlob>>> {
        self.blocking(move |s| s.list_blocking(kind)).boxed()
    }
}

impl FsMaintenance for Arc<FsStore> {
    fn blob_path(&self, key: BlobKey) -> PathBuf {
        FsStore::blob_path(self, key)
    }

    fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    fn clean_tmp(&self) -> StoreResult<usize> {
        FsStore::clean_tmp(self)
    }

    fn quarantine(&self, kind: HashKind, name: &str) -> StoreResult<bool> {
        self.quarantine_blocking(kind, name)
    }
}

/// Only safe while no server uses the data folder, which the data folder lock ensures for
/// every caller (start-up and `fsck`).
impl Upkeep for Arc<FsStore> {
    fn unfinished(&self) -> BoxFuture<'_, StoreResult<usize>> {
        let tmp = self.tmp.clone();
        async move { Ok(fs::read_dir(tmp).map(|d| d.count()).unwrap_or(0)) }.boxed()
    }

    fn clean_unfinished(&self) -> BoxFuture<'_, StoreResult<usize>> {
        self.blocking(FsStore::clean_tmp).boxed()
    }

    fn quarantine(&self, kind: HashKind, name: &str) -> BoxFuture<'_, StoreResult<bool>> {
        let name = name.to_string();
        self.blocking(move |s| s.quarantine_blocking(kind, &name))
            .boxed()
    }
}

#[cfg(test)]
pub(super) mod tests;
