//! Threads that wait on flushes side by side: a device serves many flushes at once almost as
//! fast as one.

use std::io;
use std::sync::{mpsc as std_mpsc, Arc};

use super::FsStore;
use crate::store::{StoreError, StoreResult};

/// Threads flushing one batch side by side (see `flush_side_by_side`).
const FLUSH_THREADS: usize = 16;

type FlushJob = Box<dyn FnOnce() + Send>;

/// Threads that wait on flushes, started once per store: starting threads for each batch cost
/// more CPU than the small uploads the batch flushed. They end when the store is dropped.
pub(super) struct FlushPool {
    jobs: std::sync::Mutex<std_mpsc::Sender<FlushJob>>,
}

impl FlushPool {
    /// `None` when no thread could be started; callers then flush on their own thread.
    pub(super) fn start() -> Option<FlushPool> {
        let (tx, rx) = std_mpsc::channel::<FlushJob>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut started = 0;
        for i in 0..FLUSH_THREADS {
            let rx = rx.clone();
            let worker = move || loop {
                let job = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                // A panicking job answers nobody (its caller sees a closed channel), but
                // must not take the thread with it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            };
            if std::thread::Builder::new()
                .name(format!("lode-flush-{i}"))
                .spawn(worker)
                .is_ok()
            {
                started += 1;
            }
        }
        (started > 0).then(|| FlushPool {
            jobs: std::sync::Mutex::new(tx),
        })
    }

    fn submit(&self, job: FlushJob) -> Result<(), FlushJob> {
        match self.jobs.lock() {
            Ok(tx) => tx.send(job).map_err(|e| e.0),
            Err(_) => Err(job),
        }
    }
}

/// Runs `flush` on every item, spread over up to `FLUSH_THREADS` threads, and returns the items
/// with the first error. On ext4 without a journal (and on most virtual disks) every fsync is
/// its own device cache flush of a few milliseconds; one after another they cap a batch at a
/// few hundred files per second, while the device serves many at once almost as fast as one.
pub(super) fn flush_side_by_side<T: Send + Sync + 'static>(
    pool: Option<&FlushPool>,
    items: Vec<T>,
    flush: fn(&T) -> StoreResult<()>,
) -> (Vec<T>, StoreResult<()>) {
    let pool = match pool {
        Some(p) if items.len() > 1 => p,
        _ => {
            let r = items.iter().try_for_each(flush);
            return (items, r);
        }
    };
    let per_job = items.len().div_ceil(FLUSH_THREADS);
    let n = items.len();
    let items = Arc::new(items);
    let (done, results) = std_mpsc::channel::<StoreResult<()>>();
    let mut first_err = Ok(());
    // This thread takes the first part itself rather than sleeping while others work.
    let mut parts = (0..n).step_by(per_job).map(|a| a..(a + per_job).min(n));
    let own = parts.next();
    let mut sent = 0;
    for part in parts {
        let (items, done) = (items.clone(), done.clone());
        let job: FlushJob = Box::new(move || {
            let r = items[part].iter().try_for_each(flush);
            // Let go of the items before answering: the caller takes them back once every
            // part has answered.
            drop(items);
            let _ = done.send(r);
        });
        match pool.submit(job) {
            Ok(()) => sent += 1,
            // The pool is gone: the job comes back unrun; run it here.
            Err(job) => {
                job();
                sent += 1;
            }
        }
    }
    drop(done);
    if let Some(part) = own {
        first_err = items[part].iter().try_for_each(flush);
    }
    for _ in 0..sent {
        let r = results.recv().unwrap_or_else(|_| {
            Err(StoreError::io(
                "flushing",
                io::Error::other("a flush thread failed"),
            ))
        });
        if first_err.is_ok() {
            first_err = r;
        }
    }
    match Arc::try_unwrap(items) {
        Ok(items) => (items, first_err),
        // Only when a job died without running to the end; its items stay with it.
        Err(_) => (
            Vec::new(),
            Err(StoreError::io(
                "flushing",
                io::Error::other("a flush thread failed"),
            )),
        ),
    }
}

impl FsStore {
    /// The store's flush threads, started on first use.
    pub(super) fn flush_pool(&self) -> Option<&FlushPool> {
        self.flush_pool.get_or_init(FlushPool::start).as_ref()
    }
}
