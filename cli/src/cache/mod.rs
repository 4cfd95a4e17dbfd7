//! The local content-addressed cache: layout, atomic inserts, link strategies, shared permissions.
//!
//! Layout (docs/dvc-formats.md §3): DVC 3 objects live at `<cache>/files/md5/ab/cdef…[.dir]`, DVC 2
//! legacy objects (named by their md5-dos2unix hash, holding raw bytes) at
//! `<cache>/ab/cdef…[.dir]`.
//!
//! Inserting streams the source into a temp file `.<random>.tmp` in the object's folder while
//! hashing those same bytes, so the object is named by exactly what was stored, then renames it
//! into place read-only (0444). A kill at any point leaves whole objects or stray temp files.
//! A batch is made durable with one `syncfs` before its renames rather than an fsync per file;
//! a directory's objects are committed in such batches by a second thread while the rest are
//! still being staged, so the disk writes behind the hashing instead of after it.

pub mod checkout;
mod direct;
pub mod link;
pub mod outputs;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lode_proto::{HashKind, ObjectId};
use tempfile::TempPath;

use self::direct::{AlignedBuf, ObjectWriter};
use crate::hash::manifest::{Manifest, ManifestError};
use crate::hash::multi::md5_many;
use crate::hash::walk::Stat;
use crate::hash::{read_full, HashError, StreamHasher, CHUNK};
use crate::repo::Repo;

pub use link::LinkType;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("cache object '{oid}' is corrupted: {source}")]
    BadManifest {
        oid: ObjectId,
        #[source]
        source: ManifestError,
    },
    #[error("unknown cache type '{0}': expected reflink, hardlink, symlink or copy")]
    BadLinkType(String),
    #[error("no link type in cache.type could link '{}': {source}", path.display())]
    Link {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The process umask, read once before any threads start creating files.
pub fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        // SAFETY: umask only swaps an integer in the process; it is restored immediately.
        let old = unsafe { libc::umask(0o022) };
        unsafe { libc::umask(old) };
        old as u32
    })
}

/// Who may write to the cache's folders (`cache.shared`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Folders as the umask allows.
    Private,
    /// `cache.shared = group`: folders group-writable and set-group-id.
    Group,
}

/// A repository's local cache.
#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
    sharing: Sharing,
    links: link::Linker,
    /// Folders known to exist, so that thousands of inserts don't stat them again.
    known_dirs: std::sync::RwLock<std::collections::HashSet<PathBuf>>,
}

/// An object written to a temp file and waiting for [`Cache::commit`].
#[derive(Debug)]
pub struct Staged {
    pub oid: ObjectId,
    pub size: u64,
    pub kind: HashKind,
    /// The written, read-only temp file; `None` when the object was already in the cache.
    tmp: Option<TempPath>,
    /// Whether `tmp`'s bytes were already flushed to disk by whoever wrote them.
    synced: bool,
}

impl Staged {
    /// An object whose bytes were written to `tmp` (from [`Cache::temp_for`]) and verified
    /// against `oid` by the caller. The file is made read-only here, as cache objects are.
    pub fn received(
        oid: ObjectId,
        kind: HashKind,
        size: u64,
        tmp: TempPath,
    ) -> Result<Staged, CacheError> {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444))
            .map_err(io_err(&tmp))?;
        Ok(Staged {
            oid,
            size,
            kind,
            tmp: Some(tmp),
            synced: false,
        })
    }
}

impl Cache {
    pub fn new(root: PathBuf, link_types: Vec<LinkType>, sharing: Sharing) -> Cache {
        umask();
        Cache {
            root,
            sharing,
            links: link::Linker::new(link_types),
            known_dirs: Default::default(),
        }
    }

