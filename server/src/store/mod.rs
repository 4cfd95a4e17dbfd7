//! Content-addressed blob storage. Blobs are named by (hash kind, object id) and shared by every
//! project; which project may see which blob is the index's business, not the store's.
//!
//! Writing is two-phase so callers can inspect an upload before it becomes visible: `stage` takes
//! the whole body, hashes it and refuses it unless the hash matches the name; `commit` then makes
//! it visible atomically. Dropping a `Staged` without committing discards it.

mod fs;

pub use fs::FsStore;

use std::io;
use std::time::SystemTime;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use lode_proto::{HashKind, ObjectId};

/// A stream of body bytes; errors are the client's (a broken connection, a body timeout).
pub type ByteStream = BoxStream<'static, Result<Bytes, io::Error>>;

/// The identity of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobKey {
    pub kind: HashKind,
    pub oid: ObjectId,
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.oid)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct BlobMeta {
    pub size: u64,
    pub modified: SystemTime,
}

/// An opened blob: its metadata now, its bytes on demand.
pub struct OpenBlob {
    pub meta: BlobMeta,
    pub(crate) body: OpenBody,
}

pub(crate) enum OpenBody {
    /// Small blobs are read whole when opened.
    Whole(Bytes),
    File(std::fs::File),
}

/// Read size when streaming large blobs.
const READ_BUF: usize = 1 << 20;
/// Reads a large blob's reader keeps ahead of the network.
const READ_QUEUE: usize = 4;
/// How far ahead of the reader the kernel is asked to fetch a large blob from the disk.
const READ_AHEAD: u64 = 16 << 20;

impl OpenBlob {
    /// The range as one buffer when the blob was small enough to be read whole.
    pub fn small_range(&self, offset: u64, len: u64) -> Option<Bytes> {
        match &self.body {
            OpenBody::Whole(b) => {
                let start = usize::try_from(offset).ok()?.min(b.len());
                let end = usize::try_from(offset.saturating_add(len))
                    .ok()?
                    .min(b.len());
                Some(b.slice(start..end))
            }
            OpenBody::File(_) => None,
        }
    }

    /// `len` bytes from `offset` (the caller keeps the range inside the blob).
    pub async fn range(self, offset: u64, len: u64) -> StoreResult<ByteStream> {
        use futures::StreamExt;
        match self.body {
            OpenBody::Whole(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let end = usize::try_from(offset.saturating_add(len))
                    .unwrap_or(usize::MAX)
                    .min(b.len());
                let part = b.slice(start..end);
                Ok(futures::stream::once(async move { Ok(part) }).boxed())
            }
            OpenBody::File(f) => {
                // One blocking thread reads for the whole transfer, rather than a trip to the
                // blocking pool per read, and keeps the disk busy ahead of it: a large blob
                // often is not in the page cache (large uploads are written around it), and
                // the kernel's own read-ahead is too shallow for a virtual disk's latency.
                // Its own thread, not one of the blocking pool's: a slow client keeps it for
                // the whole transfer, and must not starve uploads of pool threads.
                let (tx, rx) = tokio::sync::mpsc::channel(READ_QUEUE);
                std::thread::Builder::new()
                    .name("lode-read".into())
                    .spawn(move || read_range(f, offset, len, tx))
                    .map_err(|e| StoreError::io("starting a reader thread", e))?;
                Ok(receiver_stream(rx))
            }
        }
    }
}

