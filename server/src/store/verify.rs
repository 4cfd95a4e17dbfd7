//! Hash verification, the same for every backend: a body is hashed while the backend receives
//! it, and what it received becomes a [`Staged`] upload, the only thing a commit takes, only
//! when the body hashed to the key's name and stayed within the store's size limit. A refused
//! body's bytes are dropped with the backend's handle, so nothing of it becomes visible.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use lode_proto::HashKind;
use tokio::sync::mpsc;

use super::{
    BatchOutcome, BlobKey, BlobStore, ByteStream, Piece, Received, StoreError, StoreResult,
};
use lode_objio::hash::{digest_of, StreamHasher};

/// Bodies up to this size are hashed in one step; larger ones while they arrive, in pieces of
/// this size, so memory per upload stays bounded whatever the object size.
pub(crate) const PIECE: usize = 256 * 1024;
/// Pieces queued between the network and the hasher of one upload: enough that the hasher,
/// the slowest stage, still has work when the network task waits for a core.
const QUEUE: usize = 16;
/// Bodies up to this size are hashed on the task that received them (about 100 us of MD5 at
/// most); larger ones on a blocking thread.
const HASH_INLINE_MAX: usize = 64 * 1024;

/// A received upload whose body hashed to its key's name; only this module makes one.
pub struct Staged(Received);

impl Staged {
    pub fn key(&self) -> BlobKey {
        self.0.key()
    }

    pub fn size(&self) -> u64 {
        self.0.size()
    }

    /// What the backend received, for the backend's commit.
    pub fn into_received(self) -> Received {
        self.0
    }

    pub fn received(&self) -> &Received {
        &self.0
    }
}

/// Refuses `actual` unless it is the digest `key` names.
pub(crate) fn check_digest(key: BlobKey, actual: [u8; 16]) -> StoreResult<()> {
    if &actual == key.oid.digest() {
        Ok(())
    } else {
        Err(StoreError::HashMismatch {
            key,
            expected: key.oid.hex(),
            actual: hex::encode(actual),
        })
    }
}

/// See [`BlobStore::stage`].
pub(super) async fn stage<S: BlobStore + ?Sized>(
    store: &S,
    key: BlobKey,
    mut body: ByteStream,
) -> StoreResult<Staged> {
    let max = store.max_object_size();
    let mut first = BytesMut::new();
    let mut total: u64 = 0;
    let mut ended = false;
    while first.len() < PIECE {
        match body.next().await {
            Some(chunk) => {
                let chunk = chunk.map_err(StoreError::Body)?;
                total += chunk.len() as u64;
                if total > max {
                    return Err(StoreError::TooLarge(key, max));
                }
                first.extend_from_slice(&chunk);
            }
            None => {
                ended = true;
                break;
            }
        }
    }
    if ended {
        return stage_whole(store, key, first.freeze()).await;
    }

    // Large body: a blocking thread hashes while the backend writes and the network fills the
    // next pieces. The bounded queues are what keep memory flat for any object size.
    let mut sink = store.receive(key).await?;
    let (htx, mut hrx) = mpsc::channel::<Piece>(QUEUE);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut h = StreamHasher::new(key.kind);
        while let Some(piece) = hrx.blocking_recv() {
            for frame in piece.iter() {
                h.update(frame);
            }
        }
        h.finish()
    });
    let mut piece = vec![first.freeze()];
    let mut piece_len: usize = piece[0].len();
    let mut stopped = None;
    let received: StoreResult<()> = async {
        loop {
            if piece_len >= PIECE || (piece_len > 0 && ended) {
                piece_len = 0;
                let piece: Piece = std::sync::Arc::new(std::mem::take(&mut piece));
                // A failed send means a worker stopped early; its own error is reported below.
                let hashed = htx.send(piece.clone()).await.is_ok();
                if let Err(e) = sink.write(piece).await {
                    stopped = Some(e);
                }
                if !hashed || stopped.is_some() {
                    return Ok(());
                }
            }
            if ended {
                return Ok(());
            }
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(StoreError::Body)?;
                    total += chunk.len() as u64;
                    if total > max {
                        return Err(StoreError::TooLarge(key, max));
                    }
                    piece_len += chunk.len();
                    piece.push(chunk);
                }
                None => ended = true,
            }
        }
    }
    .await;
    drop(htx);
    let digest = hasher.await.map_err(StoreError::join);
    let written = sink.finish().await;
    // A body error wins over whatever the workers saw: the upload is incomplete either way, and
    // the backend's bytes are discarded when `written` is dropped.
    received?;
    let written = match (written, stopped) {
        (Err(e), _) | (Ok(_), Some(e)) => return Err(e),
        (Ok(w), None) => w,
    };
    check_digest(key, digest?)?;
    Ok(Staged(written))
}