    /// The cache a repository's config describes: `cache.dir` (relative to `.dvc/`), `cache.type`,
    /// `cache.shared`.
    pub fn for_repo(repo: &Repo) -> Result<Cache, CacheError> {
        let mut types = link::parse_types(&repo.config.cache_types().join(","))?;
        if types.is_empty() {
            types = vec![LinkType::Reflink, LinkType::Copy];
        }
        Ok(Cache::new(
            repo.cache_dir(),
            types,
            if repo.config.cache_shared_group() {
                Sharing::Group
            } else {
                Sharing::Private
            },
        ))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where an object lives (whether or not it exists).
    pub fn object_path(&self, oid: &ObjectId, kind: HashKind) -> PathBuf {
        self.root.join(oid.dvc_key(kind))
    }

    pub fn contains(&self, oid: &ObjectId, kind: HashKind) -> bool {
        self.object_path(oid, kind).is_file()
    }

    /// Whether every one of `oids` is in the cache. Large sets are checked by listing the object
    /// folders they fall in, which costs a few hundred `readdir`s instead of one `stat` each.
    pub fn contains_all(&self, oids: &[ObjectId], kind: HashKind) -> bool {
        let present = self.present(oids, kind);
        oids.iter().all(|o| present.contains(o))
    }

    /// Those of `oids` that are in the cache, found as [`Cache::contains_all`] does.
    pub fn present(&self, oids: &[ObjectId], kind: HashKind) -> ObjectSet {
        use rayon::prelude::*;
        if oids.len() < 2048 {
            return oids
                .par_iter()
                .filter(|o| self.contains(o, kind))
                .copied()
                .collect();
        }
        let mut prefixes: Vec<String> = oids.iter().map(|o| o.hex()[..2].to_string()).collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        let mut present = self.list_prefixes(kind, &prefixes);
        let wanted: ObjectSet = oids.iter().copied().collect();
        present.retain(|o| wanted.contains(o));
        present
    }

    /// Every object of `kind` in the cache, by listing the object folders.
    pub fn list_objects(&self, kind: HashKind) -> ObjectSet {
        let prefixes: Vec<String> = (0..=255u8).map(|i| format!("{i:02x}")).collect();
        self.list_prefixes(kind, &prefixes)
    }

    /// A rough count of the objects of `kind`, from the size of one object folder.
    pub fn estimate_objects(&self, kind: HashKind) -> usize {
        let dir = self.kind_base(kind).join("00");
        std::fs::read_dir(dir).map_or(0, |rd| rd.count() * 256)
    }

    fn kind_base(&self, kind: HashKind) -> PathBuf {
        match kind {
            HashKind::Md5 => self.root.join("files").join("md5"),
            HashKind::Md5Dos2unix => self.root.clone(),
        }
    }

    fn list_prefixes(&self, kind: HashKind, prefixes: &[String]) -> ObjectSet {
        use rayon::prelude::*;
        let base = self.kind_base(kind);
        let listed: Vec<Vec<ObjectId>> = prefixes
            .par_iter()
            .map(|p| {
                let Ok(rd) = std::fs::read_dir(base.join(p)) else {
                    return Vec::new();
                };
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| {
                        let name = e.file_name();
                        ObjectId::from_key_parts(p, name.to_str()?).ok()
                    })
                    .collect()
            })
            .collect();
        listed.into_iter().flatten().collect()
    }

