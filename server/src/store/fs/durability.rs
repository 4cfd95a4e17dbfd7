//! The durability policy: when a batch of new blobs is made durable by one filesystem-wide
//! flush (`syncfs`) rather than a flush per file and per folder, and the flushes themselves.

use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, Instant};

use lode_objio::flush::{check_written, syncfs};

use super::temp::{write_err, TempBlob};
use crate::store::{BlobKey, StoreError, StoreResult};

/// A batch of at least this many new blobs is made durable with one filesystem-wide flush for
/// the data and one for the renames, instead of a flush per file and per folder, whatever else
/// is being written: for thousands of small files (a pack) per-file flushes cost far more than
/// writing the filesystem's dirty blocks once, even though `syncfs` also waits for other writers.
pub(super) const SYNCFS_MIN_FILES: usize = 256;

/// A group commit round with at least this many files (new data plus renames) may flush the
/// whole filesystem (see `SyncChoice`). Each per-file flush costs about 90 us of CPU here (a
/// sync write of the inode, a device flush, two wake-ups), a file needs two (its data, its
/// folder), while one `syncfs` and a flush cost about 250 us for the whole round. A round of
/// one file is cheaper, and answered sooner, by flushing it alone.
const SYNCFS_MIN_ROUND: usize = 2;

/// Bytes of other writers' data (system-wide dirty and writeback pages beyond the round's own)
/// above which a round flushes its own files rather than the filesystem: `syncfs` would first
/// write all of them, at the device's speed (about 200 MB/s here), while every upload of the
/// round waits. Below it, the first round pays for what was waiting once, and later rounds
/// only for what was written since.
const FOREIGN_DIRTY_MAX: u64 = 128 << 20;

/// A filesystem-wide flush taking longer than this means other writers keep the device busy
/// with data of their own, which `syncfs` waits for and per-file flushes do not...
const SLOW_SYNCFS: Duration = Duration::from_millis(250);
/// ...so rounds flush file by file for this long before trying again.
const SLOW_BACKOFF: Duration = Duration::from_secs(2);
/// How long a reading of the system's unwritten bytes is used: reading `/proc/meminfo` costs
/// more than the rest of the choice, and the figure moves slowly.
const UNWRITTEN_FRESH: Duration = Duration::from_millis(100);

/// Chooses, round by round, between one filesystem-wide flush and per-file flushes.
#[derive(Default)]
pub(super) struct SyncChoice {
    unwritten: Option<(Instant, Option<u64>)>,
    pub(super) slow_at: Option<Instant>,
}

impl SyncChoice {
    /// Whether a round of `files` files, `own` bytes of them new data, flushes the filesystem.
    pub(super) fn whole_filesystem(&mut self, files: usize, own: u64) -> bool {
        if files >= SYNCFS_MIN_FILES {
            return true;
        }
        if files < SYNCFS_MIN_ROUND || self.slow_at.is_some_and(|t| t.elapsed() < SLOW_BACKOFF) {
            return false;
        }
        let unwritten = match self.unwritten {
            Some((at, bytes)) if at.elapsed() < UNWRITTEN_FRESH => bytes,
            _ => {
                let bytes = unwritten_bytes();
                self.unwritten = Some((Instant::now(), bytes));
                bytes
            }
        };
        unwritten.is_some_and(|b| b.saturating_sub(own) <= FOREIGN_DIRTY_MAX)
    }

    /// Records how long a filesystem-wide flush took.
    pub(super) fn took(&mut self, elapsed: Duration) {
        if elapsed > SLOW_SYNCFS {
            self.slow_at = Some(Instant::now());
        }
    }
}

/// Flushes every dirty page and inode of the filesystem `handle` is on, then flushes the
/// device once more: `syncfs` issues its device flush before writing the last dirty metadata
/// blocks (on a filesystem without a journal, inode tables and folders among them), so those
/// are only durable after the next flush. An fsync of the (clean) folder `handle` opens is
/// that flush.
pub(super) fn sync_filesystem(handle: &File, what: &Path) -> StoreResult<()> {
    let context = || format!("flushing the filesystem of {}", what.display());
    syncfs(handle).map_err(|e| StoreError::io(context(), e))?;
    handle.sync_all().map_err(|e| StoreError::io(context(), e))
}

/// Flushes the filesystem, then reports a write error of any of `temps` (see `check_written`).
pub(super) fn sync_filesystem_holding<'a>(
    handle: &File,
    what: &Path,
    temps: impl IntoIterator<Item = (BlobKey, &'a TempBlob)>,
) -> StoreResult<()> {
    sync_filesystem(handle, what)?;
    for (key, temp) in temps {
        if let Some(f) = temp.file() {
            check_written(f).map_err(|e| write_err(key, e))?;
        }
    }
    Ok(())
}

/// Bytes of page-cache data waiting to be written system-wide (`Dirty` plus `Writeback` in
/// `/proc/meminfo`); `None` when unknown.
fn unwritten_bytes() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let mut total = 0u64;
    let mut found = 0;
    for line in text.lines() {
        let Some(rest) = line
            .strip_prefix("Dirty:")
            .or_else(|| line.strip_prefix("Writeback:"))
        else {
            continue;
        };
        let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        total = total.saturating_add(kib.saturating_mul(1024));
        found += 1;
    }
    (found == 2).then_some(total)
}

pub(super) fn sync_folder(dir: &Path) -> StoreResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("syncing {}", dir.display()), e))
}
