//! A bounded memory of which objects each project holds, in front of the index, so repeated
//! existence checks and downloads do not each cost a database round trip.
//!
//! Only this server adds references (uploads), and it records them here as it does; removals
//! happen through project deletion (which clears everything) or `fsck` (which needs the server
//! stopped). Project ids are never reused (AUTOINCREMENT), so entries of a project deleted by
//! `lode-server admin` behind the server's back can never be seen through a new project.
//! Anything that later removes references from a running server must call `clear`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lode_proto::{HashKind, ObjectId};

/// Entries kept at most; the memory is dropped wholesale when full (about 40 MiB at the limit).
const MAX_ENTRIES: usize = 500_000;

type Key = (i64, HashKind, ObjectId);

#[derive(Default)]
pub struct HeldCache {
    map: Mutex<HashMap<Key, Option<u64>>>,
    /// Bumped by every recorded upload, so a lookup that raced with one does not store a stale
    /// "absent".
    epoch: AtomicU64,
}

impl HeldCache {
    /// `Some(answer)` when known: `Some(Some(size))` held, `Some(None)` not held.
    pub fn get(&self, project_id: i64, kind: HashKind, oid: &ObjectId) -> Option<Option<u64>> {
        self.map
            .lock()
            .ok()?
            .get(&(project_id, kind, *oid))
            .copied()
    }

    /// The current epoch, to pass back to `remember` after asking the index.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores what the index answered, unless an upload was recorded since `epoch`.
    pub fn remember(
        &self,
        epoch: u64,
        project_id: i64,
        kind: HashKind,
        oid: &ObjectId,
        size: Option<u64>,
    ) {
        if let Ok(mut m) = self.map.lock() {
            if size.is_none() && self.epoch.load(Ordering::Acquire) != epoch {
                return;
            }
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert((project_id, kind, *oid), size);
        }
    }

    /// Records a reference the index now holds.
    pub fn held(&self, project_id: i64, kind: HashKind, oid: &ObjectId, size: u64) {
        if let Ok(mut m) = self.map.lock() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert((project_id, kind, *oid), Some(size));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            m.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_absent_answers_are_not_kept() {
        let c = HeldCache::default();
        let oid: ObjectId = "b202f333fba4fd38d4b8e5e693077aab".parse().unwrap();
        let e = c.epoch();
        c.held(1, HashKind::Md5, &oid, 10);
        c.remember(e, 1, HashKind::Md5, &oid, None);
        assert_eq!(c.get(1, HashKind::Md5, &oid), Some(Some(10)));
        assert_eq!(c.get(1, HashKind::Md5Dos2unix, &oid), None);
        let e = c.epoch();
        c.remember(e, 2, HashKind::Md5, &oid, None);
        assert_eq!(c.get(2, HashKind::Md5, &oid), Some(None));
        c.clear();
        assert_eq!(c.get(1, HashKind::Md5, &oid), None);
    }
}