/// A body that arrived whole in the first piece: small ones are hashed right here (cheaper
/// than two thread switches), larger ones on a blocking thread while the backend writes them.
async fn stage_whole<S: BlobStore + ?Sized>(
    store: &S,
    key: BlobKey,
    data: Bytes,
) -> StoreResult<Staged> {
    if data.len() <= HASH_INLINE_MAX {
        check_digest(key, digest_of(key.kind, &data))?;
        return store.receive_bytes(key, data).await.map(Staged);
    }
    let hashed = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || digest_of(key.kind, &data))
    };
    let (digest, received) = futures::join!(hashed, store.receive_bytes(key, data));
    check_digest(key, digest.map_err(StoreError::join)?)?;
    received.map(Staged)
}

/// See [`BlobStore::stage_batch`].
pub(super) async fn stage_batch<S: BlobStore + ?Sized>(
    store: &S,
    items: Vec<(BlobKey, Bytes)>,
) -> BatchOutcome<Staged> {
    let max = store.max_object_size();
    let checked = tokio::task::spawn_blocking(move || {
        let mut ok = Vec::with_capacity(items.len());
        for (key, data) in items {
            if data.len() as u64 > max {
                return (ok, Some(StoreError::TooLarge(key, max)));
            }
            if let Err(e) = check_digest(key, digest_of(key.kind, &data)) {
                return (ok, Some(e));
            }
            ok.push((key, data));
        }
        (ok, None)
    })
    .await;
    let (items, refused) = match checked {
        Ok(c) => c,
        Err(e) => return (Vec::new(), Some(StoreError::join(e))),
    };
    let (received, failed) = store.receive_batch(items).await;
    // Only bodies before the refused one were received, so a failure among them came first.
    (
        received.into_iter().map(Staged).collect(),
        failed.or(refused),
    )
}

/// Hashes a stream of bytes with the rule of `kind` on a blocking thread.
pub async fn digest_stream(kind: HashKind, mut stream: ByteStream) -> StoreResult<[u8; 16]> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut h = StreamHasher::new(kind);
        while let Some(b) = rx.blocking_recv() {
            h.update(&b);
        }
        h.finish()
    });
    let mut read = Ok(());
    while let Some(b) = stream.next().await {
        match b {
            Ok(b) => {
                if tx.send(b).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                read = Err(StoreError::io("reading a blob", e));
                break;
            }
        }
    }
    drop(tx);
    let digest = hasher.await.map_err(StoreError::join)?;
    read.map(|()| digest)
}

