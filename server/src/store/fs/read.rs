//! Reading blobs back: small ones whole, on the spot when they are in the page cache; large
//! ones by a thread of their own that keeps the disk busy ahead of the network.

use std::fs::File;
use std::io::{self, Read};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::layout::meta_of;
use super::staging::FsReceived;
use super::FsStore;
use crate::store::{
    BlobKey, BlobMeta, BlobReader, ByteStream, OpenBlob, Received, SmallRead, StoreError,
    StoreResult,
};

/// Blobs up to this size are read whole when opened.
const SMALL_READ: u64 = 256 * 1024;
/// Read size when streaming large blobs.
const READ_BUF: usize = 1 << 20;
/// Reads a large blob's reader keeps ahead of the network.
const READ_QUEUE: usize = 4;
/// How far ahead of the reader the kernel is asked to fetch a large blob from the disk.
const READ_AHEAD: u64 = 16 << 20;

impl FsStore {
    /// Opens a blob: see [`crate::store::BlobStore::open`].
    pub(super) async fn open_blob(&self, key: BlobKey) -> StoreResult<Option<OpenBlob>> {
        // Opening a blob and reading a small one that is in the page cache take a few
        // microseconds: done here, saving two thread switches per request (DVC's existence
        // checks are GETs of mostly small objects). Only a read that would wait for the disk
        // goes to the blocking pool.
        let f = match File::open(self.blob_path(key)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_err(key, e)),
        };
        let meta = meta_of(&f.metadata().map_err(|e| read_err(key, e))?);
        open_file(key, f, meta).await.map(Some)
    }

    /// The bytes of a received upload, from the start.
    pub(super) fn open_staged(
        &self,
        received: &Received,
    ) -> StoreResult<BoxFuture<'static, StoreResult<ByteStream>>> {
        let key = received.key();
        let file = match received.handle::<FsReceived>()? {
            FsReceived::Temp(temp) => temp.reopen(),
            FsReceived::Existing => File::open(self.blob_path(key)),
        }
        .map_err(|e| read_err(key, e))?;
        let meta = BlobMeta {
            size: received.size(),
            modified: std::time::UNIX_EPOCH,
        };
        Ok(async move { open_file(key, file, meta).await?.range(0, meta.size) }.boxed())
    }

    /// A blob's bytes when it is at most `limit` long, else only its size; `None` when absent.
    pub(super) fn read_small_blocking(
        &self,
        key: BlobKey,
        limit: u64,
    ) -> StoreResult<Option<SmallRead>> {
        let mut f = match File::open(self.blob_path(key)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_err(key, e)),
        };
        let size = f.metadata().map_err(|e| read_err(key, e))?.len();
        if size > limit {
            return Ok(Some(SmallRead::TooLarge(size)));
        }
        let mut buf = Vec::with_capacity(size as usize);
        f.read_to_end(&mut buf).map_err(|e| read_err(key, e))?;
        Ok(Some(SmallRead::Bytes(Bytes::from(buf))))
    }
}

fn read_err(key: BlobKey, e: io::Error) -> StoreError {
    StoreError::io(format!("reading {key}"), e)
}

/// An open file as a blob: read whole when small, else by a reader thread when asked for.
async fn open_file(key: BlobKey, f: File, meta: BlobMeta) -> StoreResult<OpenBlob> {
    if meta.size > SMALL_READ {
        return Ok(OpenBlob::reader(meta, Box::new(FileReader(f))));
    }
    let bytes = match read_cached(&f, meta.size as usize).map_err(|e| read_err(key, e))? {
        Some(b) => b,
        None => tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(meta.size as usize);
            (&f).read_to_end(&mut buf).map(|_| buf)
        })
        .await
        .map_err(StoreError::join)?
        .map_err(|e| read_err(key, e))?,
    };
    Ok(OpenBlob::whole(meta, Bytes::from(bytes)))
}

/// Reads a whole small file if every byte is in the page cache; `None` when some would have to
/// come from the disk (the caller then reads it where blocking is allowed).
fn read_cached(f: &File, size: usize) -> io::Result<Option<Vec<u8>>> {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; size];
    let mut filled = 0;
    while filled < size {
        let iov = libc::iovec {
            iov_base: buf[filled..].as_mut_ptr().cast(),
            iov_len: size - filled,
        };
        let offset = i64::try_from(filled).map_err(io::Error::other)?;
        // SAFETY: `iov` points into `buf`, which outlives the call, with its true length.
        let n = unsafe { libc::preadv2(f.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                // Would block, or no RWF_NOWAIT here: the blocking read reports real errors.
                Some(libc::EAGAIN | libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => Ok(None),
                Some(libc::EINTR) => continue,
                _ => Err(e),
            };
        }
        if n == 0 {
            // Shorter than its size said a moment ago: what is there is the answer.
            buf.truncate(filled);
            break;
        }
        filled += n as usize;
    }
    Ok(Some(buf))
}

/// A large blob's open file.
struct FileReader(File);

impl BlobReader for FileReader {
    fn range(self: Box<Self>, offset: u64, len: u64) -> StoreResult<ByteStream> {
        // One thread reads for the whole transfer, rather than a trip to the blocking pool per
        // read, and keeps the disk busy ahead of it: a large blob often is not in the page
        // cache (large uploads are written around it), and the kernel's own read-ahead is too
        // shallow for a virtual disk's latency. Its own thread, not one of the blocking
        // pool's: a slow client keeps it for the whole transfer, and must not starve uploads
        // of pool threads.
        let (tx, mut rx) = tokio::sync::mpsc::channel(READ_QUEUE);
        let f = self.0;
        std::thread::Builder::new()
            .name("lode-read".into())
            .spawn(move || read_range(f, offset, len, tx))
            .map_err(|e| StoreError::io("starting a reader thread", e))?;
        Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
    }
}

/// Sends `len` bytes of `f` from `offset` in pieces, until done, an error, or the receiver
/// hangs up.
fn read_range(
    f: File,
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