    /// A digest of the inode, mtime and ctime of the kind's object folders (`00` to `ff` and
    /// their parent). Adding, removing or renaming any object changes its folder's times, so an
    /// equal fingerprint means the same set of object names as when it was taken. `None` when a
    /// folder changed too recently for its times to tell later changes apart (see
    /// [`crate::hash::state::RACY_NS`]).
    pub fn folders_fingerprint(&self, kind: HashKind) -> Option<[u8; 16]> {
        use std::os::unix::fs::MetadataExt;
        let base = self.kind_base(kind);
        let horizon = crate::hash::state::racy_horizon();
        let mut buf = Vec::with_capacity(257 * 32);
        let mut add = |dir: &Path| -> Option<()> {
            match std::fs::metadata(dir) {
                Ok(m) => {
                    let mtime = m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec();
                    let ctime = m.ctime().saturating_mul(1_000_000_000) + m.ctime_nsec();
                    if mtime >= horizon || ctime >= horizon {
                        return None;
                    }
                    buf.extend_from_slice(&m.ino().to_le_bytes());
                    buf.extend_from_slice(&mtime.to_le_bytes());
                    buf.extend_from_slice(&ctime.to_le_bytes());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => buf.push(0),
                Err(_) => return None,
            }
            Some(())
        };
        add(&base)?;
        for i in 0..=255u8 {
            add(&base.join(format!("{i:02x}")))?;
        }
        Some(crate::hash::md5_bytes(&buf))
    }

    /// Creates a cache folder with DVC's modes: 0777 & ~umask, or 02775 for `cache.shared = group`.
    fn make_dir(&self, dir: &Path) -> Result<(), CacheError> {
        if self.known_dirs.read().is_ok_and(|k| k.contains(dir)) {
            return Ok(());
        }
        if dir.is_dir() {
            if let Ok(mut k) = self.known_dirs.write() {
                k.insert(dir.to_path_buf());
            }
            return Ok(());
        }
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        if self.sharing == Sharing::Group {
            b.mode(0o2775);
        }
        b.create(dir).map_err(io_err(dir))?;
        if self.sharing == Sharing::Group {
            // The mode passed to mkdir is filtered by the umask; shared caches need it exact.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2775))
                .map_err(io_err(dir))?;
        }
        if let Ok(mut k) = self.known_dirs.write() {
            k.insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn temp_in(&self, dir: &Path) -> Result<tempfile::NamedTempFile, CacheError> {
        self.make_dir(dir)?;
        tempfile::Builder::new()
            .prefix(".")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io_err(dir))
    }

    /// [`Cache::stage_file_at`] taking the file's stat when it is opened.
    pub fn stage_file(&self, src: &Path, kind: HashKind) -> Result<Staged, CacheError> {
        self.stage_file_at(src, kind, None)
    }

    /// Streams `src` into a temp file in the cache while hashing it with `kind`. The file must not
    /// change while it is read: `before` is its stat from before it was opened (from a tree walk),
    /// else the stat at open is used. If the object already exists (read-only, as lode and DVC
    /// leave them) nothing is kept.
    pub fn stage_file_at(
        &self,
        src: &Path,
        kind: HashKind,
        before: Option<Stat>,
    ) -> Result<Staged, CacheError> {
        self.stage_file_listed(src, kind, before, None)
    }

    /// [`Cache::stage_file_at`] with the objects that were in the cache shortly before (from
    /// [`Cache::list_objects`]): an object not among them is taken as absent without a `stat`.
    /// One that appeared since is replaced by identical bytes, which is harmless.
    pub fn stage_file_listed(
        &self,
        src: &Path,
        kind: HashKind,
        before: Option<Stat>,
        listed: Option<&ObjectSet>,
    ) -> Result<Staged, CacheError> {
        let mut f = File::open(src).map_err(|e| HashError::io(src, e))?;
        let before = match before {
            Some(b) => b,
            None => Stat::of(&f.metadata().map_err(|e| HashError::io(src, e))?),
        };
        if before.size <= SMALL {
            return self.stage_small(src, f, kind, before, listed);
        }
        // Objects land in a 2-hex subfolder we can't know before hashing; stage at the kind's root.
        let stage_dir = match kind {
            HashKind::Md5 => self.root.join("files").join("md5"),
            HashKind::Md5Dos2unix => self.root.clone(),
        };
        let tmp = self.temp_in(&stage_dir)?;
        let (file, path) = tmp.into_parts();
        let (digest, size) = copy_hashing(&mut f, &file, kind).map_err(|e| CacheError::Io {
            path: src.to_path_buf(),
            source: e,
        })?;
        check_unchanged(src, &f, &before, size)?;
        let oid = ObjectId::from_digest(digest, false);
        let keep = !(may_exist(listed, &oid) && self.is_protected(&oid, kind));
        if keep {
            file.set_permissions(std::fs::Permissions::from_mode(0o444))
                .map_err(io_err(&path))?;
            // Flushed here, by its own descriptor, rather than by a filesystem-wide flush at
            // commit, which would also wait for every other program's unwritten data.
            file.sync_data().map_err(io_err(&path))?;
        }
        Ok(Staged {
            oid,
            size,
            kind,
            tmp: keep.then_some(path),
            synced: true,
        })
    }

    /// Stages a group of small files (see [`GROUP_FILE_MAX`]) whose stats come from a tree walk,
    /// as [`Cache::stage_file_listed`] would one by one, but hashing them side by side with
    /// [`md5_many`]. Results come back in the order of `files`.
    pub fn stage_group(
        &self,
        files: &[(PathBuf, Stat)],
        kind: HashKind,
        listed: Option<&ObjectSet>,
    ) -> Vec<Result<Staged, CacheError>> {
        if kind != HashKind::Md5 {
            // The legacy hash converts text per chunk; it stays on the one-file path.
            return files
                .iter()
                .map(|(p, st)| self.stage_file_listed(p, kind, Some(*st), listed))
                .collect();
        }
        thread_local! {
            static ARENA: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        ARENA.with_borrow_mut(|arena| {
            // The arena keeps its length from group to group, so it is zeroed only as it grows.
            let mut end = 0;
            let read: Vec<Result<std::ops::Range<usize>, CacheError>> = files
                .iter()
                .map(|(src, before)| {
                    let r = read_whole(src, before, arena, end);
                    if let Ok(range) = &r {
                        end = range.end;
                    }
                    r
                })
                .collect();
            let ok: Vec<&[u8]> = read
                .iter()
                .filter_map(|r| r.as_ref().ok().map(|range| &arena[range.clone()]))
                .collect();
            let mut digests = md5_many(&ok).into_iter();
            read.into_iter()
                .map(|r| {
                    let range = r?;
                    let digest = digests.next().ok_or_else(|| CacheError::Io {
                        path: self.root.clone(),
                        source: std::io::Error::other("a digest is missing"),
                    })?;
                    let oid = ObjectId::from_digest(digest, false);
                    self.stage_bytes_checked(oid, kind, &arena[range], may_exist(listed, &oid))
                })
                .collect()
        })
    }

    /// Small files are read whole, hashed, and written straight into their object's folder,
    /// and not written at all when the cache already has them.
    fn stage_small(
        &self,
        src: &Path,
        mut f: File,
        kind: HashKind,
        before: Stat,
        listed: Option<&ObjectSet>,
    ) -> Result<Staged, CacheError> {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            // One byte more than expected reveals a file that grew.
            buf.resize(before.size as usize + 1, 0);
            let n = read_expected(&mut f, buf, before.size as usize)
                .map_err(|e| HashError::io(src, e))?;
            check_unchanged(src, &f, &before, n as u64)?;
            let data = &buf[..n];
            let mut h = StreamHasher::new(kind);
            for chunk in data.chunks(CHUNK) {
                h.update(chunk);
            }
            let oid = ObjectId::from_digest(h.finish(), false);
            self.stage_bytes_checked(oid, kind, data, may_exist(listed, &oid))
        })
    }

    /// Stages bytes already in memory (a `.dir` manifest) under their md5.
    pub fn stage_bytes(
        &self,
        oid: ObjectId,
        kind: HashKind,
        bytes: &[u8],
    ) -> Result<Staged, CacheError> {
        self.stage_bytes_checked(oid, kind, bytes, true)
    }

    /// [`Cache::stage_bytes`]; `check` false skips looking for an existing object.
    fn stage_bytes_checked(
        &self,
        oid: ObjectId,
        kind: HashKind,
        bytes: &[u8],
        check: bool,
    ) -> Result<Staged, CacheError> {
        if check && self.is_protected(&oid, kind) {
            return Ok(Staged {
                oid,
                size: bytes.len() as u64,
                kind,
                tmp: None,
                synced: true,
            });
        }
        let dest = self.object_path(&oid, kind);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        self.make_dir(&dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(".")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o444))
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        let (mut file, path) = tmp.into_parts();
        file.write_all(bytes).map_err(io_err(&path))?;
        if umask() & 0o444 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o444))
                .map_err(io_err(&path))?;
        }
        Ok(Staged {
            oid,
            size: bytes.len() as u64,
            kind,
            tmp: Some(path),
            synced: false,
        })
    }

    /// A temp file in the folder where `oid` will live, for bytes arriving from elsewhere (a
    /// remote). Once they are verified, [`Staged::received`] hands the file to [`Cache::commit`].
    pub fn temp_for(
        &self,
        oid: &ObjectId,
        kind: HashKind,
    ) -> Result<tempfile::NamedTempFile, CacheError> {
        let dest = self.object_path(oid, kind);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        self.temp_in(&dir)
    }

    /// An existing object with DVC's read-only mode is trusted as whole and correct.
    pub fn is_protected(&self, oid: &ObjectId, kind: HashKind) -> bool {
        std::fs::metadata(self.object_path(oid, kind))
            .map(|m| m.is_file() && m.permissions().mode() & 0o777 == 0o444)
            .unwrap_or(false)
    }

    /// Makes staged objects durable, then renames each into place. Objects are renamed in the
    /// order given, so a `.dir` staged last appears only after all of its entries.
    pub fn commit(&self, staged: Vec<Staged>) -> Result<(), CacheError> {
        self.persist(staged.into_iter().filter_map(Pending::of).collect())
    }

    /// Runs `work`, which hands objects to the [`Committer`] as it stages them, while a second
    /// thread makes them durable in batches (one `syncfs` each) and renames each batch into place
    /// in the order handed over. Writing back and renaming thus overlap with staging instead of
    /// following it. Returns once everything handed over is in place; if `work` fails, what was
    /// not renamed yet is deleted (objects already in place are whole).
    pub fn commit_streaming<R>(
        &self,
        work: impl FnOnce(&Committer) -> Result<R, CacheError>,
    ) -> Result<R, CacheError> {
        let committer = Committer::default();
        std::thread::scope(|s| {
            // Also on a panic in `work`: the background thread must not wait for more.
            let guard = CloseOnDrop(&committer);
            let background = s.spawn(|| self.run_committer(&committer));
            let result = work(&committer);
            committer.close(result.is_err());
            let background = background.join().unwrap_or_else(|_| {
                Err(CacheError::Io {
                    path: self.root.clone(),
                    source: std::io::Error::other("storing objects in the cache panicked"),
                })
            });
            drop(guard);
            let r = result?;
            background?;
            Ok(r)
        })
    }

    fn run_committer(&self, c: &Committer) -> Result<(), CacheError> {
        loop {
            let (batch, last) = {
                let mut q = c.lock();
                while !q.closed && !q.full() {
                    q = c.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if q.aborted {
                    // The staged temp files go with the committer.
                    return Ok(());
                }
                q.bytes = 0;
                (std::mem::take(&mut q.items), q.closed)
            };
            self.persist(batch)?;
            if last {
                return Ok(());
            }
        }
    }

    fn persist(&self, pending: Vec<Pending>) -> Result<(), CacheError> {
        let unsynced: Vec<&Pending> = pending.iter().filter(|p| !p.synced).collect();
        match unsynced.as_slice() {
            [] => {}
            [one] => File::open(&one.tmp)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&one.tmp))?,
            [first, ..] => {
                // One filesystem-wide flush instead of thousands of fsyncs.
                let f = File::open(&first.tmp).map_err(io_err(&first.tmp))?;
                lode_objio::flush::syncfs(&f).map_err(io_err(&self.root))?;
            }
        }
        for p in pending {
            let dest = self.object_path(&p.oid, p.kind);
            if let Some(dir) = dest.parent() {
                self.make_dir(dir)?;
            }
            p.tmp.persist(&dest).map_err(|e| CacheError::Io {
                path: dest.clone(),
                source: e.error,
            })?;
        }
        Ok(())
    }

    /// Stores bytes under their md5 if absent.
    pub fn insert_bytes(
        &self,
        oid: ObjectId,
        kind: HashKind,
        bytes: &[u8],
    ) -> Result<(), CacheError> {
        let s = self.stage_bytes(oid, kind, bytes)?;
        self.commit(vec![s])
    }

    /// Reads and parses a `.dir` object.
    pub fn read_manifest(&self, oid: &ObjectId, kind: HashKind) -> Result<Manifest, CacheError> {
        let p = self.object_path(oid, kind);
        let bytes = std::fs::read(&p).map_err(io_err(&p))?;
        Manifest::parse(&bytes).map_err(|source| CacheError::BadManifest { oid: *oid, source })
    }

    /// Puts object `oid` at `dest` with the first working `cache.type`, replacing what is there.
    pub fn link_to(
        &self,
        oid: &ObjectId,
        kind: HashKind,
        dest: &Path,
        isexec: bool,
    ) -> Result<(), CacheError> {
        self.link_to_stat(oid, kind, dest, isexec).map(|_| ())
    }

    /// [`Cache::link_to`], returning the stat of the linked file for the hash cache.
    pub fn link_to_stat(
        &self,
        oid: &ObjectId,
        kind: HashKind,
        dest: &Path,
        isexec: bool,
    ) -> Result<Stat, CacheError> {
        let src = self.object_path(oid, kind);
        self.links.link(&src, dest, isexec)
    }

    /// The link types in the order they are tried.
    pub fn link_types(&self) -> &[LinkType] {
        self.links.types()
    }
}

