//! The filesystem blob store: `{data}/blobs/{kind}/{ab}/{cdef...}`, uploads in `{data}/tmp/`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use lode_proto::{HashKind, ObjectId};
use tokio::sync::{mpsc, oneshot};

use super::{
    BlobKey, BlobMeta, BlobStore, ByteStream, ListedBlob, OpenBlob, OpenBody, SmallRead, Staged,
    StagedInner, StoreError, StoreResult,
};
use crate::hashing::ObjectHasher;

/// Bodies up to this size are hashed and written in one step; larger ones are written while
/// they arrive, in pieces of this size, so memory per upload stays bounded (pieces are shared by
/// the hasher's and the writer's queues: about `PIECE * (QUEUE + 2) + DIRECT_CHUNK`, 8.5 MiB,
/// whatever the object size).
const PIECE: usize = 256 * 1024;
/// Pieces queued between the network and the hasher of one upload: enough that the hasher,
/// the slowest stage, still has work when the network task waits for a core.
const QUEUE: usize = 16;
/// Pieces queued for the disk writer of one upload: one direct write's worth, so the network
/// and the hasher go on while the writer waits for the device.
const WRITE_QUEUE: usize = DIRECT_CHUNK / PIECE;
/// Bodies up to this size are hashed and written on the task that received them (about 100 us
/// of MD5 at most); larger small ones go to the blocking pool.
const INLINE_MAX: usize = 64 * 1024;
/// Blobs up to this size are read whole when opened.
const SMALL_READ: u64 = 256 * 1024;
/// Commits made durable together at most (see `group_commits`).
const GROUP_MAX: usize = 256;

type GroupReply = oneshot::Sender<StoreResult<()>>;
/// New blobs whose data is on disk, not yet in place.
type Flushed = Vec<(BlobKey, TempBlob)>;
type GroupQueue = std_mpsc::Sender<(Staged, GroupReply)>;

pub struct FsStore {
    blobs: PathBuf,
    tmp: PathBuf,
    quarantine: PathBuf,
    max_size: u64,
    /// The queue of the group-commit thread, started by the first commit.
    group: OnceLock<GroupQueue>,
    /// Descriptors for filesystem-wide flushes (see `sync_filesystem`), one for the group
    /// commits and one for bulk commits, opened with the store: `syncfs` reports a writeback
    /// error once to each descriptor opened before it happened, so a descriptor opened just
    /// for the call would miss an error from the background writeback of a batch's data.
    group_sync: File,
    bulk_sync: File,
    /// How uploads' unnamed files are linked; `None` when uploads go to named files (see
    /// `TempBlob`).
    unnamed_temps: Option<LinkWay>,
    /// Handles on the fan-out folders, by kind and first byte (see `FsStore::folder`).
    folders: Vec<OnceLock<File>>,
}

impl FsStore {
    /// Opens the store under `data`, creating its folders. `max_size` caps a single object.
    pub fn open(data: &Path, max_size: u64) -> StoreResult<Arc<FsStore>> {
        let blobs = data.join("blobs");
        let tmp = data.join("tmp");
        for kind in [HashKind::Md5, HashKind::Md5Dos2unix] {
            let dir = blobs.join(kind.as_str());
            fs::create_dir_all(&dir)
                .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        }
        fs::create_dir_all(&tmp)
            .map_err(|e| StoreError::io(format!("creating {}", tmp.display()), e))?;
        let open_dir = |dir: &Path| {
            File::open(dir).map_err(|e| StoreError::io(format!("opening {}", dir.display()), e))
        };
        Ok(Arc::new(FsStore {
            group_sync: open_dir(&blobs)?,
            bulk_sync: open_dir(&blobs)?,
            unnamed_temps: unnamed_temps_way(&tmp),
            folders: (0..2 * 256).map(|_| OnceLock::new()).collect(),
            quarantine: data.join("quarantine"),
            blobs,
            tmp,
            max_size,
            group: OnceLock::new(),
        }))
    }

