//! `.dvc/tmp/lock`: the repository lock DVC takes (zc.lockfile: `flock(LOCK_EX | LOCK_NB)` on the
//! file, which then holds ` <pid>\n`). Taking the same lock keeps Lode and DVC from changing one
//! repository at the same time.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use crate::repo::RepoError;
use crate::LodeError;

const FAILED_TO_LOCK: &str = "Unable to acquire lock. Most likely another DVC process is running \
or was terminated abruptly. Check the page <https://dvc.org/doc/user-guide/troubleshooting#lock-issue> \
for other possible reasons and to learn how to resolve this.";

/// DVC tries 7 times over about 3 seconds before giving up; so does Lode.
const ATTEMPTS: u32 = 7;
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// The held lock; released (the flock dropped, the file left in place, as DVC does) on drop.
#[derive(Debug)]
pub struct RepoLock {
    file: File,
}

impl RepoLock {
    /// Takes the lock at `path`, creating the file and its folder when needed.
    pub fn acquire(path: &Path) -> Result<RepoLock, LodeError> {
        Self::acquire_with(path, ATTEMPTS)
    }

    fn acquire_with(path: &Path, attempts: u32) -> Result<RepoLock, LodeError> {
        let io = |source| RepoError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        for attempt in 1..=attempts {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(io)?;
            // SAFETY: flock on a descriptor this function owns; no memory is shared.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                let content = format!(" {}\n", std::process::id());
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                file.write_all(content.as_bytes()).map_err(io)?;
                file.set_len(content.len() as u64).map_err(io)?;
                file.flush().map_err(io)?;
                return Ok(RepoLock { file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::WouldBlock {
                return Err(io(err).into());
            }
            if attempt < attempts {
                std::thread::sleep(RETRY_DELAY);
            }
        }
        Err(LodeError::Other(FAILED_TO_LOCK.into()))
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor this guard owns.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_until_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tmp/lock");
        let first = RepoLock::acquire_with(&path, 1).expect("first lock");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            format!(" {}\n", std::process::id())
        );
        let second = RepoLock::acquire_with(&path, 1);
        assert!(
            matches!(second, Err(LodeError::Other(m)) if m.starts_with("Unable to acquire lock"))
        );
        drop(first);
        RepoLock::acquire_with(&path, 1).expect("lock after release");
    }
}
