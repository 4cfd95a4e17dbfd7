//! Group commit: uploads finishing at about the same time are made durable together, in rounds
//! on one thread; bulk commits (packs) use the same two steps for a whole batch.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{mpsc as std_mpsc, Arc, Weak};
use std::time::Instant;

use tokio::sync::oneshot;

use super::durability::{
    sync_filesystem, sync_filesystem_holding, sync_folder, SyncChoice, SYNCFS_MIN_FILES,
};
use super::flush_pool::flush_side_by_side;
use super::staging::FsReceived;
use super::temp::{write_err, TempBlob};
use super::FsStore;
use crate::store::{BlobKey, Received, StoreError, StoreResult};

/// Commits made durable together at most (see `group_commits`).
const GROUP_MAX: usize = 256;

/// An upload the store received, as the commit thread takes it.
pub(super) struct Upload {
    key: BlobKey,
    size: u64,
    received: FsReceived,
}

impl Upload {
    fn of(received: Received) -> StoreResult<Upload> {
        let (key, size, received) = received.into_handle::<FsReceived>()?;
        Ok(Upload {
            key,
            size,
            received,
        })
    }
}

type GroupReply = oneshot::Sender<StoreResult<()>>;
/// New blobs whose data is on disk, not yet in place.
type Flushed = Vec<(BlobKey, TempBlob)>;
pub(super) type GroupQueue = std_mpsc::Sender<(Upload, GroupReply)>;
/// A new blob's data, not yet flushed, and its size.
pub(super) type NewTemp = (BlobKey, u64, TempBlob);

/// Group commit, in rounds on one thread. A round takes every commit waiting at that moment,
/// renames the blobs whose data the previous round made durable into place, and makes both
/// those names and the new blobs' data durable with one flush; the names are answered then,
/// and the new blobs are placed by the next round. Uploads finishing while a round flushes
/// queue up for the next one, so the number of flushes grows with rounds, not with uploads,
/// and a blob's name is never durable before its data (its rename waits for the next round).
fn group_commits(store: Weak<FsStore>, rx: std_mpsc::Receiver<(Upload, GroupReply)>) {
    // Blobs whose data is durable, to be placed by the next round, and their callers.
    let mut flushed: Flushed = Vec::new();
    let mut flushed_replies: Vec<(BlobKey, GroupReply)> = Vec::new();
    let mut choice = SyncChoice::default();
    loop {
        let mut batch = Vec::new();
        // With nothing to place, wait for work; otherwise place at once.
        if flushed_replies.is_empty() {
            match rx.recv() {
                Ok(first) => batch.push(first),
                Err(_) => return,
            }
        }
        while batch.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut new: Vec<NewTemp> = Vec::new();
        let mut new_replies = Vec::new();
        // Uploads of blobs that already existed: their blob may have been renamed by a round
        // (or a bulk commit) a moment ago; rounds and bulk placements take turns and flush
        // before they end, so the end of this round's turn is the answer.
        let mut existing_replies = Vec::new();
        for (upload, reply) in batch {
            match upload.received {
                FsReceived::Temp(temp) => {
                    new.push((upload.key, upload.size, temp));
                    new_replies.push((upload.key, reply));
                }
                FsReceived::Existing => existing_replies.push((upload.key, reply)),
            }
        }
        let placing = std::mem::take(&mut flushed);
        let mut answered = std::mem::take(&mut flushed_replies);
        answered.extend(existing_replies);
        let result = match store.upgrade() {
            Some(s) => s.commit_round(placing, new, &mut choice),
            None => Err(store_closed()),
        };
        match result {
            Ok(temps) => {
                answer_all(answered, &Ok(()));
                flushed = temps;
                flushed_replies = new_replies;
            }
            Err(e) => {
                // The new blobs' temp files were dropped with the round: nothing is placed.
                let e = Err(e);
                answer_all(answered, &e);
                answer_all(new_replies, &e);
            }
        }
    }
}