/// A written temp file waiting to be renamed to its object's name.
struct Pending {
    tmp: TempPath,
    oid: ObjectId,
    kind: HashKind,
    size: u64,
    synced: bool,
}

impl Pending {
    fn of(s: Staged) -> Option<Pending> {
        Some(Pending {
            tmp: s.tmp?,
            oid: s.oid,
            kind: s.kind,
            size: s.size,
            synced: s.synced,
        })
    }
}

/// Hands staged objects to the background thread of [`Cache::commit_streaming`].
#[derive(Default)]
pub struct Committer {
    queue: std::sync::Mutex<Queue>,
    ready: std::sync::Condvar,
}

#[derive(Default)]
struct Queue {
    items: Vec<Pending>,
    bytes: u64,
    closed: bool,
    aborted: bool,
}

/// A batch this large is worth a `syncfs`: flushing costs a fixed device round trip besides the
/// data, so tiny batches would pay it over and over.
const BATCH_BYTES: u64 = 16 << 20;
const BATCH_FILES: usize = 1024;

impl Queue {
    fn full(&self) -> bool {
        self.bytes >= BATCH_BYTES || self.items.len() >= BATCH_FILES
    }
}

impl Committer {
    /// Queues a staged object; one that was already in the cache needs nothing.
    pub fn push(&self, staged: Staged) {
        let Some(p) = Pending::of(staged) else {
            return;
        };
        let mut q = self.lock();
        q.bytes += p.size;
        q.items.push(p);
        if q.full() {
            self.ready.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self, abort: bool) {
        let mut q = self.lock();
        if !q.closed {
            q.closed = true;
            q.aborted = abort;
        }
        self.ready.notify_one();
    }
}

struct CloseOnDrop<'a>(&'a Committer);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close(true);
    }
}

