//! Content-addressed blob storage. Blobs are named by (hash kind, object id) and shared by every
//! project; which project may see which blob is the index's business, not the store's.
//!
//! Writing is two-phase so callers can inspect an upload before it becomes visible: `stage` takes
//! the whole body and refuses it unless it hashes to the key's name (see [`verify`], the same for
//! every backend); `commit` then makes it visible atomically. Dropping a [`Staged`] without
//! committing discards it. A backend only receives bytes ([`BlobStore::receive`] and the like)
//! into handles of its own (a temp file, a multipart upload) and puts them in place on commit.

mod fs;
pub mod s3;
pub mod verify;

pub use fs::FsStore;
pub use verify::Staged;

use std::any::Any;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::FutureExt;
use lode_proto::{HashKind, ObjectId};

/// A stream of body bytes; errors are the client's (a broken connection, a body timeout).
pub type ByteStream = BoxStream<'static, Result<Bytes, io::Error>>;

/// Part of a body on its way into a store: the frames as received, shared by the hasher and the
/// backend's writer without copying.
pub type Piece = Arc<Vec<Bytes>>;

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
    body: OpenBody,
}

enum OpenBody {
    /// Small blobs are read whole when opened.
    Whole(Bytes),
    /// Larger ones are read by the backend when asked for.
    Reader(Box<dyn BlobReader>),
}

/// How a backend reads a large blob it opened.
pub trait BlobReader: Send {
    /// `len` bytes from `offset` (the caller keeps the range inside the blob).
    fn range(self: Box<Self>, offset: u64, len: u64) -> StoreResult<ByteStream>;
}

impl OpenBlob {
    /// A blob read whole when it was opened.
    pub fn whole(meta: BlobMeta, bytes: Bytes) -> OpenBlob {
        OpenBlob {
            meta,
            body: OpenBody::Whole(bytes),
        }
    }

    /// A blob the backend reads on demand.
    pub fn reader(meta: BlobMeta, reader: Box<dyn BlobReader>) -> OpenBlob {
        OpenBlob {
            meta,
            body: OpenBody::Reader(reader),
        }
    }

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
            OpenBody::Reader(_) => None,
        }
    }

    /// `len` bytes from `offset` (the caller keeps the range inside the blob).
    pub fn range(self, offset: u64, len: u64) -> StoreResult<ByteStream> {
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
            OpenBody::Reader(r) => r.range(offset, len),
        }
    }
}

/// Bytes a backend received for a key, not yet checked against its name. The handle is the
/// backend's own; dropping it discards the bytes.
pub struct Received {
    key: BlobKey,
    size: u64,
    handle: Box<dyn Any + Send + Sync>,
}

impl Received {
    pub fn new(key: BlobKey, size: u64, handle: impl Any + Send + Sync) -> Received {
        Received {
            key,
            size,
            handle: Box::new(handle),
        }
    }

    pub fn key(&self) -> BlobKey {
        self.key
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The backend's handle, when it is of type `T`.
    pub fn handle<T: Any>(&self) -> StoreResult<&T> {
        self.handle.downcast_ref().ok_or_else(|| foreign(self.key))
    }

    /// The key, the size and the backend's handle, when it is of type `T`.
    pub fn into_handle<T: Any>(self) -> StoreResult<(BlobKey, u64, T)> {
        let (key, size) = (self.key, self.size);
        match self.handle.downcast::<T>() {
            Ok(h) => Ok((key, size, *h)),
            Err(_) => Err(foreign(key)),
        }
    }
}

fn foreign(key: BlobKey) -> StoreError {
    StoreError::io(
        format!("committing {key}"),
        io::Error::other("the upload was received by another store"),
    )
}

/// Where a backend receives one new blob's bytes, piece by piece.
pub trait BlobSink: Send {
    /// Takes the next piece. An error means the sink stopped taking bytes; [`BlobSink::finish`]
    /// then tells why.
    fn write(&mut self, piece: Piece) -> BoxFuture<'_, StoreResult<()>>;
    /// Every byte was given: what was received.
    fn finish(self: Box<Self>) -> BoxFuture<'static, StoreResult<Received>>;
}

/// A blob found on the backend by a listing.
#[derive(Debug, Clone)]
pub struct ListedBlob {
    pub kind: HashKind,
    /// The name as found (may not be a valid object id).
    pub name: String,
    pub oid: Option<ObjectId>,
    pub size: u64,
}

/// What [`BlobStore::read_small`] found of one blob.
pub enum SmallRead {
    Bytes(Bytes),
    TooLarge(u64),
}

/// What [`BlobStore::read_small`] found, in the keys' order; `None` where a blob is absent.
pub type SmallReads = Vec<StoreResult<Option<SmallRead>>>;

/// Received bodies in order up to the first failure, and that failure.
pub type BatchOutcome<T> = (Vec<T>, Option<StoreError>);

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
    /// The store did not answer (unreachable, timing out, refusing our credentials): the
    /// request may succeed later.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
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

    pub(crate) fn join(e: tokio::task::JoinError) -> StoreError {
        StoreError::io("blocking task failed", io::Error::other(e.to_string()))
    }

