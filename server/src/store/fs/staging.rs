//! Receiving bodies into temp files: small ones written by the task that received them or in
//! one blocking step, large ones on a writer thread, around the page cache, while they arrive.
//! Hashing is not done here (see `store::verify`); a blob that already exists is not written
//! again.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::direct::{LargeWriter, DIRECT_CHUNK};
use super::temp::{write_err, Handle, TempBlob};
use super::FsStore;
use crate::store::verify::PIECE;
use crate::store::{BatchOutcome, BlobKey, BlobSink, Piece, Received, StoreError, StoreResult};

/// Pieces queued for the disk writer of one upload: one direct write's worth, so the network
/// and the hasher go on while the writer waits for the device. With the hasher's queue, memory
/// per upload stays at about 8.5 MiB whatever the object size.
const WRITE_QUEUE: usize = DIRECT_CHUNK / PIECE;
/// Bodies up to this size are written by the task that received them (a write into the page
/// cache); larger small ones go to the blocking pool.
const INLINE_MAX: usize = 64 * 1024;

/// What the filesystem store received for a blob (the handle inside a [`Received`]).
pub(super) enum FsReceived {
    /// New bytes waiting in a temporary file, discarded if dropped.
    Temp(TempBlob),
    /// The blob already existed; nothing was written.
    Existing,
}

/// A large body on its way to a temp file.
struct FsSink {
    key: BlobKey,
    size: u64,
    /// The writer thread's queue and the thread; `None` when the blob exists already and the
    /// bytes are only counted.
    writer: Option<(mpsc::Sender<Piece>, JoinHandle<StoreResult<TempBlob>>)>,
}

impl BlobSink for FsSink {
    fn write(&mut self, piece: Piece) -> BoxFuture<'_, StoreResult<()>> {
        self.size += piece.iter().map(|f| f.len() as u64).sum::<u64>();
        let key = self.key;
        async move {
            let Some((tx, _)) = &self.writer else {
                return Ok(());
            };
            tx.send(piece).await.map_err(|_| {
                StoreError::io(
                    format!("writing {key}"),
                    std::io::Error::other("the writer stopped"),
                )
            })
        }
        .boxed()
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, StoreResult<Received>> {
        let FsSink { key, size, writer } = *self;
        async move {
            let received = match writer {
                None => FsReceived::Existing,
                Some((tx, thread)) => {
                    drop(tx);
                    FsReceived::Temp(thread.await.map_err(StoreError::join)??)
                }
            };
            Ok(Received::new(key, size, received))
        }
        .boxed()
    }
}

impl FsStore {
    /// A sink for a large body: a temp file written on a blocking thread, directly where the
    /// filesystem allows, and flushed when the body ends.
    pub(super) async fn sink(self: Arc<Self>, key: BlobKey) -> StoreResult<Box<dyn BlobSink>> {
        let temp = self
            .blocking(move |s| match s.blob_exists(key) {
                true => Ok(None),
                false => s.new_temp().map(Some),
            })
            .await?;
        let writer = temp.map(|(file, name)| {
            let (tx, mut rx) = mpsc::channel::<Piece>(WRITE_QUEUE);
            let store = Arc::clone(&self);
            let thread = tokio::task::spawn_blocking(move || -> StoreResult<TempBlob> {
                let mut out = LargeWriter::new(file, &store.chunks);
                while let Some(piece) = rx.blocking_recv() {
                    for frame in piece.iter() {
                        out.write(frame).map_err(|e| write_err(key, e))?;
                    }
                }
                let file = out.finish().map_err(|e| write_err(key, e))?;
                // Flushed already: a named file need not stay open.
                Ok(TempBlob::new(file, name, Handle::Close))
            });
            (tx, thread)
        });
        Ok(Box::new(FsSink {
            key,
            size: 0,
            writer,
        }))
    }

    /// A whole small body of one upload, left unflushed: its commit flushes it together with
    /// every other commit waiting at that moment.
    pub(super) async fn receive_one(
        self: &Arc<Self>,
        key: BlobKey,
        data: Bytes,
    ) -> StoreResult<Received> {
        if data.len() <= INLINE_MAX {
            // A write into the page cache: cheaper here than the two thread switches of
            // handing it to the blocking pool.
            return self.write_small(key, &data, Handle::KeepOpen);
        }
        self.blocking(move |s| s.write_small(key, &data, Handle::KeepOpen))
            .await
    }

    /// Many small bodies of a bulk upload, in one blocking step, their files closed (a pack
    /// stages thousands before committing them).
    pub(super) async fn receive_many(
        self: &Arc<Self>,
        items: Vec<(BlobKey, Bytes)>,
    ) -> BatchOutcome<Received> {
        let written = self
            .blocking(move |s| {
                let mut out = Vec::with_capacity(items.len());
                for (key, data) in &items {
                    match s.write_small(*key, data, Handle::Close) {
                        Ok(r) => out.push(r),
                        Err(e) => return Ok((out, Some(e))),
                    }
                }
                Ok((out, None))
            })
            .await;
        written.unwrap_or_else(|e| (Vec::new(), Some(e)))
    }

    /// Writes a body held in memory to a temp file unless the blob exists, leaving the data
    /// unflushed.
    pub(super) fn write_small(
        &self,
        key: BlobKey,
        data: &[u8],
        handle: Handle,
    ) -> StoreResult<Received> {
        let size = data.len() as u64;
        if self.blob_exists(key) {
            return Ok(Received::new(key, size, FsReceived::Existing));
        }
        let (mut file, name) = self.new_temp()?;
        // No writeback hint here: each would submit its own device write, while the batch's
        // flush writes them all together.
        file.write_all(data).map_err(|e| write_err(key, e))?;
        let temp = TempBlob::new(file, name, handle);
        // A file not kept open needs a name to be found again.
        let temp = match handle {
            Handle::KeepOpen => temp,
            Handle::Close => self.name_in_tmp(key, temp)?.without_handle(),
        };
        Ok(Received::new(key, size, FsReceived::Temp(temp)))
    }
}