/// Object ids found in the cache.
pub type ObjectSet = std::collections::HashSet<ObjectId>;

/// Whether `oid` may be in the cache, given an optional earlier listing.
fn may_exist(listed: Option<&ObjectSet>, oid: &ObjectId) -> bool {
    listed.is_none_or(|l| l.contains(oid))
}

/// Reads a file expected to hold `expected` bytes into `buf` (at least one byte longer). A read
/// that stops short of the buffer at `expected` is taken as the end: the `fstat` that follows
/// ([`check_unchanged`]) catches a file that grew or changed meanwhile, so the extra `read`
/// that would return 0 is skipped.
fn read_expected(f: &mut File, buf: &mut [u8], expected: usize) -> std::io::Result<usize> {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if n == expected {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads the whole of `src`, expected to match `before`, into `arena` from `start` on (growing
/// it if needed); returns where its bytes are.
fn read_whole(
    src: &Path,
    before: &Stat,
    arena: &mut Vec<u8>,
    start: usize,
) -> Result<std::ops::Range<usize>, CacheError> {
    let mut f = File::open(src).map_err(|e| HashError::io(src, e))?;
    let expected = before.size as usize;
    // One byte more than expected reveals a file that grew.
    let room = start + expected + 1;
    if arena.len() < room {
        arena.resize(room, 0);
    }
    let n = read_expected(&mut f, &mut arena[start..room], expected)
        .map_err(|e| HashError::io(src, e))?;
    check_unchanged(src, &f, before, n as u64)?;
    Ok(start..start + n)
}

/// Files up to this size are stored by [`Cache::stage_group`]: read whole, several at a time.
pub const GROUP_FILE_MAX: u64 = 128 << 10;

/// Files up to this size are read into memory whole when stored.
const SMALL: u64 = 4 * CHUNK as u64;

/// Fails if the file's stat moved since `before` or its length differs from what was read.
fn check_unchanged(src: &Path, f: &File, before: &Stat, read: u64) -> Result<(), CacheError> {
    let after = Stat::of(&f.metadata().map_err(|e| HashError::io(src, e))?);
    if *before != after || read != after.size {
        return Err(HashError::Changed {
            path: src.to_path_buf(),
        }
        .into());
    }
    Ok(())
}

/// Copies `src` to the new file `dst` and hashes the same bytes. Large files hash on a second
/// thread while the next chunk is read and written, so storing costs about one MD5 pass. Bytes
/// are hashed in whole [`CHUNK`]s, as the legacy hash requires.
pub fn copy_hashing(
    src: &mut impl std::io::Read,
    dst: &File,
    kind: HashKind,
) -> std::io::Result<([u8; 16], u64)> {
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<AlignedBuf>(4);
        let (back_tx, back_rx) = std::sync::mpsc::sync_channel::<AlignedBuf>(8);
        let hasher = s.spawn(move || {
            let mut h = StreamHasher::new(kind);
            for buf in rx {
                h.update(buf.data());
                let _ = back_tx.send(buf);
            }
            h.finish()
        });
        let mut total = 0u64;
        let mut allocated = 0;
        let mut out = ObjectWriter::new(dst);
        let result = (|| -> std::io::Result<()> {
            loop {
                let mut buf = match back_rx.try_recv() {
                    Ok(b) => b,
                    Err(_) if allocated < 6 => {
                        allocated += 1;
                        AlignedBuf::new(CHUNK)
                    }
                    Err(_) => back_rx
                        .recv()
                        .map_err(|_| std::io::Error::other("hasher stopped"))?,
                };
                let n = read_full(src, buf.space())?;
                if n == 0 {
                    break;
                }
                buf.set_len(n);
                out.write(buf.data())?;
                total += n as u64;
                tx.send(buf)
                    .map_err(|_| std::io::Error::other("hasher stopped"))?;
                if n < CHUNK {
                    break;
                }
            }
            Ok(())
        })();
        drop(tx);
        let digest = hasher
            .join()
            .map_err(|_| std::io::Error::other("hasher panicked"))?;
        result.map(|()| (digest, total))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path) -> Cache {
        Cache::new(dir.join("cache"), vec![LinkType::Copy], Sharing::Private)
    }

    fn entries_where(root: &Path, keep: impl Fn(&walkdir::DirEntry) -> bool) -> Vec<PathBuf> {
        walkdir::WalkDir::new(root)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| keep(e))
            .map(|e| e.into_path())
            .collect()
    }

    #[test]
    fn stages_and_commits_read_only() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        let src = d.path().join("data.csv");
        std::fs::write(&src, b"a,b\r\n1,2\r\n").unwrap();
        let s = c.stage_file(&src, HashKind::Md5).unwrap();
        assert_eq!(s.oid.to_string(), "b202f333fba4fd38d4b8e5e693077aab");
        c.commit(vec![s]).unwrap();
        let obj = d
            .path()
            .join("cache/files/md5/b2/02f333fba4fd38d4b8e5e693077aab");
        assert_eq!(std::fs::read(&obj).unwrap(), b"a,b\r\n1,2\r\n");
        assert_eq!(
            std::fs::metadata(&obj).unwrap().permissions().mode() & 0o777,
            0o444
        );
        let legacy = c.stage_file(&src, HashKind::Md5Dos2unix).unwrap();
        assert_eq!(legacy.oid.to_string(), "e5ebd4c02cefbe7955977c67ada242b7");
        c.commit(vec![legacy]).unwrap();
        // The legacy object keeps the raw bytes.
        assert_eq!(
            std::fs::read(d.path().join("cache/e5/ebd4c02cefbe7955977c67ada242b7")).unwrap(),
            b"a,b\r\n1,2\r\n"
        );
        // Nothing but whole objects is left behind.
        let stray: Vec<_> = walkdir::WalkDir::new(d.path().join("cache"))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(stray.is_empty());
    }

    #[test]
    fn a_file_changed_while_stored_leaves_no_object() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        let src = d.path().join("f");
        std::fs::write(&src, b"first").unwrap();
        let before = Stat::of(&std::fs::metadata(&src).unwrap());
        std::fs::write(&src, b"second version").unwrap();
        let r = c.stage_file_at(&src, HashKind::Md5, Some(before));
        assert!(matches!(
            r,
            Err(CacheError::Hash(HashError::Changed { .. }))
        ));
        let objects = entries_where(&d.path().join("cache"), |e| e.file_type().is_file());
        assert!(objects.is_empty(), "{objects:?}");
    }

    #[test]
    fn staging_against_a_stale_listing_keeps_objects_whole() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        let src = d.path().join("f");
        std::fs::write(&src, b"same bytes").unwrap();
        let first = c.stage_file(&src, HashKind::Md5).unwrap();
        let oid = first.oid;
        c.commit(vec![first]).unwrap();
        // The listing predates the object: it is written again and replaces itself.
        let stale = ObjectSet::new();
        let again = c
            .stage_file_listed(&src, HashKind::Md5, None, Some(&stale))
            .unwrap();
        assert!(again.tmp.is_some());
        c.commit(vec![again]).unwrap();
        let obj = c.object_path(&oid, HashKind::Md5);
        assert_eq!(std::fs::read(&obj).unwrap(), b"same bytes");
        assert_eq!(
            std::fs::metadata(&obj).unwrap().permissions().mode() & 0o777,
            0o444
        );
        // A current listing skips it.
        let now = c.list_objects(HashKind::Md5);
        assert!(now.contains(&oid));
        let skipped = c
            .stage_file_listed(&src, HashKind::Md5, None, Some(&now))
            .unwrap();
        assert!(skipped.tmp.is_none());
    }

    #[test]
    fn a_small_file_that_grew_after_its_stat_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        let src = d.path().join("f");
        std::fs::write(&src, b"12345").unwrap();
        let before = Stat::of(&std::fs::metadata(&src).unwrap());
        std::fs::write(&src, b"1234567890").unwrap();
        let r = c.stage_file_listed(&src, HashKind::Md5, Some(before), Some(&ObjectSet::new()));
        assert!(matches!(
            r,
            Err(CacheError::Hash(HashError::Changed { .. }))
        ));
    }

    #[test]
    fn listing_agrees_with_stat_for_large_sets() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        let mut oids = Vec::new();
        for i in 0..2100u32 {
            let bytes = i.to_le_bytes();
            let oid = ObjectId::from_digest(crate::hash::md5_bytes(&bytes), false);
            oids.push((oid, bytes));
        }
        let staged: Vec<_> = oids
            .iter()
            .map(|(o, b)| c.stage_bytes(*o, HashKind::Md5, b).unwrap())
            .collect();
        c.commit(staged).unwrap();
        let ids: Vec<ObjectId> = oids.iter().map(|(o, _)| *o).collect();
        assert!(c.contains_all(&ids, HashKind::Md5));
        let mut more = ids.clone();
        more.push(ObjectId::from_digest([7; 16], false));
        assert!(!c.contains_all(&more, HashKind::Md5));
        assert!(!c.contains_all(&ids, HashKind::Md5Dos2unix));
    }

    #[test]
    fn streaming_commit_stores_all_and_drops_the_rest_on_failure() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        let objects: Vec<(ObjectId, Vec<u8>)> = (0..(BATCH_FILES as u32 * 3 + 7))
            .map(|i| {
                let bytes = format!("object {i}").into_bytes();
                (
                    ObjectId::from_digest(crate::hash::md5_bytes(&bytes), false),
                    bytes,
                )
            })
            .collect();
        c.commit_streaming(|committer| {
            for (oid, bytes) in &objects {
                committer.push(c.stage_bytes(*oid, HashKind::Md5, bytes)?);
            }
            Ok(())
        })
        .unwrap();
        for (oid, bytes) in &objects {
            let obj = c.object_path(oid, HashKind::Md5);
            assert_eq!(&std::fs::read(&obj).unwrap(), bytes);
            assert_eq!(
                std::fs::metadata(&obj).unwrap().permissions().mode() & 0o777,
                0o444
            );
        }
        let extra = ObjectId::from_digest(crate::hash::md5_bytes(b"extra"), false);
        let r: Result<(), CacheError> = c.commit_streaming(|committer| {
            committer.push(c.stage_bytes(extra, HashKind::Md5, b"extra")?);
            Err(CacheError::BadLinkType("failed".into()))
        });
        assert!(r.is_err());
        assert!(!c.contains(&extra, HashKind::Md5));
        let stray = entries_where(c.root(), |e| {
            e.file_name().to_string_lossy().ends_with(".tmp")
        });
        assert!(stray.is_empty(), "{stray:?}");
    }

    #[test]
    fn group_staging_hashes_each_file_and_keeps_errors_in_place() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        let sizes = [0usize, 1, 55, 56, 64, 65, 1000, 70_000, 3, 128 << 10];
        let mut files = Vec::new();
        for (i, n) in sizes.iter().enumerate() {
            let p = d.path().join(format!("f{i}"));
            let bytes: Vec<u8> = (0..*n).map(|j| (j * 31 + i) as u8).collect();
            std::fs::write(&p, &bytes).unwrap();
            let st = Stat::of(&std::fs::metadata(&p).unwrap());
            files.push((p, st, bytes));
        }
        // One file vanishes and one grows after the walk.
        std::fs::remove_file(&files[2].0).unwrap();
        std::fs::write(&files[5].0, vec![9u8; 100]).unwrap();
        let group: Vec<(PathBuf, Stat)> = files.iter().map(|(p, st, _)| (p.clone(), *st)).collect();
        let staged = c.stage_group(&group, HashKind::Md5, Some(&ObjectSet::new()));
        assert_eq!(staged.len(), files.len());
        let mut ok = Vec::new();
        for (i, (s, (_, _, bytes))) in staged.into_iter().zip(&files).enumerate() {
            match i {
                2 => assert!(matches!(s, Err(CacheError::Hash(HashError::Io { .. })))),
                5 => assert!(matches!(
                    s,
                    Err(CacheError::Hash(HashError::Changed { .. }))
                )),
                _ => {
                    let s = s.unwrap();
                    assert_eq!(s.oid.digest(), &crate::hash::md5_bytes(bytes), "file {i}");
                    ok.push((s.oid, bytes.clone()));
                    c.commit(vec![s]).unwrap();
                }
            }
        }
        for (oid, bytes) in ok {
            assert_eq!(
                std::fs::read(c.object_path(&oid, HashKind::Md5)).unwrap(),
                bytes
            );
        }
    }

    #[test]
    fn large_files_hash_while_copying() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        let src = d.path().join("big");
        let data: Vec<u8> = (0..(9 * CHUNK + 123)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let s = c.stage_file(&src, HashKind::Md5).unwrap();
        assert_eq!(s.oid.digest(), &crate::hash::md5_bytes(&data));
        assert_eq!(s.size, data.len() as u64);
        c.commit(vec![s]).unwrap();
    }

    #[test]
    fn links_copies_with_exec_bit() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        let oid = ObjectId::from_digest(crate::hash::md5_bytes(b"x"), false);
        c.insert_bytes(oid, HashKind::Md5, b"x").unwrap();
        let dest = d.path().join("w/run.sh");
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        c.link_to(&oid, HashKind::Md5, &dest, true).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"x");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, (0o666 & !umask()) | 0o100);
    }
}
