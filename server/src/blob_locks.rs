//! The in-memory form of the rule that garbage collection does not delete a blob an upload is
//! about to reference (rule 2 of [`crate::db::coordination`]), for an engine used by one process.
//!
//! Uploads hold their blobs' stripes shared from staging until the references are indexed;
//! collection holds one blob's stripe exclusively while it checks for references and deletes.

use std::sync::Arc;

use lode_proto::{HashKind, ObjectId};
use tokio::sync::{Mutex, RwLock};

use crate::db::Hold;

const STRIPES: usize = 256;

pub(crate) struct BlobLocks {
    stripes: Vec<Arc<RwLock<()>>>,
    /// One collection at a time: with a single writer waiting, uploads that take several
    /// stripes in order cannot deadlock behind it.
    collection: Arc<Mutex<()>>,
}

impl Default for BlobLocks {
    fn default() -> Self {
        BlobLocks {
            stripes: (0..STRIPES).map(|_| Arc::new(RwLock::new(()))).collect(),
            collection: Arc::new(Mutex::new(())),
        }
    }
}

impl BlobLocks {
    fn stripe(oid: &ObjectId) -> usize {
        let d = oid.digest();
        (usize::from(d[0]) ^ usize::from(d[15]) ^ usize::from(oid.is_dir())) % STRIPES
    }

    /// Shared hold on the stripes of these blobs, taken in stripe order.
    pub(crate) async fn upload(&self, blobs: &[(HashKind, ObjectId)]) -> Hold {
        let mut idx: Vec<usize> = blobs.iter().map(|(_, oid)| Self::stripe(oid)).collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].clone().read_owned().await);
        }
        Hold::new(guards)
    }

    /// Serialises collections; held for a whole collection.
    pub(crate) async fn collection(&self) -> Hold {
        Hold::new(self.collection.clone().lock_owned().await)
    }

    /// Exclusive hold on one blob's stripe, for checking references and deleting it.
    pub(crate) async fn delete(&self, oid: &ObjectId) -> Hold {
        Hold::new(self.stripes[Self::stripe(oid)].clone().write_owned().await)
    }
}