fn receiver_stream(mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, io::Error>>) -> ByteStream {
    use futures::StreamExt;
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// Sends `len` bytes of `f` from `offset` in pieces, until done, an error, or the receiver
/// hangs up.
fn read_range(
    f: std::fs::File,
    offset: u64,
    len: u64,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let end = offset.saturating_add(len);
    let mut pos = offset;
    let mut fetched_to = offset;
    while pos < end {
        if fetched_to < end && fetched_to < pos + READ_AHEAD / 2 {
            let from = fetched_to.max(pos);
            let upto = (pos + READ_AHEAD).min(end);
            if let (Ok(a), Ok(n)) = (i64::try_from(from), i64::try_from(upto - from)) {
                // SAFETY: a hint on a descriptor `f` keeps open; errors only lose the hint.
                unsafe {
                    libc::posix_fadvise(f.as_raw_fd(), a, n, libc::POSIX_FADV_WILLNEED);
                }
            }
            fetched_to = upto;
        }
        let want = usize::try_from((end - pos).min(READ_BUF as u64)).unwrap_or(READ_BUF);
        let mut buf = bytes::BytesMut::zeroed(want);
        let got = loop {
            match f.read_at(&mut buf, pos) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let piece = match got {
            // The blob is shorter than the range asked for; the caller kept the range inside
            // the blob's size, so this is the end.
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                pos += n as u64;
                Ok(buf.freeze())
            }
            Err(e) => Err(e),
        };
        let failed = piece.is_err();
        if tx.blocking_send(piece).is_err() || failed {
            return;
        }
    }
}

/// A fully received upload whose hash matched, not yet visible.
pub struct Staged {
    pub key: BlobKey,
    pub size: u64,
    pub(crate) inner: StagedInner,
}

pub(crate) enum StagedInner {
    /// New bytes waiting in a temporary file, discarded if dropped.
    Temp(fs::TempBlob),
    /// The blob already existed; the body was hashed and matched, nothing was written.
    Existing,
}

/// A blob found on the backend by a listing.
#[derive(Debug, Clone)]
pub struct ListedBlob {
    pub kind: HashKind,
    /// The file name as found (may not be a valid object id).
    pub name: String,
    pub oid: Option<ObjectId>,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("content of {key} does not match its name: expected {kind} {expected}, the body hashes to {actual}", kind = key.kind)]
    HashMismatch {
        key: BlobKey,
        expected: String,
        actual: String,
    },
    #[error("upload of {0} is larger than the server's limit of {1} bytes")]
    TooLarge(BlobKey, u64),
    #[error("upload body ended with an error: {0}")]
    Body(io::Error),
    #[error("no space left on the server's disk while storing {0}")]
    NoSpace(BlobKey),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> StoreError {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

pub trait BlobStore: Send + Sync + 'static {
    /// Receives a body for `key`, verifying it hashes to the key's name.
    fn stage(&self, key: BlobKey, body: ByteStream) -> BoxFuture<'_, StoreResult<Staged>>;
    /// Reads a staged upload's bytes (blocking; call from a blocking thread).
    fn staged_reader(&self, staged: &Staged) -> StoreResult<Box<dyn io::Read + Send>>;
    /// Makes a staged upload visible under its key, atomically and durably.
    fn commit(&self, staged: Staged) -> BoxFuture<'_, StoreResult<()>>;
    /// `stage` then `commit`, for uploads nobody needs to inspect; returns the size.
    fn put(&self, key: BlobKey, body: ByteStream) -> BoxFuture<'_, StoreResult<u64>>;
    fn stat(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Option<BlobMeta>>>;
    /// Opens a blob for reading; `None` when it does not exist.
    fn open(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Option<OpenBlob>>>;
    /// Removes a blob; false if it was not there.
    fn delete(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<bool>>;
    /// Proves the backend is writable.
    fn check_ready(&self) -> BoxFuture<'_, StoreResult<()>>;
    /// Every blob of a kind (blocking; for fsck and garbage collection).
    fn list_blocking(&self, kind: HashKind) -> StoreResult<Vec<ListedBlob>>;
    /// Recomputes a blob's hash (blocking); `None` when it does not exist.
    fn hash_blocking(&self, key: BlobKey) -> StoreResult<Option<[u8; 16]>>;
    /// Moves a blob, or a listed stray file, out of the way for inspection (blocking).
    fn quarantine_blocking(&self, kind: HashKind, name: &str) -> StoreResult<bool>;
    /// Verifies a small body held in memory like [`BlobStore::stage`], but leaves the temp file
    /// unflushed: bulk uploads make a whole batch durable at once in
    /// [`BlobStore::commit_many_blocking`], since an fsync per tiny object would dominate.
    fn stage_small_blocking(&self, key: BlobKey, data: &[u8]) -> StoreResult<Staged>;
    /// Makes a batch of staged uploads durable with one flush, then visible in order (blocking).
    fn commit_many_blocking(&self, staged: Vec<Staged>) -> StoreResult<()>;
    /// A blob's bytes when it is at most `limit` long, else only its size; `None` when absent
    /// (blocking; for bulk downloads of small objects).
    fn read_small_blocking(&self, key: BlobKey, limit: u64) -> StoreResult<Option<SmallRead>>;
}

/// What [`BlobStore::read_small_blocking`] found.
pub enum SmallRead {
    Bytes(Bytes),
    TooLarge(u64),
}
