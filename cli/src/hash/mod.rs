//! Streaming MD5 of files (raw and dos2unix), many small messages at once, `.dir` manifests,
//! tree walks and the hash cache.
//!
//! Both hash kinds consume a file in [`CHUNK`]-sized pieces: the legacy dos2unix rule converts each
//! 1 MiB chunk on its own (see `lode_objio::hash`), so every reader in lode feeds whole chunks to
//! [`StreamHasher`].

pub mod manifest;
pub mod multi;
pub mod state;
pub mod walk;

use std::io::Read;
use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};
use md5::{Digest, Md5};

/// The read unit: DVC's legacy hash converts CRLF per 1 MiB chunk.
pub use lode_objio::hash::{StreamHasher, CHUNK};

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
    use lode_objio::hash::digest_of;

    #[test]
    fn readers_are_hashed_in_whole_chunks() {
        // CRLF text across chunk boundaries: only whole chunks give the legacy hash.
        let data = b"line of text\r\n".repeat(3 * CHUNK / 14 + 5);
        for kind in [HashKind::Md5, HashKind::Md5Dos2unix] {
            let (d, n) = hash_reader(&mut &data[..], kind).unwrap();
            assert_eq!(n, data.len() as u64);
            assert_eq!(d, digest_of(kind, &data));
        }
        let (d, n) = hash_reader(&mut &b""[..], HashKind::Md5).unwrap();
        assert_eq!(
            (hex::encode(d).as_str(), n),
            ("d41d8cd98f00b204e9800998ecf8427e", 0)
        );
    }
}