/// One flush of a group commit round made file by file.
enum RoundFlush {
    /// A placed blob's folder.
    Folder(PathBuf),
    /// A placed unnamed file: its inode's new link count.
    Linked(BlobKey, File),
    /// A new blob's data.
    Data(BlobKey, TempBlob),
}

impl RoundFlush {
    fn flush(&self) -> StoreResult<()> {
        match self {
            RoundFlush::Folder(dir) => sync_folder(dir),
            RoundFlush::Linked(key, f) => f.sync_all().map_err(|e| write_err(*key, e)),
            RoundFlush::Data(key, temp) => temp.sync_data().map_err(|e| write_err(*key, e)),
        }
    }
}

/// The same failure for every commit of a batch (`StoreError` cannot be cloned).
fn batch_err(e: &StoreError, key: BlobKey) -> StoreError {
    match e {
        StoreError::NoSpace(_) => StoreError::NoSpace(key),
        StoreError::Io { context, source } => StoreError::io(
            context.clone(),
            io::Error::new(source.kind(), source.to_string()),
        ),
        other => StoreError::io(
            format!("committing {key}"),
            io::Error::other(other.to_string()),
        ),
    }
}

/// Answers every commit of a batch with the batch's outcome.
fn answer_all(replies: Vec<(BlobKey, GroupReply)>, result: &StoreResult<()>) {
    for (key, reply) in replies {
        let answer = match result {
            Ok(()) => Ok(()),
            Err(e) => Err(batch_err(e, key)),
        };
        let _ = reply.send(answer);
    }
}

fn store_closed() -> StoreError {
    StoreError::io("committing", io::Error::other("the store was closed"))
}

impl FsStore {
    /// One group commit round (see `group_commits`): renames `placing` into place, then makes
    /// those names and the data of `new` durable together; returns the new blobs, ready for the
    /// next round. An error fails the whole round, and the new blobs are dropped.
    pub(super) fn commit_round(
        &self,
        placing: Flushed,
        new: Vec<NewTemp>,
        choice: &mut SyncChoice,
    ) -> StoreResult<Flushed> {
        // Rounds take turns with bulk placements: a caller that found its blob already present
        // waits for the turn that may have just put it there.
        let _turn = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        let placed_files = placing.len();
        let mut jobs = self.place_all(placing)?;
        if jobs.is_empty() && new.is_empty() {
            return Ok(Vec::new());
        }
        let own: u64 = new.iter().map(|(_, size, _)| *size).sum();
        if choice.whole_filesystem(placed_files + new.len(), own) {
            let started = Instant::now();
            let synced = sync_filesystem_holding(
                &self.group_sync,
                &self.blobs,
                new.iter().map(|(k, _, t)| (*k, t)),
            );
            choice.took(started.elapsed());
            synced?;
            return Ok(new.into_iter().map(|(k, _, t)| (k, t)).collect());
        }
        // Each file's data and each folder flushed on its own, side by side: with a journal,
        // flushes arriving together share one journal commit; without one, each is a device
        // flush and the device serves many at once. New unnamed files get a name in `tmp/`
        // first, so that their data's flush also takes their link count to the disk (without
        // a journal nothing else would); one placed unnamed (its data flushed by a
        // filesystem-wide round) is flushed again for the same reason.
        let new = new
            .into_iter()
            .map(|(k, size, t)| Ok((k, size, self.name_in_tmp(k, t)?)))
            .collect::<StoreResult<Vec<NewTemp>>>()?;
        jobs.extend(new.into_iter().map(|(k, _, t)| RoundFlush::Data(k, t)));
        let (jobs, flushed) = flush_side_by_side(self.flush_pool(), jobs, RoundFlush::flush);
        flushed?;
        Ok(jobs
            .into_iter()
            .filter_map(|j| match j {
                RoundFlush::Data(k, t) => Some((k, t)),
                RoundFlush::Folder(_) | RoundFlush::Linked(..) => None,
            })
            .collect())
    }

