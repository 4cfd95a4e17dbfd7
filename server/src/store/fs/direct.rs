//! Writing a large upload around the page cache: the network's frames gathered into aligned
//! chunks for the shared direct writer.

use std::fs::File;
use std::io;
use std::sync::Mutex;

use lode_objio::direct::{AlignedBuf, ObjectWriter};

/// Bytes gathered per direct write.
pub(super) const DIRECT_CHUNK: usize = 4 << 20;
/// Aligned chunks the store lends to uploads at once. A chunk is resident once an upload has
/// filled it, so this, not the number of clients, bounds the memory large uploads gather in:
/// under a container's memory limit, 64 parallel uploads of 1 MiB each must not each hold
/// one. Uploads that find none left write through the page cache, which costs CPU, not memory
/// the kernel cannot reclaim.
const LENDABLE_CHUNKS: usize = 4;

/// The aligned chunks the store lends to large uploads, reused rather than allocated for each.
pub(super) struct ChunkPool {
    /// Returned chunks and how many are lent out.
    state: Mutex<(Vec<AlignedBuf>, usize)>,
}

impl ChunkPool {
    pub(super) fn new() -> ChunkPool {
        ChunkPool {
            state: Mutex::new((Vec::new(), 0)),
        }
    }

    /// A chunk to gather in, unless every chunk is lent out.
    fn lend(&self) -> Option<Lent<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (free, lent) = &mut *state;
        if *lent >= LENDABLE_CHUNKS {
            return None;
        }
        *lent += 1;
        let buf = free.pop().unwrap_or_else(|| AlignedBuf::new(DIRECT_CHUNK));
        Some(Lent {
            pool: self,
            buf: Some(buf),
        })
    }

    /// Chunks lent out now.
    #[cfg(test)]
    pub(super) fn lent(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

/// A chunk lent to one upload, given back to the pool when dropped.
struct Lent<'p> {
    pool: &'p ChunkPool,
    buf: Option<AlignedBuf>,
}

impl Lent<'_> {
    fn buf(&mut self) -> &mut AlignedBuf {
        self.buf
            .get_or_insert_with(|| AlignedBuf::new(DIRECT_CHUNK))
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.state.lock().unwrap_or_else(|e| e.into_inner());
        let (free, lent) = &mut *state;
        *lent = lent.saturating_sub(1);
        free.extend(self.buf.take());
    }
}

/// Writes a large upload, around the page cache when the filesystem allows (`O_DIRECT`) and the
/// pool has a chunk to lend: the bytes go from one aligned buffer to the device, which spares
/// the CPU the page cache's bookkeeping and the later writeback, and makes the final flush
/// short. The chunk goes back to the pool when the writer finishes or is dropped.
pub(super) struct LargeWriter<'p> {
    out: ObjectWriter<File>,
    chunk: Option<Lent<'p>>,
    /// Bytes gathered in `chunk`.
    len: usize,
}

impl<'p> LargeWriter<'p> {
    pub(super) fn new(file: File, pool: &'p ChunkPool) -> LargeWriter<'p> {
        let chunk = pool.lend();
        let out = match chunk {
            Some(_) => ObjectWriter::new(file),
            None => ObjectWriter::buffered_only(file),
        };
        LargeWriter { out, chunk, len: 0 }
    }

    pub(super) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let chunk = match &mut self.chunk {
                Some(lent) if self.len > 0 || self.out.is_direct() => lent.buf(),
                // Through the page cache from here on: gathering would only copy.
                _ => return self.out.write(data),
            };
            let take = (DIRECT_CHUNK - self.len).min(data.len());
            chunk.space()[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            if self.len == DIRECT_CHUNK {
                self.write_chunk()?;
            }
        }
        Ok(())
    }

    fn write_chunk(&mut self) -> io::Result<()> {
        if let Some(lent) = &mut self.chunk {
            let chunk = lent.buf();
            chunk.set_len(self.len);
            self.out.write(chunk.data())?;
        }
        self.len = 0;
        Ok(())
    }

    /// Writes what is left and flushes the file's data and metadata to the device; gives the
    /// file back.
    pub(super) fn finish(mut self) -> io::Result<File> {
        if self.len > 0 {
            self.write_chunk()?;
        }
        // The chunk goes back before the flush: the flush needs no buffer.
        drop(self.chunk.take());
        let file = self.out.into_inner();
        file.sync_all()?;
        Ok(file)
    }
}