    /// Deletes uploads left behind by a crash. Only safe when no server is running on this
    /// data folder (the caller holds the data folder lock).
    pub fn clean_tmp(&self) -> StoreResult<usize> {
        let mut n = 0;
        let entries = fs::read_dir(&self.tmp)
            .map_err(|e| StoreError::io(format!("listing {}", self.tmp.display()), e))?;
        for entry in entries.flatten() {
            if fs::remove_file(entry.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }

    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    pub fn blob_path(&self, key: BlobKey) -> PathBuf {
        let name = key.oid.to_string();
        self.blobs
            .join(key.kind.as_str())
            .join(&name[..2])
            .join(&name[2..])
    }

    /// An open handle on the blob's fan-out folder (`blobs/{kind}/{ab}`), opened on first use;
    /// `None` while the folder does not exist. Looking a blob up or linking it relative to its
    /// folder skips walking the data folder's path, twice per upload. Fan-out folders are
    /// never removed, so a handle stays valid.
    fn folder(&self, key: BlobKey) -> Option<&File> {
        let kind = match key.kind {
            HashKind::Md5 => 0,
            HashKind::Md5Dos2unix => 1,
        };
        let slot = self
            .folders
            .get(kind * 256 + usize::from(key.oid.digest()[0]))?;
        if let Some(folder) = slot.get() {
            return Some(folder);
        }
        let path = self.blob_path(key);
        let folder = File::open(path.parent()?).ok()?;
        // Another thread may have opened it meanwhile: either handle will do.
        Some(slot.get_or_init(|| folder))
    }

    /// Whether the blob exists (as `Path::exists`: an error counts as absent).
    fn blob_exists(&self, key: BlobKey) -> bool {
        use std::ffi::CString;
        use std::os::fd::AsRawFd;
        let Some(folder) = self.folder(key) else {
            return self.blob_path(key).exists();
        };
        let name = key.oid.to_string();
        let Ok(name) = CString::new(&name[2..]) else {
            return false;
        };
        // SAFETY: `name` is a valid NUL-terminated string and `folder` keeps its descriptor
        // open for the call.
        unsafe { libc::faccessat(folder.as_raw_fd(), name.as_ptr(), libc::F_OK, 0) == 0 }
    }

    /// A new file in `tmp/` for an upload: unnamed where the filesystem allows (`O_TMPFILE`),
    /// else named. Created read-only (the open handle can still write), as blobs stay once in
    /// place.
    fn new_temp(&self) -> StoreResult<(File, Option<tempfile::TempPath>)> {
        let context = || format!("creating a file in {}", self.tmp.display());
        if self.unnamed_temps.is_some() {
            return create_unnamed(&self.tmp)
                .map(|f| (f, None))
                .map_err(|e| StoreError::io(context(), e));
        }
        let tmp = tempfile::Builder::new()
            .prefix("upload-")
            .suffix(".part")
            .permissions(fs::Permissions::from_mode(0o444))
            .tempfile_in(&self.tmp)
            .map_err(|e| StoreError::io(context(), e))?;
        let (file, path) = tmp.into_parts();
        Ok((file, Some(path)))
    }
}

impl FsStore {
    fn link_way(&self) -> LinkWay {
        self.unnamed_temps.unwrap_or(LinkWay::Proc)
    }

    /// Gives an unnamed temp file a name in `tmp/` (a named one is returned as it is): its
    /// link count then reaches the disk with its data's flush, and it can be closed.
    fn name_in_tmp(&self, key: BlobKey, temp: TempBlob) -> StoreResult<TempBlob> {
        let TempBlob::Unnamed(file) = temp else {
            return Ok(temp);
        };
        let context = || format!("naming {key} in {}", self.tmp.display());
        // The name's owner first, so that a name given is also taken away on failure.
        let name = self
            .tmp
            .join(format!("upload-{}.part", uuid::Uuid::new_v4().simple()));
        let path =
            tempfile::TempPath::try_from_path(name).map_err(|e| StoreError::io(context(), e))?;
        match link_unnamed(&file, None, &path, self.link_way()) {
            Ok(true) => Ok(TempBlob::Named(path, Some(file))),
            Ok(false) => {
                // Not ours: it must not be deleted with `path`.
                let _ = path.keep();
                Err(StoreError::io(
                    context(),
                    io::Error::from(io::ErrorKind::AlreadyExists),
                ))
            }
            Err(e) => Err(StoreError::io(context(), e)),
        }
    }
}

/// An unnamed file in `dir`, open for reading and writing, mode 0444.
fn create_unnamed(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o444)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
}

/// How an unnamed file is given a name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LinkWay {
    /// By the descriptor itself (`AT_EMPTY_PATH`): allowed unprivileged for a file the caller
    /// opened since Linux 6.10, and spares a path lookup in `/proc`.
    Descriptor,
    /// Through `/proc/self/fd`, which needs no privilege on older kernels.
    Proc,
}

/// Gives the unnamed file `file` the name `to` unless it exists: true when linked, false when
/// the name was taken. `to` is relative to `folder` when given.
fn link_unnamed(file: &File, folder: Option<&File>, to: &Path, way: LinkWay) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let to = c_path(to)?;
    let fd = file.as_raw_fd();
    let at = folder.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let rc = match way {
        // SAFETY: the empty path and `to` are valid NUL-terminated strings that outlive the
        // call; `file` and `folder` keep their descriptors open.
        LinkWay::Descriptor => unsafe {
            libc::linkat(fd, c"".as_ptr(), at, to.as_ptr(), libc::AT_EMPTY_PATH)
        },
        LinkWay::Proc => {
            let from = c_path(Path::new(&format!("/proc/self/fd/{fd}")))?;
            // SAFETY: both pointers are valid NUL-terminated strings that outlive the call;
            // `folder` keeps its descriptor open.
            unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    from.as_ptr(),
                    at,
                    to.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            }
        }
    };
    unless_taken(rc)
}

fn c_path(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

/// The result of a syscall that puts a name in place unless it exists: true when it did,
/// false when the name was taken (`EEXIST`), else the error.
fn unless_taken(rc: libc::c_int) -> io::Result<bool> {
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) => Ok(false),
        _ => Err(e),
    }
}

