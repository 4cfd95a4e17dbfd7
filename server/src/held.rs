//! A bounded memory of which objects each project holds, in front of the index, so repeated
//! existence checks and downloads do not each cost a database round trip.
//!
//! Uploads record their references here as they index them. Removals are noticed through the
//! index's removal epoch (rule 3 of [`crate::db::coordination`]): every answer is asked for with
//! the epoch read just before, and the memory is dropped when it differs from the one its
//! answers were stored under.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lode_proto::{HashKind, ObjectId};

/// Entries kept at most; the memory is dropped wholesale when full (about 40 MiB at the limit).
const MAX_ENTRIES: usize = 500_000;

type Key = (i64, HashKind, ObjectId);

#[derive(Default)]
pub(crate) struct HeldCache {
    map: Mutex<HashMap<Key, Option<u64>>>,
    /// Bumped by every recorded upload, so a lookup that raced with one does not store a stale
    /// "absent".
    epoch: AtomicU64,
    /// The index's removal epoch the stored answers were read under.
    removals: AtomicU64,
}

impl HeldCache {
    /// `Some(answer)` when known: `Some(Some(size))` held, `Some(None)` not held. `removals` is
    /// the index's removal epoch, read now; a change drops everything stored before it.
    pub(crate) fn get(
        &self,
        removals: u64,
        project_id: i64,
        kind: HashKind,
        oid: &ObjectId,
    ) -> Option<Option<u64>> {
        let mut m = self.map.lock().ok()?;
        if self.removals.load(Ordering::Acquire) != removals {
            m.clear();
            self.removals.store(removals, Ordering::Release);
            return None;
        }
        m.get(&(project_id, kind, *oid)).copied()
    }

    /// The current upload epoch, to pass back to `remember` after asking the index.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores what the index answered, asked at upload epoch `epoch` and removal epoch
    /// `removals`: not when a removal has been seen since, and not an "absent" when an upload
    /// was recorded since.
    pub(crate) fn remember(
        &self,
        epoch: u64,
        removals: u64,
        project_id: i64,
        kind: HashKind,
        oid: &ObjectId,
        size: Option<u64>,
    ) {
        if let Ok(mut m) = self.map.lock() {
            if self.removals.load(Ordering::Acquire) != removals
                || (size.is_none() && self.epoch.load(Ordering::Acquire) != epoch)
            {
                return;
            }
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert((project_id, kind, *oid), size);
        }
    }

    /// Records a reference the index now holds.
    pub(crate) fn held(&self, project_id: i64, kind: HashKind, oid: &ObjectId, size: u64) {
        if let Ok(mut m) = self.map.lock() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert((project_id, kind, *oid), Some(size));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_answers_are_not_kept() {
        let c = HeldCache::default();
        let oid: ObjectId = "b202f333fba4fd38d4b8e5e693077aab".parse().unwrap();
        let e = c.epoch();
        c.held(1, HashKind::Md5, &oid, 10);
        c.remember(e, 0, 1, HashKind::Md5, &oid, None);
        assert_eq!(c.get(0, 1, HashKind::Md5, &oid), Some(Some(10)));
        assert_eq!(c.get(0, 1, HashKind::Md5Dos2unix, &oid), None);
        let e = c.epoch();
        c.remember(e, 0, 2, HashKind::Md5, &oid, None);
        assert_eq!(c.get(0, 2, HashKind::Md5, &oid), Some(None));
        // A removal drops everything, and an answer read before it is not stored after it.
        assert_eq!(c.get(1, 1, HashKind::Md5, &oid), None);
        assert_eq!(c.get(1, 2, HashKind::Md5, &oid), None);
        c.remember(c.epoch(), 0, 3, HashKind::Md5, &oid, Some(5));
        assert_eq!(c.get(1, 3, HashKind::Md5, &oid), None);
        c.remember(c.epoch(), 1, 3, HashKind::Md5, &oid, Some(5));
        assert_eq!(c.get(1, 3, HashKind::Md5, &oid), Some(Some(5)));
    }
}
