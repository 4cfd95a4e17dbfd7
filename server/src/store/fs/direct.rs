//! Writing a large upload around the page cache: the network's frames gathered into aligned
//! chunks for the shared direct writer.

use std::fs::File;
use std::io;

use lode_objio::direct::{AlignedBuf, ObjectWriter};

/// Bytes gathered per direct write.
pub(super) const DIRECT_CHUNK: usize = 4 << 20;

/// Writes a large upload, around the page cache when the filesystem allows (`O_DIRECT`): the
/// bytes go from one aligned buffer to the device, which spares the CPU the page cache's
/// bookkeeping and the later writeback, and makes the final flush short.
pub(super) struct LargeWriter {
    out: ObjectWriter<File>,
    chunk: AlignedBuf,
    /// Bytes gathered in `chunk`.
    len: usize,
}

impl LargeWriter {
    pub(super) fn new(file: File) -> LargeWriter {
        LargeWriter {
            out: ObjectWriter::new(file),
            chunk: AlignedBuf::new(DIRECT_CHUNK),
            len: 0,
        }
    }

    pub(super) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.len == 0 && !self.out.is_direct() {
                // Through the page cache from here on: gathering would only copy.
                return self.out.write(data);
            }
            let take = (DIRECT_CHUNK - self.len).min(data.len());
            self.chunk.space()[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            if self.len == DIRECT_CHUNK {
                self.write_chunk()?;
            }
        }
        Ok(())
    }

    fn write_chunk(&mut self) -> io::Result<()> {
        self.chunk.set_len(self.len);
        self.out.write(self.chunk.data())?;
        self.len = 0;
        Ok(())
    }

    /// Writes what is left and flushes the file's data and metadata to the device; gives the
    /// file back.
    pub(super) fn finish(mut self) -> io::Result<File> {
        if self.len > 0 {
            self.write_chunk()?;
        }
        let file = self.out.into_inner();
        file.sync_all()?;
        Ok(file)
    }
}