/// How uploads can be written to unnamed files in `dir` and then linked into place, if at all.
fn unnamed_temps_way(dir: &Path) -> Option<LinkWay> {
    let file = create_unnamed(dir).ok()?;
    [LinkWay::Descriptor, LinkWay::Proc]
        .into_iter()
        .find(|way| {
            let probe = dir.join(format!("probe-{}", uuid::Uuid::new_v4().simple()));
            let linked = matches!(link_unnamed(&file, None, &probe, *way), Ok(true));
            if linked {
                let _ = fs::remove_file(&probe);
            }
            linked
        })
}

/// A new blob's bytes before they are placed.
///
/// Unnamed files (`O_TMPFILE`) are the rule: creating one takes no lock on `tmp/` (a named
/// file holds that folder's lock while the filesystem looks for a free inode, which on a busy
/// ext4 without a journal can take a long time, and every other upload and the commit's
/// renames wait for it), placing one locks only the blob's folder, and nothing of one remains
/// when it is dropped or after a crash. Where the filesystem has none, named files in `tmp/`,
/// deleted if dropped, emptied at start.
pub(crate) enum TempBlob {
    Unnamed(File),
    /// The file's handle while it is kept open for the flush.
    Named(tempfile::TempPath, Option<File>),
}

impl TempBlob {
    /// `keep_open` keeps a named file's handle; an unnamed file is its handle.
    fn new(file: File, name: Option<tempfile::TempPath>, keep_open: bool) -> TempBlob {
        match name {
            None => TempBlob::Unnamed(file),
            Some(path) => TempBlob::Named(path, keep_open.then_some(file)),
        }
    }

    /// The same file, its handle closed when it has a name.
    fn without_handle(self) -> TempBlob {
        match self {
            TempBlob::Named(path, _) => TempBlob::Named(path, None),
            unnamed => unnamed,
        }
    }

    /// The file's handle when it is still open.
    fn file(&self) -> Option<&File> {
        match self {
            TempBlob::Unnamed(f) | TempBlob::Named(_, Some(f)) => Some(f),
            TempBlob::Named(_, None) => None,
        }
    }

    /// Flushes the file's data (and the inode fields needed to read it) to the device.
    fn sync_data(&self) -> io::Result<()> {
        match self {
            TempBlob::Unnamed(f) | TempBlob::Named(_, Some(f)) => f.sync_data(),
            TempBlob::Named(path, None) => File::open(path).and_then(|f| f.sync_data()),
        }
    }

    /// A reader of the bytes from the start.
    fn reader(&self) -> io::Result<Box<dyn Read + Send>> {
        match self {
            TempBlob::Unnamed(f) => Ok(Box::new(io::BufReader::with_capacity(
                64 * 1024,
                ReadAt {
                    file: f.try_clone()?,
                    pos: 0,
                },
            ))),
            TempBlob::Named(path, _) => Ok(Box::new(io::BufReader::with_capacity(
                64 * 1024,
                File::open(path)?,
            ))),
        }
    }
}

/// Reads a file from its start with positioned reads, leaving the offset it shares with
/// other handles alone.
struct ReadAt {
    file: File,
    pos: u64,
}

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Alignment of direct writes: offsets, lengths and buffer addresses.
const DIRECT_ALIGN: usize = 4096;
/// Bytes gathered per direct write.
const DIRECT_CHUNK: usize = 4 << 20;

/// Writes a large upload, around the page cache when the filesystem allows (`O_DIRECT`): the
/// bytes go from one aligned buffer to the device, which spares the CPU the page cache's
/// bookkeeping and the later writeback, and makes the final flush short. On this kind of
/// virtual disk, buffered writes followed by a flush reach about a quarter of the speed.
struct LargeWriter {
    file: File,
    /// `Some` while writing directly: a buffer with room for an aligned chunk, the chunk's
    /// start in it, and the bytes gathered so far.
    direct: Option<(Vec<u8>, usize, usize)>,
    /// Bytes written through the page cache (no `O_DIRECT`), for the writeback hints.
    buffered: u64,
}

impl LargeWriter {
    fn new(file: File) -> LargeWriter {
        let direct = set_direct(&file, true).ok().map(|()| {
            let buf = vec![0u8; DIRECT_CHUNK + DIRECT_ALIGN];
            let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
            (buf, start, 0)
        });
        LargeWriter {
            file,
            direct,
            buffered: 0,
        }
    }

    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let Some((buf, start, len)) = self.direct.as_mut() else {
                self.file.write_all(data)?;
                start_writeback(&self.file, self.buffered, data.len() as u64);
                self.buffered += data.len() as u64;
                return Ok(());
            };
            let take = (DIRECT_CHUNK - *len).min(data.len());
            buf[*start + *len..*start + *len + take].copy_from_slice(&data[..take]);
            *len += take;
            data = &data[take..];
            if *len == DIRECT_CHUNK {
                self.flush_chunk()?;
            }
        }
        Ok(())
    }

    /// Writes the gathered aligned bytes directly; whatever cannot go that way (a tail shorter
    /// than the alignment, or a filesystem refusing a direct write) goes through the page cache.
    fn flush_chunk(&mut self) -> io::Result<()> {
        let Some((buf, start, len)) = self.direct.as_mut() else {
            return Ok(());
        };
        let (start, len) = (*start, *len);
        let aligned = len - len % DIRECT_ALIGN;
        let mut done = 0;
        while done < aligned {
            match self.file.write(&buf[start + done..start + aligned]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if n % DIRECT_ALIGN == 0 => done += n,
                // A short unaligned write cannot be continued directly.
                Ok(n) => {
                    done += n;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => return Err(e),
            }
        }
        if done < len {
            // The rest goes through the page cache, and so does everything after it.
            let rest = buf[start + done..start + len].to_vec();
            self.direct = None;
            set_direct(&self.file, false)?;
            self.file.write_all(&rest)?;
            return Ok(());
        }
        if let Some((_, _, len)) = self.direct.as_mut() {
            *len = 0;
        }
        Ok(())
    }

    /// Writes what is left and flushes the file's data and metadata to the device; gives the
    /// file back.
    fn finish(mut self) -> io::Result<File> {
        self.flush_chunk()?;
        self.file.sync_all()?;
        Ok(self.file)
    }
}

