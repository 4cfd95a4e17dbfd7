//! Tests of the filesystem store through the neutral trait, and of its commit rounds.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use lode_proto::{HashKind, ObjectId};

use super::direct::DIRECT_CHUNK;
use super::durability::SyncChoice;
use super::group_commit::NewTemp;
use super::staging::FsReceived;
use super::temp::Handle;
use super::FsStore;
use crate::store::verify::{blob_digest, PIECE};
use crate::store::{BlobKey, BlobStore, ByteStream, StoreError};
use lode_objio::direct::ALIGN as DIRECT_ALIGN;
use lode_objio::hash::digest_of;

pub(crate) fn key(kind: HashKind, data: &[u8]) -> BlobKey {
    BlobKey {
        kind,
        oid: ObjectId::from_digest(digest_of(kind, data), false),
    }
}

pub(crate) fn body(data: Vec<u8>, piece: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, io::Error>> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

pub(crate) async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut got = Vec::new();
    while let Some(piece) = stream.next().await {
        got.extend_from_slice(&piece.unwrap());
    }
    got
}

pub(crate) fn tmp_files(dir: &tempfile::TempDir) -> usize {
    std::fs::read_dir(dir.path().join("tmp")).unwrap().count()
}

#[tokio::test]
async fn stores_small_and_large_and_rejects_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), u64::MAX).unwrap();
    for size in [
        0usize,
        10,
        PIECE - 1,
        PIECE,
        3 * PIECE + 17,
        2 * DIRECT_CHUNK + DIRECT_ALIGN + 1,
    ] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let k = key(HashKind::Md5, &data);
        let staged = store.stage(k, body(data.clone(), 65536)).await.unwrap();
        assert_eq!(staged.size(), size as u64);
        store.commit(staged).await.unwrap();
        assert_eq!(std::fs::read(store.blob_path(k)).unwrap(), data);
        assert_eq!(blob_digest(&store, k).await.unwrap(), Some(*k.oid.digest()));
        // Whole and in part, through the path downloads take.
        for (offset, len) in [(0, size), (size / 3, size / 2)] {
            let blob = store.open(k).await.unwrap().unwrap();
            assert_eq!(blob.meta.size, size as u64);
            let got = collect(blob.range(offset as u64, len as u64).unwrap()).await;
            assert_eq!(
                got,
                &data[offset..offset + len],
                "{size} bytes from {offset}"
            );
        }
    }
    let k = key(HashKind::Md5, b"other");
    match store.stage(k, body(b"bytes".to_vec(), 2)).await {
        Err(StoreError::HashMismatch { .. }) => {}
        other => panic!("expected mismatch, got {:?}", other.map(|s| s.size())),
    }
    let big: Vec<u8> = vec![7u8; 2 * PIECE + 5];
    assert!(store.stage(k, body(big, 100_000)).await.is_err());
    assert_eq!(tmp_files(&dir), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_are_committed_in_groups() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), u64::MAX).unwrap();
    // 200 uploads of 100 distinct objects at once: groups see the same blob twice and
    // blobs that an earlier group has just placed.
    let tasks: Vec<_> = (0..200u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let data = format!("object {}", i % 100).into_bytes();
                let k = key(HashKind::Md5, &data);
                let size = store.put(k, body(data.clone(), 3)).await.unwrap();
                assert_eq!(size, data.len() as u64);
                (k, data)
            })
        })
        .collect();
    for t in tasks {
        let (k, data) = t.await.unwrap();
        assert_eq!(std::fs::read(store.blob_path(k)).unwrap(), data);
    }
    assert_eq!(tmp_files(&dir), 0);
}

/// Many large uploads at once share the store's few aligned chunks: those without one write
/// through the page cache, every blob lands with its bytes, and every chunk comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_large_uploads_share_the_chunk_pool() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), u64::MAX).unwrap();
    let tasks: Vec<_> = (0..32u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let size = DIRECT_CHUNK + DIRECT_ALIGN * (i as usize) + 7;
                let data: Vec<u8> = (0..size).map(|j| (j as u32 ^ i) as u8).collect();
                let k = key(HashKind::Md5, &data);
                store.put(k, body(data.clone(), PIECE / 2)).await.unwrap();
                (k, data)
            })
        })
        .collect();
    for t in tasks {
        let (k, data) = t.await.unwrap();
        assert_eq!(std::fs::read(store.blob_path(k)).unwrap(), data);
    }
    assert_eq!(store.chunks.lent(), 0);
    // A refused upload gives its chunk back too.
    let data = vec![3u8; 2 * PIECE];
    let wrong = key(HashKind::Md5, b"not these bytes");
    assert!(store.stage(wrong, body(data, PIECE)).await.is_err());
    assert_eq!(store.chunks.lent(), 0);
    assert_eq!(tmp_files(&dir), 0);
}

