//! The persistent hash cache: remembers each file's hash under `.dvc/tmp/lode-hashes` keyed on
//! (path, inode, size, mtime ns), so an unchanged tree is never read again.
//!
//! It is disposable: nothing in it cannot be recomputed. If it can't be opened because it is
//! damaged, it is deleted and rebuilt; if another lode holds it, this run works without it.
//! Directories get a summary entry keyed on a fingerprint of every file's stat, so `status` on an
//! unchanged directory costs one lookup after the stat walk.

use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};

use super::md5_bytes;
use super::walk::{FileEntry, Stat};
use crate::printer::Printer;

const FILES: &[u8] = b"files";
const DIR_FILES: &[u8] = b"dir-files";
const COMPLETE: &[u8] = b"complete";

/// How recent an mtime must be to count as racy: more than a filesystem clock tick.
pub const RACY_NS: i64 = 100_000_000;

pub fn racy_horizon() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(i64::MAX);
    now - RACY_NS
}
const DIRS: &[u8] = b"dirs";

/// A directory's hash and totals, as recorded last time it was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirSummary {
    pub oid: ObjectId,
    pub size: u64,
    pub nfiles: u64,
}

/// What is remembered of one file: (inode, size, mtime ns) and its digest.
type Record = ((u64, u64, i64), [u8; 16]);

/// The file hashes of one tracked directory, kept as a single record: one lookup for the whole
/// directory instead of one per file.
#[derive(Debug, Default)]
pub struct DirFiles {
    map: std::collections::HashMap<String, Record>,
    changed: bool,
}

impl DirFiles {
    /// The recorded hash of `rel`, if its stat is unchanged.
    pub fn get(&self, rel: &str, stat: &Stat) -> Option<ObjectId> {
        let (key, digest) = self.map.get(rel)?;
        (*key == (stat.ino, stat.size, stat.mtime_ns))
            .then(|| ObjectId::from_digest(*digest, false))
    }

    /// Records a hash computed by reading the file, unless the file is racy (see
    /// [`HashState::put_files`]).
    pub fn insert_read(&mut self, rel: &str, stat: &Stat, oid: ObjectId) {
        if stat.mtime_ns < racy_horizon() {
            self.insert_written(rel, stat, oid);
        }
    }

    /// Records the hash of a file lode wrote itself from the cache.
    pub fn insert_written(&mut self, rel: &str, stat: &Stat, oid: ObjectId) {
        let v = ((stat.ino, stat.size, stat.mtime_ns), *oid.digest());
        if self.map.get(rel) != Some(&v) {
            self.map.insert(rel.to_string(), v);
            self.changed = true;
        }
    }

    /// Drops entries for files that are gone.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let before = self.map.len();
        self.map.retain(|k, _| keep(k));
        self.changed |= self.map.len() != before;
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.map.len() * 72);
        for (rel, ((ino, size, mtime), digest)) in &self.map {
            v.extend_from_slice(&(rel.len() as u32).to_le_bytes());
            v.extend_from_slice(rel.as_bytes());
            v.extend_from_slice(&ino.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&mtime.to_le_bytes());
            v.extend_from_slice(digest);
        }
        v
    }

    fn decode(mut b: &[u8]) -> Option<DirFiles> {
        let mut map = std::collections::HashMap::new();
        let take = |b: &mut &[u8], n: usize| -> Option<Vec<u8>> {
            if b.len() < n {
                return None;
            }
            let (h, t) = b.split_at(n);
            *b = t;
            Some(h.to_vec())
        };
        while !b.is_empty() {
            let len = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
            let rel = String::from_utf8(take(&mut b, len)?).ok()?;
            let ino = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
            let size = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
            let mtime = i64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
            let digest: [u8; 16] = take(&mut b, 16)?.try_into().ok()?;
            map.insert(rel, ((ino, size, mtime), digest));
        }
        Some(DirFiles {
            map,
            changed: false,
        })
    }
}

pub struct HashState {
    dir_files: Option<sled::Tree>,
    /// Directory objects found complete in the cache, with the fingerprint of the cache folders
    /// at the time (see [`crate::cache::Cache::folders_fingerprint`]).
    complete: Option<sled::Tree>,
    files: Option<sled::Tree>,
    dirs: Option<sled::Tree>,
    db: Option<sled::Db>,
}