/// Recomputes a stored blob's hash; `None` when it does not exist.
pub async fn blob_digest<S: BlobStore + ?Sized>(
    store: &S,
    key: BlobKey,
) -> StoreResult<Option<[u8; 16]>> {
    let Some(blob) = store.open(key).await? else {
        return Ok(None);
    };
    let size = blob.meta.size;
    digest_stream(key.kind, blob.range(0, size)?)
        .await
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fs::tests::{body, key, tmp_files};
    use crate::store::{FsMaintenance, FsStore};

    /// Sizes on each of the layer's paths: hashed inline, hashed beside the backend's write,
    /// and hashed piece by piece while the body streams.
    const SIZES: [usize; 4] = [0, 1000, HASH_INLINE_MAX + 1, 3 * PIECE + 5];

    fn data(size: usize, seed: u8) -> Vec<u8> {
        (0..size).map(|i| (i % 253) as u8 ^ seed).collect()
    }

    #[tokio::test]
    async fn a_body_that_does_not_hash_to_its_name_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path(), u64::MAX).unwrap();
        for size in SIZES {
            let named = key(HashKind::Md5, &data(size, 1));
            let other = data(size + 1, 2);
            match store.stage(named, body(other, 4096)).await {
                Err(StoreError::HashMismatch { key, .. }) => assert_eq!(key, named),
                other => panic!(
                    "{size}: expected a mismatch, got {:?}",
                    other.map(|s| s.size())
                ),
            }
            assert!(!store.blob_path(named).exists(), "{size}");
            assert_eq!(tmp_files(&dir), 0, "{size}");
        }
    }

    #[tokio::test]
    async fn an_existing_blob_still_needs_a_matching_body() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path(), u64::MAX).unwrap();
        for size in SIZES {
            let bytes = data(size, 3);
            let k = key(HashKind::Md5, &bytes);
            store.put(k, body(bytes.clone(), 7000)).await.unwrap();
            let wrong = data(size + 3, 4);
            assert!(matches!(
                store.stage(k, body(wrong, 7000)).await,
                Err(StoreError::HashMismatch { .. })
            ));
            assert_eq!(
                store.put(k, body(bytes.clone(), 7000)).await.unwrap(),
                size as u64
            );
            assert_eq!(std::fs::read(store.blob_path(k)).unwrap(), bytes);
            assert_eq!(tmp_files(&dir), 0);
        }
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_while_they_stream() {
        let dir = tempfile::tempdir().unwrap();
        let limit = (2 * PIECE) as u64;
        let store = FsStore::open(dir.path(), limit).unwrap();
        for size in [limit as usize + 1, 4 * PIECE] {
            let bytes = data(size, 5);
            let k = key(HashKind::Md5, &bytes);
            assert!(matches!(
                store.stage(k, body(bytes, 10_000)).await,
                Err(StoreError::TooLarge(_, l)) if l == limit
            ));
            assert!(!store.blob_path(k).exists());
            assert_eq!(tmp_files(&dir), 0);
        }
        let exact = data(limit as usize, 6);
        let k = key(HashKind::Md5, &exact);
        assert_eq!(store.put(k, body(exact, 10_000)).await.unwrap(), limit);
    }

    #[tokio::test]
    async fn legacy_bodies_are_checked_with_their_own_rule() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path(), u64::MAX).unwrap();
        let text = b"a,b\r\n1,2\r\n".repeat(40_000);
        let legacy = key(HashKind::Md5Dos2unix, &text);
        let raw = BlobKey {
            kind: HashKind::Md5Dos2unix,
            oid: key(HashKind::Md5, &text).oid,
        };
        assert!(matches!(
            store.stage(raw, body(text.clone(), 5000)).await,
            Err(StoreError::HashMismatch { .. })
        ));
        store.put(legacy, body(text.clone(), 5000)).await.unwrap();
        assert_eq!(std::fs::read(store.blob_path(legacy)).unwrap(), text);
    }

    #[tokio::test]
    async fn a_batch_keeps_what_came_before_its_first_bad_body() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path(), u64::MAX).unwrap();
        let good: Vec<Vec<u8>> = (0..3).map(|i| data(100 + i, 7)).collect();
        let keys: Vec<BlobKey> = good.iter().map(|d| key(HashKind::Md5, d)).collect();
        let items = vec![
            (keys[0], Bytes::from(good[0].clone())),
            (keys[1], Bytes::from(good[1].clone())),
            (keys[2], Bytes::from(b"not what the name says".to_vec())),
            (key(HashKind::Md5, b"after"), Bytes::from_static(b"after")),
        ];
        let (staged, failed) = store.stage_batch(items).await;
        assert!(matches!(failed, Some(StoreError::HashMismatch { key, .. }) if key == keys[2]));
        assert_eq!(
            staged.iter().map(Staged::key).collect::<Vec<_>>(),
            keys[..2].to_vec()
        );
        store.commit_many(staged).await.unwrap();
        for (k, d) in keys.iter().zip(&good).take(2) {
            assert_eq!(&std::fs::read(store.blob_path(*k)).unwrap(), d);
        }
        assert!(!store.blob_path(keys[2]).exists());
        assert!(!store.blob_path(key(HashKind::Md5, b"after")).exists());
        assert_eq!(tmp_files(&dir), 0);
    }

    #[tokio::test]
    async fn a_stored_blob_is_hashed_again_from_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path(), u64::MAX).unwrap();
        let bytes = data(3 * PIECE, 8);
        let k = key(HashKind::Md5, &bytes);
        store.put(k, body(bytes, 65536)).await.unwrap();
        assert_eq!(blob_digest(&store, k).await.unwrap(), Some(*k.oid.digest()));
        let path = store.blob_path(k);
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        std::fs::write(&path, b"changed behind the server's back").unwrap();
        let again = blob_digest(&store, k).await.unwrap().unwrap();
        assert_eq!(
            again,
            digest_of(HashKind::Md5, b"changed behind the server's back")
        );
        assert_eq!(
            blob_digest(&store, key(HashKind::Md5, b"absent"))
                .await
                .unwrap(),
            None
        );
    }
}