/// Stages `n` distinct small blobs, then commits them in rounds of the given kind: the
/// blobs end up in place with their bytes, and `tmp/` empty.
fn commit_in_rounds(store: &FsStore, n: usize, per_file: bool) {
    let blobs: Vec<(BlobKey, Vec<u8>)> = (0..n)
        .map(|i| {
            let data = format!("round blob {i} {per_file}").into_bytes();
            (key(HashKind::Md5, &data), data)
        })
        .collect();
    let new: Vec<NewTemp> = blobs
        .iter()
        .map(|(k, data)| {
            let received = store.write_small(*k, data, Handle::KeepOpen).unwrap();
            match received.into_handle::<FsReceived>().unwrap() {
                (_, size, FsReceived::Temp(t)) => (*k, size, t),
                (_, _, FsReceived::Existing) => panic!("{k} existed"),
            }
        })
        .collect();
    let mut choice = SyncChoice::default();
    if per_file {
        choice.slow_at = Some(Instant::now());
    }
    let flushed = store.commit_round(Vec::new(), new, &mut choice).unwrap();
    assert_eq!(flushed.len(), n);
    for (k, _) in &blobs {
        assert!(
            !store.blob_path(*k).exists(),
            "{k} visible before its round"
        );
    }
    let left = store
        .commit_round(flushed, Vec::new(), &mut choice)
        .unwrap();
    assert!(left.is_empty());
    for (k, data) in &blobs {
        assert_eq!(&std::fs::read(store.blob_path(*k)).unwrap(), data);
    }
    assert_eq!(std::fs::read_dir(&store.tmp).unwrap().count(), 0);
}

/// A store whose uploads use unnamed temp files, or named ones when `unnamed` is false.
pub(crate) fn store_with_temps(unnamed: bool) -> (tempfile::TempDir, Arc<FsStore>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FsStore::open(dir.path(), u64::MAX).unwrap();
    if !unnamed {
        Arc::get_mut(&mut store).unwrap().unnamed_temps = None;
    }
    (dir, store)
}

#[test]
fn rounds_flush_file_by_file_or_whole() {
    for unnamed in [true, false] {
        let (_dir, store) = store_with_temps(unnamed);
        commit_in_rounds(&store, 5, true);
        commit_in_rounds(&store, 5, false);
    }
}

#[tokio::test]
async fn staged_bytes_read_back() {
    for unnamed in [true, false] {
        let (_dir, store) = store_with_temps(unnamed);
        for data in [b"read me back".to_vec(), vec![3u8; 3 * PIECE + 1]] {
            let k = key(HashKind::Md5, &data);
            let staged = store.stage(k, body(data.clone(), 4096)).await.unwrap();
            let got = collect(store.read_staged(&staged).await.unwrap()).await;
            assert_eq!(got, data);
        }
    }
}

#[tokio::test]
async fn fan_out_folder_removed_behind_the_servers_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), u64::MAX).unwrap();
    let first = b"first".to_vec();
    let k = key(HashKind::Md5, &first);
    store.put(k, body(first.clone(), 2)).await.unwrap();
    let folder = store.blob_path(k).parent().unwrap().to_path_buf();
    std::fs::remove_dir_all(&folder).unwrap();
    store.put(k, body(first.clone(), 2)).await.unwrap();
    assert_eq!(std::fs::read(store.blob_path(k)).unwrap(), first);
}

#[tokio::test]
async fn legacy_objects_keep_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), u64::MAX).unwrap();
    let data = b"a,b\r\n1,2\r\n".to_vec();
    let k = key(HashKind::Md5Dos2unix, &data);
    assert_eq!(k.oid.hex(), "e5ebd4c02cefbe7955977c67ada242b7");
    let staged = store.stage(k, body(data.clone(), 3)).await.unwrap();
    store.commit(staged).await.unwrap();
    assert_eq!(std::fs::read(store.blob_path(k)).unwrap(), data);
    assert!(store
        .blob_path(k)
        .starts_with(dir.path().join("blobs/md5-dos2unix")));
}

#[tokio::test]
async fn body_error_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), u64::MAX).unwrap();
    let data = vec![1u8; 3 * PIECE];
    let k = key(HashKind::Md5, &data);
    let chunks: Vec<Result<Bytes, io::Error>> = vec![
        Ok(Bytes::from(data[..2 * PIECE].to_vec())),
        Err(io::Error::other("connection reset")),
    ];
    assert!(matches!(
        store.stage(k, futures::stream::iter(chunks).boxed()).await,
        Err(StoreError::Body(_))
    ));
    assert_eq!(tmp_files(&dir), 0);
    assert!(!store.blob_path(k).exists());
}