impl HashState {
    /// A state that remembers nothing (used when the real one is unavailable).
    pub fn disabled() -> HashState {
        HashState {
            dir_files: None,
            complete: None,
            files: None,
            dirs: None,
            db: None,
        }
    }

    /// Opens (or creates) the cache in `tmp_dir`; one found broken is rebuilt, with a warning.
    pub fn open(tmp_dir: &Path, out: Printer) -> HashState {
        let path = tmp_dir.join("lode-hashes");
        match try_open(&path) {
            Ok(s) => s,
            Err(e) if is_locked(&e) => HashState::disabled(),
            Err(e) => {
                out.warn(format_args!(
                    "hash cache '{}' is unusable ({e}); rebuilding it",
                    path.display()
                ));
                let _ = std::fs::remove_dir_all(&path);
                try_open(&path).unwrap_or_else(|_| HashState::disabled())
            }
        }
    }

    /// The recorded hash of a file, if its stat is unchanged since.
    pub fn get_file(&self, kind: HashKind, path: &Path, stat: &Stat) -> Option<ObjectId> {
        let tree = self.files.as_ref()?;
        let v = tree.get(file_key(kind, path)).ok()??;
        let (s, digest) = decode_file(&v)?;
        (s == (stat.ino, stat.size, stat.mtime_ns)).then(|| ObjectId::from_digest(digest, false))
    }

    /// Records hashes of files that were read, in one batch. A file modified within the last
    /// [`RACY_NS`] is left out: another write in the same clock tick would keep its mtime, so its
    /// stat can't vouch for the bytes that were hashed ("racy" entries, as Git calls them).
    pub fn put_files<'a>(
        &self,
        kind: HashKind,
        items: impl IntoIterator<Item = (PathBuf, &'a Stat, ObjectId)>,
    ) {
        let horizon = racy_horizon();
        self.put(
            kind,
            items.into_iter().filter(|(_, st, _)| st.mtime_ns < horizon),
        );
    }

    /// Records hashes of files lode has just written itself from the cache (checkout), where the
    /// content is known without reading it back.
    pub fn put_written_files<'a>(
        &self,
        kind: HashKind,
        items: impl IntoIterator<Item = (PathBuf, &'a Stat, ObjectId)>,
    ) {
        self.put(kind, items.into_iter());
    }

    fn put<'a>(&self, kind: HashKind, items: impl Iterator<Item = (PathBuf, &'a Stat, ObjectId)>) {
        let Some(tree) = &self.files else { return };
        let mut batch = sled::Batch::default();
        for (path, stat, oid) in items {
            batch.insert(
                file_key(kind, &path),
                encode_file(stat, oid.digest()).to_vec(),
            );
        }
        let _ = tree.apply_batch(batch);
    }

    /// The recorded summary of a directory whose files still have exactly these stats.
    pub fn get_dir(&self, kind: HashKind, dir: &Path, files: &[FileEntry]) -> Option<DirSummary> {
        let tree = self.dirs.as_ref()?;
        let v = tree.get(file_key(kind, dir)).ok()??;
        if v.len() != 16 + 16 + 16 || v[..16] != fingerprint(files) {
            return None;
        }
        let digest: [u8; 16] = v[16..32].try_into().ok()?;
        let size = u64::from_le_bytes(v[32..40].try_into().ok()?);
        let nfiles = u64::from_le_bytes(v[40..48].try_into().ok()?);
        Some(DirSummary {
            oid: ObjectId::from_digest(digest, true),
            size,
            nfiles,
        })
    }

    /// Records a directory's summary, unless one of its files is racy (see [`Self::put_files`]).
    /// Records a directory's summary, unless one of its files is racy (see [`Self::put_files`]).
    pub fn put_dir(&self, kind: HashKind, dir: &Path, files: &[FileEntry], sum: DirSummary) {
        let horizon = racy_horizon();
        if files.iter().all(|f| f.stat.mtime_ns < horizon) {
            self.put_written_dir(kind, dir, files, sum);
        }
    }

    /// Records the summary of a directory lode has just written from the cache.
    pub fn put_written_dir(
        &self,
        kind: HashKind,
        dir: &Path,
        files: &[FileEntry],
        sum: DirSummary,
    ) {
        let Some(tree) = &self.dirs else { return };
        let mut v = Vec::with_capacity(48);
        v.extend_from_slice(&fingerprint(files));
        v.extend_from_slice(sum.oid.digest());
        v.extend_from_slice(&sum.size.to_le_bytes());
        v.extend_from_slice(&sum.nfiles.to_le_bytes());
        let _ = tree.insert(file_key(kind, dir), v);
    }

    /// The recorded file hashes of directory `dir` (empty when there are none).
    pub fn get_dir_files(&self, kind: HashKind, dir: &Path) -> DirFiles {
        self.dir_files
            .as_ref()
            .and_then(|t| t.get(file_key(kind, dir)).ok().flatten())
            .and_then(|v| DirFiles::decode(&v))
            .unwrap_or_default()
    }

    /// Stores `files` as the record of `dir`, if anything in it changed.
    pub fn put_dir_files(&self, kind: HashKind, dir: &Path, files: &DirFiles) {
        if let (Some(t), true) = (&self.dir_files, files.changed) {
            let _ = t.insert(file_key(kind, dir), files.encode());
        }
    }

    /// Whether directory object `oid` was found complete in the cache at `cache_root` while the
    /// cache folders had exactly fingerprint `folders`.
    pub fn is_complete(
        &self,
        kind: HashKind,
        cache_root: &Path,
        oid: &ObjectId,
        folders: &[u8; 16],
    ) -> bool {
        let Some(tree) = &self.complete else {
            return false;
        };
        matches!(tree.get(complete_key(kind, cache_root, oid)), Ok(Some(v)) if v.as_ref() == folders)
    }

    /// Records that directory object `oid` and all its entries are in the cache while the cache
    /// folders have fingerprint `folders`.
    pub fn put_complete(
        &self,
        kind: HashKind,
        cache_root: &Path,
        oid: &ObjectId,
        folders: &[u8; 16],
    ) {
        if let Some(tree) = &self.complete {
            let _ = tree.insert(complete_key(kind, cache_root, oid), folders.to_vec());
        }
    }

    /// Makes the recorded entries durable; losing them only costs re-hashing.
    pub fn flush(&self) {
        if let Some(db) = &self.db {
            let _ = db.flush();
        }
    }
}

