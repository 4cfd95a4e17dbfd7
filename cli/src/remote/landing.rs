//! Objects arriving from a remote: written to a temp file in the cache while hashed, checked
//! against their name, and only then committed (in batches, so many small objects cost one
//! filesystem flush rather than one fsync each). A body that does not match is deleted, so the
//! cache never holds a wrong or partial object.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use lode_proto::{HashKind, ObjectId};
use tokio::sync::{mpsc, Mutex};

use super::Fail;
use crate::cache::{copy_hashing, Cache, Staged};

/// Objects committed to the cache at once.
const COMMIT_BATCH: usize = 8192;

fn cache_fail(e: impl std::fmt::Display) -> Fail {
    // A local disk problem stops everything: no other object would land either.
    Fail::Fatal(format!("cannot write to the cache: {e}"))
}

/// The pieces of a body arriving from the network, read as one stream on a blocking thread.
struct Pieces {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl std::io::Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(piece) => self.current = piece,
                // The sender is gone: the body ended (or broke, which the hash then shows).
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
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
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let writer = tokio::task::spawn_blocking(move || {
            let (file, path) = tmp.into_parts();
            let mut pieces = Pieces {
                rx,
                current: Bytes::new(),
            };
            let (got, size) = copy_hashing(&mut pieces, &file, kind).map_err(cache_fail)?;
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
    use crate::cache::{LinkType, Sharing};
    use crate::hash::{StreamHasher, CHUNK};

    /// CRLF text spanning several hash chunks, named by the legacy hash of whole chunks.
    fn legacy_body() -> (Vec<u8>, ObjectId) {
        let data: Vec<u8> = (0..(CHUNK * 2 + 77))
            .map(|i| match i % 10 {
                8 => b'\r',
                9 => b'\n',
                _ => b'a',
            })
            .collect();
        let mut h = StreamHasher::new(HashKind::Md5Dos2unix);
        for c in data.chunks(CHUNK) {
            h.update(c);
        }
        (data, ObjectId::from_digest(h.finish(), false))
    }

    async fn land(cache: &Arc<Cache>, oid: ObjectId, data: &[u8]) -> Result<Staged, Fail> {
        let mut lander = Lander::start(cache.clone(), HashKind::Md5Dos2unix, oid)?;
        // Pieces that never line up with the hash chunks.
        for piece in data.chunks(4093) {
            lander.push(Bytes::copy_from_slice(piece)).await?;
        }
        lander.finish().await
    }

    fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .collect()
    }

    #[tokio::test]
    async fn legacy_body_in_odd_pieces_lands_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(Cache::new(
            dir.path().into(),
            vec![LinkType::Copy],
            Sharing::Private,
        ));
        let (data, oid) = legacy_body();
        let staged = land(&cache, oid, &data).await.unwrap();
        assert_eq!(staged.size, data.len() as u64);
        cache.commit(vec![staged]).unwrap();
        let stored = std::fs::read(cache.object_path(&oid, HashKind::Md5Dos2unix)).unwrap();
        assert!(stored == data);
    }

    #[tokio::test]
    async fn body_not_matching_its_name_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(Cache::new(
            dir.path().into(),
            vec![LinkType::Copy],
            Sharing::Private,
        ));
        let (mut data, oid) = legacy_body();
        data[CHUNK + 3] = b'b';
        match land(&cache, oid, &data).await {
            Err(Fail::Object(m)) => assert!(m.contains("not to its name"), "{m}"),
            Err(_) => panic!("expected an object failure"),
            Ok(_) => panic!("a corrupted body was accepted"),
        }
        assert_eq!(files_under(dir.path()), Vec::<std::path::PathBuf>::new());
    }
}
