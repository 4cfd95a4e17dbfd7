//! Content hashes that name objects: plain MD5 (DVC 3) and DVC 2's md5-dos2unix.

use lode_proto::HashKind;
use md5::{Digest, Md5};

/// dvc-data reads legacy objects in chunks of this size and decides text vs binary for each one.
const DOS2UNIX_CHUNK: usize = 1 << 20;
/// The text heuristic looks at this many bytes at the start of each chunk.
const TEXT_PROBE: usize = 512;

/// Incremental hasher for one hash kind.
pub enum ObjectHasher {
    Md5(Md5),
    Dos2unix(Dos2unixHasher),
}

impl ObjectHasher {
    pub fn new(kind: HashKind) -> Self {
        match kind {
            HashKind::Md5 => ObjectHasher::Md5(Md5::new()),
            HashKind::Md5Dos2unix => ObjectHasher::Dos2unix(Dos2unixHasher::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            ObjectHasher::Md5(h) => h.update(data),
            ObjectHasher::Dos2unix(h) => h.update(data),
        }
    }

    pub fn finish(self) -> [u8; 16] {
        match self {
            ObjectHasher::Md5(h) => h.finalize().into(),
            ObjectHasher::Dos2unix(h) => h.finish(),
        }
    }
}

/// The md5-dos2unix rule of dvc-data 3.x: the raw bytes are cut into 1 MiB chunks at fixed file
/// offsets; each chunk whose first 512 bytes look like text has its CRLFs turned into LFs before
/// hashing. A CRLF split across two chunks is therefore left alone, exactly as DVC does.
pub struct Dos2unixHasher {
    md5: Md5,
    pending: Vec<u8>,
}

impl Default for Dos2unixHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Dos2unixHasher {
    pub fn new() -> Self {
        Dos2unixHasher {
            md5: Md5::new(),
            pending: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.pending.is_empty() && data.len() >= DOS2UNIX_CHUNK {
                let (chunk, rest) = data.split_at(DOS2UNIX_CHUNK);
                hash_chunk(&mut self.md5, chunk);
                data = rest;
                continue;
            }
            let take = (DOS2UNIX_CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == DOS2UNIX_CHUNK {
                hash_chunk(&mut self.md5, &self.pending);
                self.pending.clear();
            }
        }
    }

    pub fn finish(mut self) -> [u8; 16] {
        if !self.pending.is_empty() {
            hash_chunk(&mut self.md5, &self.pending);
        }
        self.md5.finalize().into()
    }
}

fn hash_chunk(md5: &mut Md5, chunk: &[u8]) {
    if !is_text_block(&chunk[..chunk.len().min(TEXT_PROBE)]) {
        md5.update(chunk);
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i + 1 < chunk.len() {
        if chunk[i] == b'\r' && chunk[i + 1] == b'\n' {
            md5.update(&chunk[start..i]);
            start = i + 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    md5.update(&chunk[start..]);
}

/// DVC's `istextblock`: empty is text, any NUL is binary, otherwise binary when more than 30% of
/// the bytes are outside printable ASCII and `\n \r \t \f \b`.
pub fn is_text_block(block: &[u8]) -> bool {
    if block.is_empty() {
        return true;
    }
    if block.contains(&0) {
        return false;
    }
    let nontext = block
        .iter()
        .filter(|&&b| !((32..127).contains(&b) || matches!(b, b'\n' | b'\r' | b'\t' | 0x0c | 0x08)))
        .count();
    (nontext as f64) / (block.len() as f64) <= 0.30
}

/// Hashes a whole buffer in one go.
pub fn digest_of(kind: HashKind, data: &[u8]) -> [u8; 16] {
    let mut h = ObjectHasher::new(kind);
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 16]) -> String {
        hex::encode(d)
    }

    #[test]
    fn md5_of_raw_bytes() {
        assert_eq!(
            hex(digest_of(HashKind::Md5, b"a,b\r\n1,2\r\n")),
            "b202f333fba4fd38d4b8e5e693077aab"
        );
    }

    #[test]
    fn dos2unix_matches_dvc_examples() {
        assert!(hex(digest_of(HashKind::Md5Dos2unix, b"a,b\r\n1,2\r\n")).starts_with("e5ebd4c0"));
        assert!(hex(digest_of(HashKind::Md5Dos2unix, b"hello\r\n")).starts_with("b1946ac9"));
        assert!(hex(digest_of(HashKind::Md5Dos2unix, b"\x00\x01bin\r\n")).starts_with("4f595da0"));
    }

    #[test]
    fn dos2unix_chunking_is_independent_of_write_sizes() {
        let mut data = Vec::new();
        while data.len() < 3 * DOS2UNIX_CHUNK + 100 {
            data.extend_from_slice(b"line of text\r\n");
        }
        let whole = digest_of(HashKind::Md5Dos2unix, &data);
        let mut h = ObjectHasher::new(HashKind::Md5Dos2unix);
        for piece in data.chunks(7777) {
            h.update(piece);
        }
        assert_eq!(h.finish(), whole);
    }

    #[test]
    fn crlf_across_chunk_boundary_is_kept() {
        let mut data = vec![b'a'; DOS2UNIX_CHUNK - 1];
        data.extend_from_slice(b"\r\nb");
        let mut expected = Md5::new();
        expected.update(&data[..DOS2UNIX_CHUNK]);
        expected.update(b"\nb");
        let want: [u8; 16] = expected.finalize().into();
        assert_eq!(digest_of(HashKind::Md5Dos2unix, &data), want);
    }

    #[test]
    fn text_heuristic() {
        assert!(is_text_block(b""));
        assert!(!is_text_block(b"a\x00b"));
        assert!(is_text_block("héllo wörld, mostly ascii".as_bytes()));
        assert!(!is_text_block("日本語のテキスト".as_bytes()));
        assert!(!is_text_block(&[0xff; 10]));
    }
}
