//! Writing large objects around the page cache.
//!
//! A buffered copy of a large file costs the kernel a second memory copy into freshly allocated
//! page-cache pages, plus their writeback and, when memory is full of cached files, reclaim,
//! competing with hashing for the CPU. Direct I/O (`O_DIRECT`) hands aligned chunks straight to
//! the device instead, which also leaves the final flush little to do. Whatever the filesystem or
//! the buffer cannot take directly (an unaligned tail, a filesystem without direct I/O) is written
//! through the page cache.

use std::borrow::Borrow;
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::flush::{set_direct, start_writeback};

/// Alignment of buffers, offsets and lengths for direct I/O: a multiple of any logical block size.
pub const ALIGN: usize = 4096;

/// A buffer of a fixed capacity whose data starts at an [`ALIGN`]ed address.
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    cap: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn new(cap: usize) -> AlignedBuf {
        let raw = vec![0u8; cap + ALIGN];
        // `align_offset` may decline (usize::MAX); the buffer then simply isn't aligned and
        // [`ObjectWriter`] writes it through the page cache.
        let start = raw.as_ptr().align_offset(ALIGN).min(ALIGN);
        AlignedBuf {
            raw,
            start,
            cap,
            len: 0,
        }
    }

    /// The whole capacity, to be filled; [`AlignedBuf::set_len`] then says how much was.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.cap]
    }

    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.cap);
    }

    pub fn data(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

/// Appends to a new file, directly where possible: give it [`AlignedBuf`]s of whole blocks, and
/// only the last may end unaligned. The caller flushes the file (`fdatasync`) when done, as for
/// any write: direct I/O skips the page cache, not the device's own cache. `F` is the file or a
/// reference to it.
pub struct ObjectWriter<F: Borrow<File>> {
    file: F,
    offset: u64,
    direct: bool,
    /// Bytes written through the page cache and not yet handed to writeback.
    unflushed: u64,
}

/// Page-cache writes are handed to writeback every this many bytes, so that the final flush
/// has little left to do.
const WRITEBACK_EVERY: u64 = 64 << 20;

impl<F: Borrow<File>> ObjectWriter<F> {
    pub fn new(file: F) -> ObjectWriter<F> {
        let direct = set_direct(file.borrow(), true).is_ok();
        ObjectWriter {
            file,
            offset: 0,
            direct,
            unflushed: 0,
        }
    }

    pub fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let aligned = (buf.as_ptr() as usize).is_multiple_of(ALIGN)
            && self.offset.is_multiple_of(ALIGN as u64);
        let direct_len = if self.direct && aligned {
            buf.len() / ALIGN * ALIGN
        } else {
            0
        };
        let mut rest = buf;
        if direct_len > 0 {
            match self
                .file
                .borrow()
                .write_all_at(&buf[..direct_len], self.offset)
            {
                Ok(()) => {
                    self.offset += direct_len as u64;
                    rest = &buf[direct_len..];
                }
                // The filesystem refused this direct write (alignment it wants larger, or no
                // direct I/O for this file): the same bytes go again, at the same offset,
                // through the page cache.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.buffered()?,
                Err(e) => return Err(e),
            }
        }
        if rest.is_empty() {
            return Ok(());
        }
        if self.direct {
            // Bytes that cannot go directly: the file's unaligned tail, or a buffer or offset
            // out of alignment. From here on, everything goes through the page cache.
            self.buffered()?;
        }
        self.file.borrow().write_all_at(rest, self.offset)?;
        self.offset += rest.len() as u64;
        self.unflushed += rest.len() as u64;
        if self.unflushed >= WRITEBACK_EVERY {
            start_writeback(
                self.file.borrow(),
                self.offset - self.unflushed,
                self.unflushed,
            );
            self.unflushed = 0;
        }
        Ok(())
    }

    /// A writer that goes through the page cache from the start, for a caller that has no
    /// aligned buffer to give it.
    pub fn buffered_only(file: F) -> ObjectWriter<F> {
        ObjectWriter {
            file,
            offset: 0,
            direct: false,
            unflushed: 0,
        }
    }

    /// Whether writes still go around the page cache (aligned buffers are then worth
    /// gathering).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The file, once everything is written.
    pub fn into_inner(self) -> F {
        self.file
    }

    fn buffered(&mut self) -> std::io::Result<()> {
        set_direct(self.file.borrow(), false)?;
        self.direct = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn written(chunks: &[usize]) -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("obj");
        let file = File::create(&path).unwrap();
        let mut expected = Vec::new();
        let mut w = ObjectWriter::new(&file);
        for (i, &n) in chunks.iter().enumerate() {
            let mut buf = AlignedBuf::new(n.max(1));
            for (j, b) in buf.space().iter_mut().enumerate() {
                *b = (i * 31 + j * 7) as u8;
            }
            buf.set_len(n);
            expected.extend_from_slice(buf.data());
            w.write(buf.data()).unwrap();
        }
        file.sync_data().unwrap();
        let mut got = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut got).unwrap();
        (got, expected)
    }

    #[test]
    fn aligned_chunks_then_an_unaligned_tail_are_stored_in_order() {
        let (got, expected) = written(&[1 << 20, 1 << 20, 12_345]);
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
    }

    #[test]
    fn an_unaligned_chunk_first_sends_the_rest_through_the_page_cache() {
        let (got, expected) = written(&[100, 1 << 20, 8192, 5]);
        assert!(got == expected);
    }

    #[test]
    fn buffers_start_aligned() {
        let mut b = AlignedBuf::new(3 * ALIGN);
        assert_eq!(b.space().as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.space().len(), 3 * ALIGN);
        b.set_len(10);
        assert_eq!(b.data().len(), 10);
    }
}
