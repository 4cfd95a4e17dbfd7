//! Streaming MD5 of files (raw and dos2unix), many small messages at once, `.dir` manifests,
//! tree walks and the hash cache.
//!
//! Both hash kinds consume a file in [`CHUNK`]-sized pieces: the legacy dos2unix rule converts each
//! 1 MiB chunk on its own (spec §4), so every reader in lode feeds whole chunks to [`StreamHasher`].

pub mod manifest;
pub mod multi;
pub mod state;
pub mod walk;

use std::io::Read;
use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};
use md5::{Digest, Md5};

/// The read unit: DVC's legacy hash converts CRLF per 1 MiB chunk.
pub const CHUNK: usize = 1 << 20;

/// How many bytes at the start of a chunk decide whether it is text.
const SNIFF: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("failed to read '{}': {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{}' changed while it was being hashed; try again", path.display())]
    Changed { path: PathBuf },
    #[error(".dvcignore file should not be in collected dir path: '{}'", path.display())]
    NestedDvcIgnore { path: PathBuf },
}

impl HashError {
    pub fn io(path: &Path, source: std::io::Error) -> HashError {
        HashError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// An MD5 computed over whole chunks, raw (DVC 3) or with CRLF→LF in text chunks (DVC 2).
pub struct StreamHasher {
    md5: Md5,
    kind: HashKind,
    scratch: Vec<u8>,
}

impl StreamHasher {
    pub fn new(kind: HashKind) -> StreamHasher {
        StreamHasher {
            md5: Md5::new(),
            kind,
            scratch: Vec::new(),
        }
    }

    /// Feeds one chunk. For [`HashKind::Md5Dos2unix`] every call except the last must be exactly
    /// [`CHUNK`] bytes, because the conversion is defined per chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        match self.kind {
            HashKind::Md5 => self.md5.update(chunk),
            HashKind::Md5Dos2unix => {
                if is_text(&chunk[..chunk.len().min(SNIFF)]) {
                    dos2unix_into(chunk, &mut self.scratch);
                    self.md5.update(&self.scratch);
                } else {
                    self.md5.update(chunk);
                }
            }
        }
    }

    pub fn finish(self) -> [u8; 16] {
        self.md5.finalize().into()
    }
}

/// DVC's text heuristic for one block (spec §4).
pub fn is_text(block: &[u8]) -> bool {
    if block.is_empty() {
        return true;
    }
    if block.contains(&0) {
        return false;
    }
    let non_text = block
        .iter()
        .filter(|&&b| !matches!(b, 0x20..=0x7e | b'\n' | b'\r' | b'\t' | 0x0c | 0x08))
        .count();
    non_text * 100 <= block.len() * 30
}

fn dos2unix_into(chunk: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(chunk.len());
    let mut rest = chunk;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\n');
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Hashes everything `r` yields; returns the digest and the byte count.
pub fn hash_reader(r: &mut impl Read, kind: HashKind) -> std::io::Result<([u8; 16], u64)> {
    thread_local! {
        // One buffer per thread: hashing many small files must not allocate 1 MiB for each.
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.resize(CHUNK, 0);
        let mut h = StreamHasher::new(kind);
        let mut total = 0u64;
        loop {
            let n = read_full(r, buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            total += n as u64;
            if n < CHUNK {
                break;
            }
        }
        Ok((h.finish(), total))
    })
}

/// Hashes a file, failing if it changes size or mtime while being read.
pub fn hash_file(path: &Path, kind: HashKind) -> Result<(ObjectId, u64), HashError> {
    let mut f = std::fs::File::open(path).map_err(|e| HashError::io(path, e))?;
    let before = walk::Stat::of(&f.metadata().map_err(|e| HashError::io(path, e))?);
    let (digest, size) = hash_reader(&mut f, kind).map_err(|e| HashError::io(path, e))?;
    let after = walk::Stat::of(&f.metadata().map_err(|e| HashError::io(path, e))?);
    if before != after || size != after.size {
        return Err(HashError::Changed {
            path: path.to_path_buf(),
        });
    }
    Ok((ObjectId::from_digest(digest, false), size))
}

/// MD5 of a byte slice, e.g. a `.dir` manifest.
pub fn md5_bytes(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(kind: HashKind, data: &[u8]) -> String {
        let (d, n) = hash_reader(&mut &data[..], kind).unwrap();
        assert_eq!(n, data.len() as u64);
        ObjectId::from_digest(d, false).to_string()
    }

    #[test]
    fn raw_and_dos2unix() {
        assert_eq!(
            hex(HashKind::Md5, b"a,b\r\n1,2\r\n"),
            "b202f333fba4fd38d4b8e5e693077aab"
        );
        assert_eq!(
            hex(HashKind::Md5Dos2unix, b"a,b\r\n1,2\r\n"),
            "e5ebd4c02cefbe7955977c67ada242b7"
        );
        assert_eq!(
            hex(HashKind::Md5Dos2unix, b"hello\r\n"),
            "b1946ac92492d2347c6235b4d2611184"
        );
        assert_eq!(
            hex(HashKind::Md5Dos2unix, b"\x00\x01bin\r\n"),
            hex(HashKind::Md5, b"\x00\x01bin\r\n")
        );
        assert_eq!(hex(HashKind::Md5, b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn dos2unix_is_per_chunk() {
        // A CRLF split across the 1 MiB boundary stays as it is.
        let mut data = vec![b'a'; CHUNK - 1];
        data.push(b'\r');
        data.push(b'\n');
        data.extend_from_slice(b"x\r\n");
        let mut expect = vec![b'a'; CHUNK - 1];
        expect.extend_from_slice(b"\r\nx\n");
        assert_eq!(
            hex(HashKind::Md5Dos2unix, &data),
            hex(HashKind::Md5, &expect)
        );
        // Each chunk decides text/binary from its own first 512 bytes.
        let mut data = vec![0u8; CHUNK];
        data.extend_from_slice(b"t\r\n");
        let mut expect = vec![0u8; CHUNK];
        expect.extend_from_slice(b"t\n");
        assert_eq!(
            hex(HashKind::Md5Dos2unix, &data),
            hex(HashKind::Md5, &expect)
        );
    }

    #[test]
    fn text_heuristic() {
        assert!(is_text(b""));
        assert!(!is_text(b"ab\0"));
        assert!(is_text("caf\u{e9} ok text here".as_bytes()));
        assert!(!is_text("\u{65e5}\u{672c}\u{8a9e}".as_bytes()));
    }
}