    /// First step of a bulk commit: every new blob's data on disk. Only files in `tmp/` are
    /// touched, so this need not take turns.
    fn flush_staged(&self, staged: Vec<Upload>) -> StoreResult<Flushed> {
        let temps: Flushed = staged
            .into_iter()
            .filter_map(|s| match s.received {
                FsReceived::Temp(temp) => Some((s.key, temp)),
                FsReceived::Existing => None,
            })
            .collect();
        if temps.len() >= SYNCFS_MIN_FILES {
            sync_filesystem_holding(
                &self.bulk_sync,
                &self.tmp,
                temps.iter().map(|(k, t)| (*k, t)),
            )?;
            return Ok(temps);
        }
        let (temps, flushed) = flush_side_by_side(self.flush_pool(), temps, |(key, temp)| {
            temp.sync_data().map_err(|e| write_err(*key, e))
        });
        flushed?;
        Ok(temps)
    }

    /// Puts flushed blobs into place; returns the flushes that make that durable: each folder
    /// that gained a name, once, and each linked unnamed file.
    fn place_all(&self, temps: Flushed) -> StoreResult<Vec<RoundFlush>> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut linked: Vec<(BlobKey, File)> = Vec::new();
        for (key, temp) in temps {
            if let Some((dir, file)) = self.place(key, temp)? {
                dirs.push(dir);
                linked.extend(file.map(|f| (key, f)));
            }
        }
        dirs.sort();
        dirs.dedup();
        Ok(dirs
            .into_iter()
            .map(RoundFlush::Folder)
            .chain(linked.into_iter().map(|(k, f)| RoundFlush::Linked(k, f)))
            .collect())
    }

    /// Second step: puts flushed blobs into place and syncs each affected folder (and each
    /// placed unnamed file) once. Takes turns with other placements (see `commit_round`).
    fn place_flushed(&self, temps: Flushed) -> StoreResult<()> {
        let _turn = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        let whole_filesystem = temps.len() >= SYNCFS_MIN_FILES;
        let jobs = self.place_all(temps)?;
        if whole_filesystem {
            return sync_filesystem(&self.bulk_sync, &self.blobs);
        }
        flush_side_by_side(self.flush_pool(), jobs, RoundFlush::flush).1
    }

    fn group_queue(self: &Arc<Self>) -> &GroupQueue {
        self.group.get_or_init(|| {
            let (tx, rx) = std_mpsc::channel();
            let store = Arc::downgrade(self);
            // If the thread cannot start, `rx` is dropped with the closure and `commit` finds
            // the queue closed and commits by itself.
            let started = std::thread::Builder::new()
                .name("lode-commit".into())
                .spawn(move || group_commits(store, rx));
            if let Err(e) = started {
                tracing::error!("cannot start the commit thread ({e}); committing one by one");
            }
            tx
        })
    }

    /// Commits through the group-commit thread. Uploads of blobs that already existed go
    /// through it too: the blob may have just been renamed by a batch whose folder sync is
    /// still running, and batches run in turn, so the answer waits until that one is done.
    pub(super) async fn group_commit(self: Arc<Self>, received: Received) -> StoreResult<()> {
        let upload = Upload::of(received)?;
        let (reply, answer) = oneshot::channel();
        match self.group_queue().send((upload, reply)) {
            Ok(()) => answer.await.unwrap_or_else(|_| {
                Err(StoreError::io(
                    "committing",
                    io::Error::other("the commit thread stopped"),
                ))
            }),
            Err(std_mpsc::SendError((upload, _))) => {
                tokio::task::spawn_blocking(move || self.commit_uploads(vec![upload]))
                    .await
                    .map_err(StoreError::join)?
            }
        }
    }

    /// Makes a batch of received uploads durable with one flush, then visible in order.
    pub(super) fn commit_many_blocking(&self, received: Vec<Received>) -> StoreResult<()> {
        let uploads = received
            .into_iter()
            .map(Upload::of)
            .collect::<StoreResult<Vec<_>>>()?;
        self.commit_uploads(uploads)
    }

    fn commit_uploads(&self, uploads: Vec<Upload>) -> StoreResult<()> {
        let flushed = self.flush_staged(uploads)?;
        self.place_flushed(flushed)
    }
}