fn try_open(path: &Path) -> Result<HashState, sled::Error> {
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(64 << 20)
        .flush_every_ms(None)
        .open()?;
    Ok(HashState {
        dir_files: Some(db.open_tree(DIR_FILES)?),
        complete: Some(db.open_tree(COMPLETE)?),
        files: Some(db.open_tree(FILES)?),
        dirs: Some(db.open_tree(DIRS)?),
        db: Some(db),
    })
}

fn is_locked(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock")
        }
        _ => false,
    }
}

fn file_key(kind: HashKind, path: &Path) -> Vec<u8> {
    let bytes = path.as_os_str().as_encoded_bytes();
    let mut k = Vec::with_capacity(bytes.len() + 1);
    k.push(match kind {
        HashKind::Md5 => b'm',
        HashKind::Md5Dos2unix => b'l',
    });
    k.extend_from_slice(bytes);
    k
}

fn complete_key(kind: HashKind, cache_root: &Path, oid: &ObjectId) -> Vec<u8> {
    let mut k = file_key(kind, cache_root);
    k.push(0);
    k.extend_from_slice(oid.digest());
    k
}

fn encode_file(stat: &Stat, digest: &[u8; 16]) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&stat.ino.to_le_bytes());
    v[8..16].copy_from_slice(&stat.size.to_le_bytes());
    v[16..24].copy_from_slice(&stat.mtime_ns.to_le_bytes());
    v[24..].copy_from_slice(digest);
    v
}

fn decode_file(v: &[u8]) -> Option<((u64, u64, i64), [u8; 16])> {
    if v.len() != 40 {
        return None;
    }
    let ino = u64::from_le_bytes(v[..8].try_into().ok()?);
    let size = u64::from_le_bytes(v[8..16].try_into().ok()?);
    let mtime = i64::from_le_bytes(v[16..24].try_into().ok()?);
    Some(((ino, size, mtime), v[24..].try_into().ok()?))
}

