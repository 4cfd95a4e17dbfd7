//! Objects arriving from a remote: written to a temp file in the cache while hashed, checked
//! against their name, and only then committed (in batches, so many small objects cost one
//! filesystem flush rather than one fsync each). A body that does not match is deleted, so the
//! cache never holds a wrong or partial object.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use lode_proto::{HashKind, ObjectId};
use tokio::sync::{mpsc, Mutex};

use super::Fail;
use crate::cache::{Cache, Staged};
use crate::hash::{StreamHasher, CHUNK};

/// Objects committed to the cache at once.
const COMMIT_BATCH: usize = 8192;

fn cache_fail(e: impl std::fmt::Display) -> Fail {
    // A local disk problem stops everything: no other object would land either.
    Fail::Fatal(format!("cannot write to the cache: {e}"))
}

/// Large downloads start writing to disk every this many bytes, so the fsync before the object
/// is renamed into place has little left to do.
const WRITEBACK_STEP: u64 = 64 << 20;

fn start_writeback(f: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a hint on an open descriptor; failures only mean the final fsync does the work.
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Feeds a hasher whole [`CHUNK`]s, as the legacy rule requires, whatever the pieces' sizes.
struct ChunkedHasher {
    h: StreamHasher,
    kind: HashKind,
    pending: Vec<u8>,
}

impl ChunkedHasher {
    fn new(kind: HashKind) -> Self {
        ChunkedHasher {
            h: StreamHasher::new(kind),
            kind,
            pending: Vec::new(),
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        if self.kind == HashKind::Md5 {
            self.h.update(data);
            return;
        }
        while !data.is_empty() {
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                self.h.update(&self.pending);
                self.pending.clear();
            }
        }
    }

    fn finish(mut self) -> [u8; 16] {
        if !self.pending.is_empty() {
            self.h.update(&self.pending);
        }
        self.h.finish()
    }
}

/// Writes one object into the cache on a blocking thread while the network delivers the next
/// pieces, so hashing, writing and receiving overlap.
pub struct Lander {
    tx: Option<mpsc::Sender<Bytes>>,
    writer: tokio::task::JoinHandle<Result<Staged, Fail>>,
}

impl Lander {
    pub fn start(cache: Arc<Cache>, kind: HashKind, oid: ObjectId) -> Result<Lander, Fail> {
        let tmp = cache.temp_for(&oid, kind).map_err(cache_fail)?;
        let (tx, mut rx) = mpsc::channel::<Bytes>(8);
        let writer = tokio::task::spawn_blocking(move || {
            let (mut file, path) = tmp.into_parts();
            let mut h = ChunkedHasher::new(kind);
            let mut size = 0u64;
            let mut flushed = 0u64;
            while let Some(piece) = rx.blocking_recv() {
                h.update(&piece);
                file.write_all(&piece).map_err(cache_fail)?;
                size += piece.len() as u64;
                if size - flushed >= WRITEBACK_STEP {
                    start_writeback(&file, flushed, size - flushed);
                    flushed = size;
                }
            }
            let got = h.finish();
            if &got != oid.digest() {
                return Err(Fail::Object(format!(
                    "downloaded content hashes to {} ({kind}), not to its name; nothing was kept",
                    hex::encode(got)
                )));
            }
            drop(file);
            Staged::received(oid, kind, size, path).map_err(cache_fail)
        });
        Ok(Lander {
            tx: Some(tx),
            writer,
        })
    }

    pub async fn push(&mut self, piece: Bytes) -> Result<(), Fail> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        if tx.send(piece).await.is_err() {
            // The writer stopped on an error; `finish` reports it.
            self.tx = None;
        }
        Ok(())
    }

    pub async fn finish(mut self) -> Result<Staged, Fail> {
        self.tx = None;
        self.writer
            .await
            .map_err(|e| Fail::Fatal(format!("cache writer failed: {e}")))?
    }
}

/// Verifies an object held in memory and stages it (blocking).
pub fn stage_bytes(
    cache: &Cache,
    kind: HashKind,
    oid: ObjectId,
    bytes: &[u8],
) -> Result<Staged, Fail> {
    super::verify_bytes(kind, &oid, bytes)
        .map_err(|m| Fail::Object(format!("{m}; nothing was kept")))?;
    cache.stage_bytes(oid, kind, bytes).map_err(cache_fail)
}

/// Collects staged objects from concurrent downloads and commits them in batches.
#[derive(Clone)]
pub struct Committer {
    cache: Arc<Cache>,
    pending: Arc<Mutex<Vec<Staged>>>,
}

impl Committer {
    pub fn new(cache: Arc<Cache>) -> Committer {
        Committer {
            cache,
            pending: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub async fn add(&self, staged: Staged) -> Result<(), Fail> {
        self.add_many(vec![staged]).await
    }

    pub async fn add_many(&self, staged: Vec<Staged>) -> Result<(), Fail> {
        let batch = {
            let mut p = self.pending.lock().await;
            p.extend(staged);
            if p.len() < COMMIT_BATCH {
                return Ok(());
            }
            std::mem::take(&mut *p)
        };
        self.commit(batch).await
    }

    async fn commit(&self, batch: Vec<Staged>) -> Result<(), Fail> {
        let cache = self.cache.clone();
        tokio::task::spawn_blocking(move || cache.commit(batch))
            .await
            .map_err(|e| Fail::Fatal(format!("cache writer failed: {e}")))?
            .map_err(cache_fail)
    }

    /// Commits whatever is left.
    pub async fn finish(&self) -> Result<(), String> {
        let batch = std::mem::take(&mut *self.pending.lock().await);
        match self.commit(batch).await {
            Ok(()) => Ok(()),
            Err(Fail::Fatal(m)) | Err(Fail::Object(m)) => Err(m),
            Err(Fail::Absent) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_legacy_hash_matches_whole() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 77))
            .map(|i| if i % 10 == 9 { b'\n' } else { b'a' })
            .collect();
        let mut whole = StreamHasher::new(HashKind::Md5Dos2unix);
        for c in data.chunks(CHUNK) {
            whole.update(c);
        }
        let mut pieces = ChunkedHasher::new(HashKind::Md5Dos2unix);
        for c in data.chunks(4093) {
            pieces.update(c);
        }
        assert_eq!(whole.finish(), pieces.finish());
    }
}
