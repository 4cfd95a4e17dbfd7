//! The files uploads are written to before they are placed: unnamed (`O_TMPFILE`) where the
//! filesystem allows, else named files in `tmp/`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::FsStore;
use crate::store::{BlobKey, StoreError, StoreResult};

/// A new blob's bytes before they are placed.
///
/// Unnamed files (`O_TMPFILE`) are the rule: creating one takes no lock on `tmp/` (a named
/// file holds that folder's lock while the filesystem looks for a free inode, which on a busy
/// ext4 without a journal can take a long time, and every other upload and the commit's
/// renames wait for it), placing one locks only the blob's folder, and nothing of one remains
/// when it is dropped or after a crash. Where the filesystem has none, named files in `tmp/`,
/// deleted if dropped, emptied at start.
pub(super) enum TempBlob {
    Unnamed(File),
    /// The file's handle while it is kept open for the flush.
    Named(tempfile::TempPath, Option<File>),
}

/// Whether a temp file's handle stays open until its flush.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Handle {
    /// Kept: the upload is flushed soon, by its own commit.
    KeepOpen,
    /// Closed once written: a bulk upload stages thousands of files before committing them.
    Close,
}

impl TempBlob {
    pub(super) fn new(file: File, name: Option<tempfile::TempPath>, handle: Handle) -> TempBlob {
        match name {
            None => TempBlob::Unnamed(file),
            Some(path) => TempBlob::Named(path, (handle == Handle::KeepOpen).then_some(file)),
        }
    }

    /// The same file, its handle closed when it has a name.
    pub(super) fn without_handle(self) -> TempBlob {
        match self {
            TempBlob::Named(path, _) => TempBlob::Named(path, None),
            unnamed => unnamed,
        }
    }

    /// The file's handle when it is still open.
    pub(super) fn file(&self) -> Option<&File> {
        match self {
            TempBlob::Unnamed(f) | TempBlob::Named(_, Some(f)) => Some(f),
            TempBlob::Named(_, None) => None,
        }
    }

    /// Flushes the file's data (and the inode fields needed to read it) to the device.
    pub(super) fn sync_data(&self) -> io::Result<()> {
        match self {
            TempBlob::Unnamed(f) | TempBlob::Named(_, Some(f)) => f.sync_data(),
            TempBlob::Named(path, None) => File::open(path).and_then(|f| f.sync_data()),
        }
    }

    /// A handle to read the bytes with (by position: it may share its offset with others).
    pub(super) fn reopen(&self) -> io::Result<File> {
        match self {
            TempBlob::Unnamed(f) => f.try_clone(),
            TempBlob::Named(path, _) => File::open(path),
        }
    }
}

impl FsStore {
    /// A new file in `tmp/` for an upload: unnamed where the filesystem allows (`O_TMPFILE`),
    /// else named. Created read-only (the open handle can still write), as blobs stay once in
    /// place.
    pub(super) fn new_temp(&self) -> StoreResult<(File, Option<tempfile::TempPath>)> {
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

    /// Writes and drops a file in `tmp/`, proving the store takes writes.
    pub(super) fn write_probe(&self) -> StoreResult<()> {
        let (mut f, name) = self.new_temp()?;
        f.write_all(b"ready")
            .map_err(|e| StoreError::io("writing a probe file", e))?;
        drop(name);
        Ok(())
    }

    pub(super) fn link_way(&self) -> LinkWay {
        self.unnamed_temps.unwrap_or(LinkWay::Proc)
    }

    /// Gives an unnamed temp file a name in `tmp/` (a named one is returned as it is): its
    /// link count then reaches the disk with its data's flush, and it can be closed.
    pub(super) fn name_in_tmp(&self, key: BlobKey, temp: TempBlob) -> StoreResult<TempBlob> {
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

/// An error writing a blob: the disk is full, or another failure.
pub(super) fn write_err(key: BlobKey, e: io::Error) -> StoreError {
    if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
        StoreError::NoSpace(key)
    } else {
        StoreError::io(format!("writing {key}"), e)
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
pub(super) enum LinkWay {
    /// By the descriptor itself (`AT_EMPTY_PATH`): allowed unprivileged for a file the caller
    /// opened since Linux 6.10, and spares a path lookup in `/proc`.
    Descriptor,
    /// Through `/proc/self/fd`, which needs no privilege on older kernels.
    Proc,
}

/// Gives the unnamed file `file` the name `to` unless it exists: true when linked, false when
/// the name was taken. `to` is relative to `folder` when given.
pub(super) fn link_unnamed(
    file: &File,
    folder: Option<&File>,
    to: &Path,
    way: LinkWay,
) -> io::Result<bool> {
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

pub(super) fn c_path(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

/// The result of a syscall that puts a name in place unless it exists: true when it did,
/// false when the name was taken (`EEXIST`), else the error.
pub(super) fn unless_taken(rc: libc::c_int) -> io::Result<bool> {
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
pub(super) fn unnamed_temps_way(dir: &Path) -> Option<LinkWay> {
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
