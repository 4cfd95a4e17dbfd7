//! Locks that keep garbage collection from deleting a blob an upload is about to reference.
//!
//! Blobs are shared across projects, so an upload of bytes already on disk writes nothing and only
//! adds the project's reference. If collection deleted the blob between the upload finding it and
//! the reference reaching the index, the upload would be answered 2xx for an object that is gone.
//! Uploads therefore hold their key's stripe shared from staging until the reference is indexed,
//! and collection holds it exclusively while it checks for references and deletes.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::store::BlobKey;

const STRIPES: usize = 256;

pub struct BlobLocks {
    stripes: Vec<Arc<RwLock<()>>>,
    /// One collection at a time: with a single writer waiting, uploads that take several
    /// stripes in order cannot deadlock behind it.
    collection: Mutex<()>,
}

impl Default for BlobLocks {
    fn default() -> Self {
        BlobLocks {
            stripes: (0..STRIPES).map(|_| Arc::new(RwLock::new(()))).collect(),
            collection: Mutex::new(()),
        }
    }
}

/// Held by an upload until its references are indexed.
pub struct UploadGuard {
    _guards: Vec<OwnedRwLockReadGuard<()>>,
}

impl BlobLocks {
    fn stripe(key: &BlobKey) -> usize {
        let d = key.oid.digest();
        (usize::from(d[0]) ^ usize::from(d[15]) ^ usize::from(key.oid.is_dir())) % STRIPES
    }

    /// Shared hold on the stripes of these keys, taken in stripe order.
    pub async fn upload<'a>(&self, keys: impl IntoIterator<Item = &'a BlobKey>) -> UploadGuard {
        let mut idx: Vec<usize> = keys.into_iter().map(Self::stripe).collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].clone().read_owned().await);
        }
        UploadGuard { _guards: guards }
    }

    /// Serialises collections; hold it for a whole collection.
    pub async fn collection(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.collection.lock().await
    }

    /// Exclusive hold on one key's stripe, for checking references and deleting its blob.
    pub async fn delete(&self, key: &BlobKey) -> OwnedRwLockWriteGuard<()> {
        self.stripes[Self::stripe(key)].clone().write_owned().await
    }
}