/// A digest of every file's relpath and stat: equal fingerprints mean nothing was touched.
fn fingerprint(files: &[FileEntry]) -> [u8; 16] {
    let mut buf = Vec::with_capacity(files.len() * 48);
    for f in files {
        buf.extend_from_slice(f.rel.as_bytes());
        buf.push(0);
        buf.extend_from_slice(&f.stat.ino.to_le_bytes());
        buf.extend_from_slice(&f.stat.size.to_le_bytes());
        buf.extend_from_slice(&f.stat.mtime_ns.to_le_bytes());
    }
    md5_bytes(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printer::Verbosity;

    fn quiet() -> Printer {
        Printer::new(Verbosity::Quiet)
    }

    #[test]
    fn remembers_until_stat_changes() {
        let d = tempfile::tempdir().unwrap();
        let st = Stat {
            ino: 1,
            size: 2,
            mtime_ns: 3,
            mode: 0o644,
        };
        let oid: ObjectId = "b202f333fba4fd38d4b8e5e693077aab".parse().unwrap();
        let p = d.path().join("f");
        {
            let s = HashState::open(d.path(), quiet());
            s.put_files(HashKind::Md5, [(p.clone(), &st, oid)]);
            s.flush();
        }
        let s = HashState::open(d.path(), quiet());
        assert_eq!(s.get_file(HashKind::Md5, &p, &st), Some(oid));
        assert_eq!(s.get_file(HashKind::Md5Dos2unix, &p, &st), None);
        let changed = Stat { mtime_ns: 4, ..st };
        assert_eq!(s.get_file(HashKind::Md5, &p, &changed), None);
    }

    #[test]
    fn a_cache_held_by_another_run_is_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let st = Stat {
            ino: 1,
            size: 2,
            mtime_ns: 3,
            mode: 0,
        };
        let oid: ObjectId = "b202f333fba4fd38d4b8e5e693077aab".parse().unwrap();
        let p = d.path().join("f");
        let first = HashState::open(d.path(), quiet());
        first.put_files(HashKind::Md5, [(p.clone(), &st, oid)]);
        let second = HashState::open(d.path(), quiet());
        assert_eq!(second.get_file(HashKind::Md5, &p, &st), None);
        assert_eq!(first.get_file(HashKind::Md5, &p, &st), Some(oid));
    }

    #[test]
    fn racy_entries_are_not_recorded() {
        let d = tempfile::tempdir().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let st = Stat {
            ino: 1,
            size: 2,
            mtime_ns: now,
            mode: 0,
        };
        let oid: ObjectId = "b202f333fba4fd38d4b8e5e693077aab".parse().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        let s = HashState::open(d.path(), quiet());
        s.put_files(HashKind::Md5, [(a.clone(), &st, oid)]);
        s.put_written_files(HashKind::Md5, [(b.clone(), &st, oid)]);
        assert_eq!(s.get_file(HashKind::Md5, &a, &st), None);
        assert_eq!(s.get_file(HashKind::Md5, &b, &st), Some(oid));
    }

    #[test]
    fn directory_records_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let st = Stat {
            ino: 1,
            size: 2,
            mtime_ns: 3,
            mode: 0,
        };
        let oid: ObjectId = "b202f333fba4fd38d4b8e5e693077aab".parse().unwrap();
        let dir = d.path().join("data");
        {
            let s = HashState::open(d.path(), quiet());
            let mut f = s.get_dir_files(HashKind::Md5, &dir);
            f.insert_read("a/\u{e9}.txt", &st, oid);
            f.insert_read("b", &st, oid);
            f.retain(|r| r != "b");
            s.put_dir_files(HashKind::Md5, &dir, &f);
            s.flush();
        }
        let s = HashState::open(d.path(), quiet());
        let f = s.get_dir_files(HashKind::Md5, &dir);
        assert_eq!(f.get("a/\u{e9}.txt", &st), Some(oid));
        assert_eq!(f.get("b", &st), None);
        assert_eq!(f.get("a/\u{e9}.txt", &Stat { size: 9, ..st }), None);
        assert!(s
            .get_dir_files(HashKind::Md5Dos2unix, &dir)
            .get("a/\u{e9}.txt", &st)
            .is_none());
    }

    #[test]
    fn rebuilds_a_damaged_cache() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("lode-hashes");
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("conf"), b"\xff\xfe garbage").unwrap();
        std::fs::write(path.join("db"), b"garbage garbage garbage").unwrap();
        let s = HashState::open(d.path(), quiet());
        let st = Stat {
            ino: 1,
            size: 2,
            mtime_ns: 3,
            mode: 0,
        };
        let oid: ObjectId = "b202f333fba4fd38d4b8e5e693077aab".parse().unwrap();
        s.put_files(HashKind::Md5, [(path.join("x"), &st, oid)]);
        assert_eq!(s.get_file(HashKind::Md5, &path.join("x"), &st), Some(oid));
    }
}
