//! The data folder: `lode.db`, `secret`, `blobs/`, `tmp/`, and the lock that keeps two servers
//! (or a server and `fsck`) from working on it at once.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub(crate) struct DataDir {
    pub path: PathBuf,
}

/// Held while a server or fsck uses the folder; released when dropped (or the process dies).
pub(crate) struct DataLock {
    _file: File,
}

impl DataDir {
    /// Creates the folder (mode 0700) if needed; fails, changing nothing, when this user cannot
    /// write it.
    pub(crate) fn prepare(path: &Path) -> io::Result<DataDir> {
        if !path.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)?;
        }
        writable(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{e}: this user (uid {uid}) cannot write it; give it to that user (chown -R {uid}:{uid} on the folder) or run as the folder's owner",
                    uid = current_uid()
                ),
            )
        })?;
        Ok(DataDir {
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn db_path(&self) -> PathBuf {
        self.path.join("lode.db")
    }

    /// Takes the exclusive lock without waiting.
    pub(crate) fn lock(&self) -> io::Result<DataLock> {
        let p = self.path.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)?;
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{} is in use by another lode-server process (serve or fsck)",
                    self.path.display()
                ),
            ));
        }
        Ok(DataLock { _file: file })
    }
}

/// The effective user id of this process.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether this process may create and remove entries in the folder `path`.
pub fn writable(path: &Path) -> io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
