//! Where blobs live: `blobs/{kind}/{ab}/{cdef...}`, the open handles on the fan-out folders,
//! putting a new blob in place, listing, and moving blobs aside to `quarantine/`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};

use super::temp::{c_path, link_unnamed, unless_taken, TempBlob};
use super::FsStore;
use crate::store::{BlobKey, BlobMeta, ListedBlob, StoreError, StoreResult};

impl FsStore {
    /// Where a blob's file is (whether or not it exists).
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
    pub(super) fn blob_exists(&self, key: BlobKey) -> bool {
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

    /// A blob's size and time; `None` when it does not exist.
    pub(super) fn stat_now(&self, key: BlobKey) -> StoreResult<Option<BlobMeta>> {
        // A stat of a blob whose folder is cached takes a microsecond or two, far less than
        // handing it to the blocking pool and back.
        match fs::metadata(self.blob_path(key)) {
            Ok(m) => Ok(Some(meta_of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(format!("reading {key}"), e)),
        }
    }

    /// Puts a verified temp file in place (the caller decides when it is flushed). Returns the
    /// folder to sync and, for an unnamed file, the file, whose link count changed; `None`
    /// when the blob was already there.
    pub(super) fn place(
        &self,
        key: BlobKey,
        temp: TempBlob,
    ) -> StoreResult<Option<(PathBuf, Option<File>)>> {
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

    pub(super) fn list_blocking(&self, kind: HashKind) -> StoreResult<Vec<ListedBlob>> {
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

    pub(super) fn quarantine_blocking(&self, kind: HashKind, name: &str) -> StoreResult<bool> {
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

pub(super) fn meta_of(m: &fs::Metadata) -> BlobMeta {
    BlobMeta {
        size: m.len(),
        modified: m.modified().unwrap_or(std::time::UNIX_EPOCH),
    }
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
