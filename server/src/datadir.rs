//! The data folder: `lode.db`, `secret`, `blobs/`, `tmp/`, and the lock that keeps two servers
//! (or a server and `fsck`) from working on it at once.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DataDir {
    pub path: PathBuf,
}

/// Held while a server or fsck uses the folder; released when dropped (or the process dies).
pub struct DataLock {
    _file: File,
}

impl DataDir {
    /// Creates the folder (mode 0700) if needed.
    pub fn prepare(path: &Path) -> io::Result<DataDir> {
        if !path.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)?;
        }
        Ok(DataDir {
            path: path.to_path_buf(),
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.path.join("lode.db")
    }

    /// Takes the exclusive lock without waiting.
    pub fn lock(&self) -> io::Result<DataLock> {
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