    /// The reason label of a refused upload, for `lode_upload_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::HashMismatch { .. } => "hash_mismatch",
            StoreError::TooLarge(..) => "too_large",
            StoreError::Body(_) => "incomplete_body",
            StoreError::NoSpace(_) => "no_space",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Io { .. } => "io",
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A blob backend. Every data-path method is async: a backend that blocks (the filesystem one)
/// moves that work to threads of its own choosing. The verified writes (`stage`, `stage_batch`,
/// `put`) are provided, the same for every backend.
pub trait BlobStore: Send + Sync + 'static {
    /// The largest object the store takes, in bytes.
    fn max_object_size(&self) -> u64;
    /// Starts receiving a new blob's bytes. They are not checked here: use [`BlobStore::stage`].
    fn receive(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Box<dyn BlobSink>>>;
    /// Receives a whole body held in memory, to be committed on its own.
    fn receive_bytes(&self, key: BlobKey, data: Bytes) -> BoxFuture<'_, StoreResult<Received>>;
    /// Receives many small bodies held in memory, to be committed together by
    /// [`BlobStore::commit_many`]; stops at the first failure.
    fn receive_batch(&self, items: Vec<(BlobKey, Bytes)>) -> BoxFuture<'_, BatchOutcome<Received>>;
    /// A staged upload's bytes from the start (a `.dir` manifest is read before its commit).
    fn read_staged(&self, staged: &Staged) -> BoxFuture<'_, StoreResult<ByteStream>>;
    /// Makes a staged upload visible under its key, atomically and durably.
    fn commit(&self, staged: Staged) -> BoxFuture<'_, StoreResult<()>>;
    /// Makes staged uploads visible, made durable together rather than one by one.
    fn commit_many(&self, staged: Vec<Staged>) -> BoxFuture<'_, StoreResult<()>>;
    fn stat(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Option<BlobMeta>>>;
    /// Opens a blob for reading; `None` when it does not exist.
    fn open(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Option<OpenBlob>>>;
    /// Blobs' bytes when at most `limit` long, else only their size (bulk downloads of small
    /// objects).
    fn read_small(&self, keys: Vec<BlobKey>, limit: u64) -> BoxFuture<'_, StoreResult<SmallReads>>;
    /// Removes a blob; false if it was not there.
    fn delete(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<bool>>;
    /// Proves the backend is writable.
    fn check_ready(&self) -> BoxFuture<'_, StoreResult<()>>;
    /// Every blob of a kind (for fsck and garbage collection).
    fn list(&self, kind: HashKind) -> BoxFuture<'_, StoreResult<Vec<ListedBlob>>>;

    /// Receives a body for `key`, refusing it unless it hashes to the key's name.
    fn stage(&self, key: BlobKey, body: ByteStream) -> BoxFuture<'_, StoreResult<Staged>> {
        verify::stage(self, key, body).boxed()
    }

    /// Checks and receives small bodies held in memory, for one [`BlobStore::commit_many`]:
    /// those before the first refused or failed one, and that failure.
    fn stage_batch(&self, items: Vec<(BlobKey, Bytes)>) -> BoxFuture<'_, BatchOutcome<Staged>> {
        verify::stage_batch(self, items).boxed()
    }

    /// A URL from which a client may GET the blob's bytes itself until `expires` has passed;
    /// `None` when the backend has no such URLs.
    fn presigned_get(
        &self,
        _key: BlobKey,
        _expires: std::time::Duration,
    ) -> BoxFuture<'_, StoreResult<Option<String>>> {
        async { Ok(None) }.boxed()
    }

    /// `stage` then `commit`, for uploads nobody needs to inspect; returns the size.
    fn put(&self, key: BlobKey, body: ByteStream) -> BoxFuture<'_, StoreResult<u64>> {
        async move {
            let staged = self.stage(key, body).await?;
            let size = staged.size();
            self.commit(staged).await?;
            Ok(size)
        }
        .boxed()
    }
}

/// Upkeep every backend offers, for start-up, `fsck` and garbage collection.
pub trait Upkeep: Send + Sync {
    /// Uploads a crash may have left unfinished (temp files, multipart uploads); how many.
    fn unfinished(&self) -> BoxFuture<'_, StoreResult<usize>>;
    /// Removes unfinished uploads that no server can still be writing; how many.
    fn clean_unfinished(&self) -> BoxFuture<'_, StoreResult<usize>>;
    /// Moves a blob, or a listed stray, out of the way for inspection; false when it was not
    /// there.
    fn quarantine(&self, kind: HashKind, name: &str) -> BoxFuture<'_, StoreResult<bool>>;
}

/// Upkeep of the filesystem store: its paths, the unfinished uploads a crash leaves in `tmp/`,
/// and `quarantine/`. Blocking; for start-up and `fsck`, while no server uses the data folder.
pub trait FsMaintenance {
    /// Where a blob's file is (whether or not it exists).
    fn blob_path(&self, key: BlobKey) -> PathBuf;
    /// The folder of uploads in flight.
    fn tmp_dir(&self) -> &Path;
    /// Deletes uploads left behind by a crash; how many. Only safe when no server is running
    /// on this data folder (the caller holds the data folder lock).
    fn clean_tmp(&self) -> StoreResult<usize>;
    /// Moves a blob, or a listed stray file, out of the way for inspection; false when it was
    /// not there.
    fn quarantine(&self, kind: HashKind, name: &str) -> StoreResult<bool>;
}