/// Turns `O_DIRECT` on or off for an open file.
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` keeps open; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks the kernel to start writing a range out now, so the fsync at the end of a large upload
/// finds little left to do. Only a hint: errors are ignored (the fsync reports real ones).
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::unix::io::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on a file descriptor we own; no memory is passed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Serializes bulk commits (see `commit_many_blocking`).
static BATCH_COMMIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Threads flushing one batch side by side (see `flush_side_by_side`).
const FLUSH_THREADS: usize = 16;

type FlushJob = Box<dyn FnOnce() + Send>;

/// Threads that wait on flushes for every store of the process, started once: starting
/// threads for each batch cost more CPU than the small uploads the batch flushed.
struct FlushPool {
    jobs: std::sync::Mutex<std_mpsc::Sender<FlushJob>>,
}

impl FlushPool {
    /// `None` when no thread could be started; callers then flush on their own thread.
    fn get() -> Option<&'static FlushPool> {
        static POOL: OnceLock<Option<FlushPool>> = OnceLock::new();
        POOL.get_or_init(|| {
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
        })
        .as_ref()
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
fn flush_side_by_side<T: Send + Sync + 'static>(
    items: Vec<T>,
    flush: fn(&T) -> StoreResult<()>,
) -> (Vec<T>, StoreResult<()>) {
    let pool = match FlushPool::get() {
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

/// A batch of at least this many new blobs is made durable with one filesystem-wide flush for
/// the data and one for the renames, instead of a flush per file and per folder, whatever else
/// is being written: for thousands of small files (a pack) per-file flushes cost far more than
/// writing the filesystem's dirty blocks once, even though `syncfs` also waits for other writers.
const SYNCFS_MIN_FILES: usize = 256;

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
struct SyncChoice {
    unwritten: Option<(Instant, Option<u64>)>,
    slow_at: Option<Instant>,
}

impl SyncChoice {
    /// Whether a round of `files` files, `own` bytes of them new data, flushes the filesystem.
    fn whole_filesystem(&mut self, files: usize, own: u64) -> bool {
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
    fn took(&mut self, elapsed: Duration) {
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
fn sync_filesystem(handle: &File, what: &Path) -> StoreResult<()> {
    use std::os::fd::AsRawFd;
    let context = || format!("flushing the filesystem of {}", what.display());
    // SAFETY: syncfs only reads the descriptor, which `handle` keeps open for the call.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
        return Err(StoreError::io(context(), io::Error::last_os_error()));
    }
    handle.sync_all().map_err(|e| StoreError::io(context(), e))
}

/// Flushes the filesystem, then reports a write error of any of `temps` (see `check_written`).
fn sync_filesystem_holding<'a>(
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

/// Reports a writeback error of `file`'s data since it was opened, without writing or
/// flushing anything (after a `syncfs` that wrote it). `syncfs` reports an error once per
/// descriptor, possibly to a caller flushing other files; the file's own descriptor still
/// has it.
fn check_written(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor `file` keeps open; no memory is passed.
    let rc =
        unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WAIT_AFTER) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
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

/// Renames `from` to `to` unless `to` exists: true when moved, false when `to` was there.
/// One syscall where the filesystem supports it, instead of a lookup and then a rename.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<bool> {
    let (cfrom, cto) = (c_path(from)?, c_path(to)?);
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            cfrom.as_ptr(),
            libc::AT_FDCWD,
            cto.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    match unless_taken(rc) {
        // No RENAME_NOREPLACE on this filesystem or kernel.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
            if to.exists() {
                return Ok(false);
            }
            fs::rename(from, to)?;
            Ok(true)
        }
        other => other,
    }
}

/// Reads a whole small file if every byte is in the page cache; `None` when some would have to
/// come from the disk (the caller then reads it where blocking is allowed).
fn read_cached(f: &File, size: usize) -> io::Result<Option<Vec<u8>>> {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; size];
    let mut filled = 0;
    while filled < size {
        let iov = libc::iovec {
            iov_base: buf[filled..].as_mut_ptr().cast(),
            iov_len: size - filled,
        };
        let offset = i64::try_from(filled).map_err(io::Error::other)?;
        // SAFETY: `iov` points into `buf`, which outlives the call, with its true length.
        let n = unsafe { libc::preadv2(f.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                // Would block, or no RWF_NOWAIT here: the blocking read reports real errors.
                Some(libc::EAGAIN | libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => Ok(None),
                Some(libc::EINTR) => continue,
                _ => Err(e),
            };
        }
        if n == 0 {
            // Shorter than its size said a moment ago: what is there is the answer.
            buf.truncate(filled);
            break;
        }
        filled += n as usize;
    }
    Ok(Some(buf))
}

fn write_err(key: BlobKey, e: io::Error) -> StoreError {
    if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
        StoreError::NoSpace(key)
    } else {
        StoreError::io(format!("writing {key}"), e)
    }
}

fn join_err(e: tokio::task::JoinError) -> StoreError {
    StoreError::io("blocking task failed", io::Error::other(e.to_string()))
}

fn check_digest(key: BlobKey, actual: [u8; 16]) -> StoreResult<()> {
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

/// A new blob's data, not yet flushed, and its size.
type NewTemp = (BlobKey, u64, TempBlob);

/// Group commit, in rounds on one thread. A round takes every commit waiting at that moment,
/// renames the blobs whose data the previous round made durable into place, and makes both
/// those names and the new blobs' data durable with one flush; the names are answered then,
/// and the new blobs are placed by the next round. Uploads finishing while a round flushes
/// queue up for the next one, so the number of flushes grows with rounds, not with uploads,
/// and a blob's name is never durable before its data (its rename waits for the next round).
fn group_commits(store: Weak<FsStore>, rx: std_mpsc::Receiver<(Staged, GroupReply)>) {
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
        for (staged, reply) in batch {
            match staged.inner {
                StagedInner::Temp(temp) => {
                    new.push((staged.key, staged.size, temp));
                    new_replies.push((staged.key, reply));
                }
                StagedInner::Existing => existing_replies.push((staged.key, reply)),
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

fn sync_folder(dir: &Path) -> StoreResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("syncing {}", dir.display()), e))
}

impl FsStore {
    /// Hashes a body held in memory, refuses it unless it matches `key`, and writes it to a
    /// temp file unless the blob exists, leaving the data unflushed. `keep_open` keeps the
    /// file's handle for the flush.
    fn stage_small(&self, key: BlobKey, data: &[u8], keep_open: bool) -> StoreResult<Staged> {
        if data.len() as u64 > self.max_size {
            return Err(StoreError::TooLarge(key, self.max_size));
        }
        let mut h = ObjectHasher::new(key.kind);
        h.update(data);
        check_digest(key, h.finish())?;
        let inner = if self.blob_exists(key) {
            StagedInner::Existing
        } else {
            let (mut file, name) = self.new_temp()?;
            // No writeback hint here: each would submit its own device write, while the batch's
            // flush writes them all together.
            file.write_all(data).map_err(|e| write_err(key, e))?;
            let temp = TempBlob::new(file, name, keep_open);
            // A file not kept open needs a name to be found again.
            StagedInner::Temp(if keep_open {
                temp
            } else {
                self.name_in_tmp(key, temp)?.without_handle()
            })
        };
        Ok(Staged {
            key,
            size: data.len() as u64,
            inner,
        })
    }

    /// Receives and verifies a body. Small bodies are left unflushed: their commit flushes them
    /// together with every other commit waiting at that moment.
    async fn stage_impl(
        self: Arc<Self>,
        key: BlobKey,
        mut body: ByteStream,
    ) -> StoreResult<Staged> {
        let target = self.blob_path(key);
        let mut first = BytesMut::new();
        let mut total: u64 = 0;
        let mut ended = false;
        while first.len() < PIECE {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(StoreError::Body)?;
                    total += chunk.len() as u64;
                    if total > self.max_size {
                        return Err(StoreError::TooLarge(key, self.max_size));
                    }
                    first.extend_from_slice(&chunk);
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if ended && first.len() <= INLINE_MAX {
            // A few microseconds of hashing and a write into the page cache: cheaper here than
            // the two thread switches of handing them to the blocking pool.
            return self.stage_small(key, &first, true);
        }
        if ended {
            let store = self.clone();
            let data = first.freeze();
            return tokio::task::spawn_blocking(move || store.stage_small(key, &data, true))
                .await
                .map_err(join_err)?;
        }

        // Large body: one blocking thread hashes and another writes while the network fills
        // the next pieces, so MD5 and disk writes run side by side. The bounded queues are what
        // keep memory flat for any object size. Pieces are lists of the frames as received,
        // shared by both threads, so bytes are not copied on the way.
        type Piece = Arc<Vec<Bytes>>;
        let exists = tokio::fs::try_exists(&target).await.unwrap_or(false);
        let temp = if exists {
            None
        } else {
            let store = self.clone();
            Some(
                tokio::task::spawn_blocking(move || store.new_temp())
                    .await
                    .map_err(join_err)??,
            )
        };
        let (htx, mut hrx) = mpsc::channel::<Piece>(QUEUE);
        let hasher = tokio::task::spawn_blocking(move || {
            let mut h = ObjectHasher::new(key.kind);
            while let Some(piece) = hrx.blocking_recv() {
                for frame in piece.iter() {
                    h.update(frame);
                }
            }
            h.finish()
        });
        let (wtx, writer) = match temp {
            None => (None, None),
            Some((file, name)) => {
                let (wtx, mut wrx) = mpsc::channel::<Piece>(WRITE_QUEUE);
                let writer = tokio::task::spawn_blocking(move || -> StoreResult<_> {
                    let mut out = LargeWriter::new(file);
                    while let Some(piece) = wrx.blocking_recv() {
                        for frame in piece.iter() {
                            out.write(frame).map_err(|e| write_err(key, e))?;
                        }
                    }
                    let file = out.finish().map_err(|e| write_err(key, e))?;
                    // Flushed already: a named file need not stay open.
                    Ok(TempBlob::new(file, name, false))
                });
                (Some(wtx), Some(writer))
            }
        };

        let mut piece = vec![first.freeze()];
        let mut piece_len: usize = piece[0].len();
        let send = |piece: Vec<Bytes>| {
            let piece: Piece = Arc::new(piece);
            let (htx, wtx) = (htx.clone(), wtx.clone());
            async move {
                // A failed send means a worker stopped early; its own error is reported below.
                let hashed = htx.send(piece.clone()).await.is_ok();
                let written = match wtx {
                    Some(w) => w.send(piece).await.is_ok(),
                    None => true,
                };
                hashed && written
            }
        };
        let received: StoreResult<()> = async {
            loop {
                if piece_len >= PIECE {
                    piece_len = 0;
                    if !send(std::mem::take(&mut piece)).await {
                        return Ok(());
                    }
                }
                match body.next().await {
                    Some(chunk) => {
                        let chunk = chunk.map_err(StoreError::Body)?;
                        total += chunk.len() as u64;
                        if total > self.max_size {
                            return Err(StoreError::TooLarge(key, self.max_size));
                        }
                        piece_len += chunk.len();
                        piece.push(chunk);
                    }
                    None => {
                        if !piece.is_empty() {
                            send(piece).await;
                        }
                        return Ok(());
                    }
                }
            }
        }
        .await;
        drop(htx);
        drop(wtx);
        let digest = hasher.await.map_err(join_err);
        let temp = match writer {
            Some(w) => Some(w.await.map_err(join_err)),
            None => None,
        };
        // A body error wins over whatever the workers saw: the upload is incomplete either
        // way, and the temp file is discarded when `temp` is dropped.
        received?;
        let temp = temp.transpose()?.transpose()?;
        check_digest(key, digest?)?;
        Ok(Staged {
            key,
            size: total,
            inner: match temp {
                Some(temp) => StagedInner::Temp(temp),
                None => StagedInner::Existing,
            },
        })
    }

    /// Puts a verified temp file in place (the caller decides when it is flushed). Returns the
    /// folder to sync and, for an unnamed file, the file, whose link count changed; `None`
    /// when the blob was already there.
    fn place(&self, key: BlobKey, temp: TempBlob) -> StoreResult<Option<(PathBuf, Option<File>)>> {
        let name = key.oid.to_string();
        let target = self.blob_path(key);
        let parent = target
            .parent()
            .ok_or_else(|| StoreError::io("blob path", io::Error::other("no parent")))?;
        // Relative to the folder's open handle when there is one, else by the whole path.
        let put = |temp: &TempBlob, folder: Option<&File>| match (temp, folder) {
            (TempBlob::Unnamed(f), Some(folder)) => {
                link_unnamed(f, Some(folder), Path::new(&name[2..]), self.link_way())
            }
            (TempBlob::Unnamed(f), None) => link_unnamed(f, None, &target, self.link_way()),
            (TempBlob::Named(path, _), _) => rename_noreplace(path, &target),
        };
        let moved = match put(&temp, self.folder(key)) {
            // The fan-out folder's first blob: make the folder then, rather than looking it up
            // for every blob. Also a folder removed behind the server's back (its handle then
            // names a deleted folder): made again, and reached by its path.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !parent.exists() {
                    fs::create_dir_all(parent)
                        .map_err(|e| StoreError::io(format!("creating {}", parent.display()), e))?;
                }
                put(&temp, None)
            }
            other => other,
        };
        match moved {
            Ok(true) => {
                let linked = match temp {
                    TempBlob::Unnamed(f) => Some(f),
                    TempBlob::Named(path, _) => {
                        // The name now belongs to the blob; `path` must not delete it on drop.
                        let _ = path.keep();
                        None
                    }
                };
                Ok(Some((parent.to_path_buf(), linked)))
            }
            Ok(false) => Ok(None),
            Err(e) => Err(StoreError::io(format!("moving {key} into place"), e)),
        }
    }

    /// One group commit round (see `group_commits`): renames `placing` into place, then makes
    /// those names and the data of `new` durable together; returns the new blobs, ready for the
    /// next round. An error fails the whole round, and the new blobs are dropped.
    fn commit_round(
        &self,
        placing: Flushed,
        new: Vec<NewTemp>,
        choice: &mut SyncChoice,
    ) -> StoreResult<Flushed> {
        // Rounds take turns with bulk placements: a caller that found its blob already present
        // waits for the turn that may have just put it there.
        let _turn = BATCH_COMMIT.lock().unwrap_or_else(|p| p.into_inner());
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
        let (jobs, flushed) = flush_side_by_side(jobs, RoundFlush::flush);
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
    fn flush_staged(&self, staged: Vec<Staged>) -> StoreResult<Flushed> {
        let temps: Flushed = staged
            .into_iter()
            .filter_map(|s| match s.inner {
                StagedInner::Temp(temp) => Some((s.key, temp)),
                StagedInner::Existing => None,
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
        let (temps, flushed) = flush_side_by_side(temps, |(key, temp)| {
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
        let _turn = BATCH_COMMIT.lock().unwrap_or_else(|p| p.into_inner());
        let whole_filesystem = temps.len() >= SYNCFS_MIN_FILES;
        let jobs = self.place_all(temps)?;
        if whole_filesystem {
            return sync_filesystem(&self.bulk_sync, &self.blobs);
        }
        flush_side_by_side(jobs, RoundFlush::flush).1
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
    async fn group_commit(self: Arc<Self>, staged: Staged) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        match self.group_queue().send((staged, reply)) {
            Ok(()) => answer.await.unwrap_or_else(|_| {
                Err(StoreError::io(
                    "committing",
                    io::Error::other("the commit thread stopped"),
                ))
            }),
            Err(std_mpsc::SendError((staged, _))) => {
                tokio::task::spawn_blocking(move || self.commit_many_blocking(vec![staged]))
                    .await
                    .map_err(join_err)?
            }
        }
    }
}

impl BlobStore for Arc<FsStore> {
    fn stage(&self, key: BlobKey, body: ByteStream) -> BoxFuture<'_, StoreResult<Staged>> {
        self.clone().stage_impl(key, body).boxed()
    }

    fn put(&self, key: BlobKey, body: ByteStream) -> BoxFuture<'_, StoreResult<u64>> {
        let store = self.clone();
        async move {
            let staged = store.clone().stage_impl(key, body).await?;
            let size = staged.size;
            store.group_commit(staged).await?;
            Ok(size)
        }
        .boxed()
    }

    fn staged_reader(&self, staged: &Staged) -> StoreResult<Box<dyn Read + Send>> {
        let read_err = |e| StoreError::io(format!("reading {}", staged.key), e);
        match &staged.inner {
            StagedInner::Temp(temp) => temp.reader().map_err(read_err),
            StagedInner::Existing => {
                let f = File::open(self.blob_path(staged.key)).map_err(read_err)?;
                Ok(Box::new(io::BufReader::with_capacity(64 * 1024, f)))
            }
        }
    }

    fn commit(&self, staged: Staged) -> BoxFuture<'_, StoreResult<()>> {
        self.clone().group_commit(staged).boxed()
    }

    fn stat(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Option<BlobMeta>>> {
        let path = self.blob_path(key);
        // A stat of a blob whose folder is cached takes a microsecond or two, far less than
        // handing it to the blocking pool and back.
        let found = match fs::metadata(&path) {
            Ok(m) => Ok(Some(BlobMeta {
                size: m.len(),
                modified: m.modified().unwrap_or(std::time::UNIX_EPOCH),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(format!("reading {key}"), e)),
        };
        futures::future::ready(found).boxed()
    }

    fn open(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Option<OpenBlob>>> {
        let path = self.blob_path(key);
        let read_err = move |e| StoreError::io(format!("reading {key}"), e);
        async move {
            // Opening a blob and reading a small one that is in the page cache take a few
            // microseconds: done here, saving two thread switches per request (DVC's
            // existence checks are GETs of mostly small objects). Only a read that would wait
            // for the disk goes to the blocking pool.
            let f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(read_err(e)),
            };
            let m = f.metadata().map_err(read_err)?;
            let meta = BlobMeta {
                size: m.len(),
                modified: m.modified().unwrap_or(std::time::UNIX_EPOCH),
            };
            if meta.size > SMALL_READ {
                let body = OpenBody::File(f);
                return Ok(Some(OpenBlob { meta, body }));
            }
            let bytes = match read_cached(&f, meta.size as usize).map_err(read_err)? {
                Some(b) => b,
                None => tokio::task::spawn_blocking(move || {
                    let mut buf = Vec::with_capacity(meta.size as usize);
                    (&f).read_to_end(&mut buf).map(|_| buf)
                })
                .await
                .map_err(join_err)?
                .map_err(read_err)?,
            };
            Ok(Some(OpenBlob {
                meta,
                body: OpenBody::Whole(Bytes::from(bytes)),
            }))
        }
        .boxed()
    }

    fn delete(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<bool>> {
        let path = self.blob_path(key);
        async move {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(StoreError::io(format!("deleting {key}"), e)),
            }
        }
        .boxed()
    }

    fn check_ready(&self) -> BoxFuture<'_, StoreResult<()>> {
        let store = self.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let (mut f, name) = store.new_temp()?;
                f.write_all(b"ready")
                    .map_err(|e| StoreError::io("writing a probe file", e))?;
                drop(name);
                Ok(())
            })
            .await
            .map_err(join_err)?
        }
        .boxed()
    }

    fn list_blocking(&self, kind: HashKind) -> StoreResult<Vec<ListedBlob>> {
        let root = self.blobs.join(kind.as_str());
        let mut out = Vec::new();
        let prefixes = match fs::read_dir(&root) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StoreError::io(format!("listing {}", root.display()), e)),
        };
        for prefix in prefixes {
            let prefix = prefix.map_err(|e| StoreError::io("listing blobs", e))?;
            let pname = prefix.file_name().to_string_lossy().into_owned();
            let Ok(files) = fs::read_dir(prefix.path()) else {
                out.push(ListedBlob {
                    kind,
                    name: pname,
                    oid: None,
                    size: 0,
                });
                continue;
            };
            for f in files {
                let f = f.map_err(|e| StoreError::io("listing blobs", e))?;
                let fname = f.file_name().to_string_lossy().into_owned();
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                out.push(ListedBlob {
                    kind,
                    oid: ObjectId::from_key_parts(&pname, &fname).ok(),
                    name: format!("{pname}/{fname}"),
                    size,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn hash_blocking(&self, key: BlobKey) -> StoreResult<Option<[u8; 16]>> {
        let mut f = match File::open(self.blob_path(key)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(format!("reading {key}"), e)),
        };
        let mut h = ObjectHasher::new(key.kind);
        let mut buf = vec![0u8; PIECE];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| StoreError::io(format!("reading {key}"), e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(Some(h.finish()))
    }

    fn stage_small_blocking(&self, key: BlobKey, data: &[u8]) -> StoreResult<Staged> {
        // Not kept open: a pack stages thousands of these before committing them.
        self.stage_small(key, data, false)
    }

    fn commit_many_blocking(&self, staged: Vec<Staged>) -> StoreResult<()> {
        let flushed = self.flush_staged(staged)?;
        self.place_flushed(flushed)
    }

    fn read_small_blocking(&self, key: BlobKey, limit: u64) -> StoreResult<Option<SmallRead>> {
        let mut f = match File::open(self.blob_path(key)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(format!("reading {key}"), e)),
        };
        let size = f
            .metadata()
            .map_err(|e| StoreError::io(format!("reading {key}"), e))?
            .len();
        if size > limit {
            return Ok(Some(SmallRead::TooLarge(size)));
        }
        let mut buf = Vec::with_capacity(size as usize);
        f.read_to_end(&mut buf)
            .map_err(|e| StoreError::io(format!("reading {key}"), e))?;
        Ok(Some(SmallRead::Bytes(Bytes::from(buf))))
    }

    fn quarantine_blocking(&self, kind: HashKind, name: &str) -> StoreResult<bool> {
        if name
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(StoreError::io(
                format!("refusing to move '{name}'"),
                io::Error::other("not a blob name"),
            ));
        }
        let from = self.blobs.join(kind.as_str()).join(name);
        if !from.exists() {
            return Ok(false);
        }
        let to = self
            .quarantine
            .join(kind.as_str())
            .join(name.replace('/', ""));
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| StoreError::io(format!("creating {}", parent.display()), e))?;
        }
        fs::rename(&from, &to)
            .map_err(|e| StoreError::io(format!("moving {} aside", from.display()), e))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::digest_of;

    fn key(kind: HashKind, data: &[u8]) -> BlobKey {
        BlobKey {
            kind,
            oid: ObjectId::from_digest(digest_of(kind, data), false),
        }
    }

    fn body(data: Vec<u8>, piece: usize) -> ByteStream {
        let chunks: Vec<Result<Bytes, io::Error>> = data
            .chunks(piece.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(chunks).boxed()
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
            assert_eq!(staged.size, size as u64);
            store.commit(staged).await.unwrap();
            assert_eq!(std::fs::read(store.blob_path(k)).unwrap(), data);
            assert_eq!(store.hash_blocking(k).unwrap(), Some(*k.oid.digest()));
            // Whole and in part, through the path downloads take.
            for (offset, len) in [(0, size), (size / 3, size / 2)] {
                let blob = store.open(k).await.unwrap().unwrap();
                assert_eq!(blob.meta.size, size as u64);
                let mut got = Vec::new();
                let mut stream = blob.range(offset as u64, len as u64).await.unwrap();
                while let Some(piece) = stream.next().await {
                    got.extend_from_slice(&piece.unwrap());
                }
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
            other => panic!("expected mismatch, got {:?}", other.map(|s| s.size)),
        }
        let big: Vec<u8> = vec![7u8; 2 * PIECE + 5];
        assert!(store.stage(k, body(big, 100_000)).await.is_err());
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
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
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
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
                let staged = store.stage_small(*k, data, true).unwrap();
                match staged.inner {
                    StagedInner::Temp(t) => (*k, data.len() as u64, t),
                    StagedInner::Existing => panic!("{k} existed"),
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
    fn store_with_temps(unnamed: bool) -> (tempfile::TempDir, Arc<FsStore>) {
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

    #[test]
    fn staged_bytes_read_back() {
        for unnamed in [true, false] {
            let (_dir, store) = store_with_temps(unnamed);
            let data = b"read me back".to_vec();
            let staged = store
                .stage_small(key(HashKind::Md5, &data), &data, true)
                .unwrap();
            let mut got = Vec::new();
            store
                .staged_reader(&staged)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(got, data);
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
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert!(!store.blob_path(k).exists());
    }
}
