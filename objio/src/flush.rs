//! Writeback and flush calls: starting a file's writeback early, waiting for what writeback
//! reported, and flushing a whole filesystem at once.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Flushes every dirty page and inode of the filesystem `handle` is on (`syncfs`): one call
/// for a batch of files rather than an fsync each.
pub fn syncfs(handle: &File) -> io::Result<()> {
    // SAFETY: syncfs only reads the descriptor, which `handle` keeps open for the call.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to start writing a range out now, so the flush at the end finds little left
/// to do. Only a hint: errors are ignored (the flush reports real ones).
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on a descriptor `file` keeps open; no memory is passed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Reports a writeback error of `file`'s data since it was opened, without writing or flushing
/// anything (after a [`syncfs`] that wrote it). `syncfs` reports an error once per descriptor,
/// possibly to a caller flushing other files; the file's own descriptor still has it.
pub fn check_written(file: &File) -> io::Result<()> {
    // SAFETY: a plain syscall on a descriptor `file` keeps open; no memory is passed.
    let rc =
        unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WAIT_AFTER) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns `O_DIRECT` on or off for an open file.
pub fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` keeps open; F_GETFL/F_SETFL touch no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn written_files_flush_and_report_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = File::create(dir.path().join("f")).unwrap();
        f.write_all(&[1u8; 100_000]).unwrap();
        start_writeback(&f, 0, 100_000);
        syncfs(&f).unwrap();
        check_written(&f).unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap().len(), 100_000);
    }
}
