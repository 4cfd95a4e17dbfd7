//! The hashes that name objects: plain MD5 (DVC 3) and DVC 2's md5-dos2unix.
//!
//! The md5-dos2unix rule of dvc-data 3.x: the raw bytes are cut into 1 MiB chunks at fixed file
//! offsets; each chunk whose first 512 bytes look like text has its CRLFs turned into LFs before
//! hashing. A CRLF split across two chunks is therefore left alone, exactly as DVC does. The
//! object keeps its raw bytes; only its name comes from the converted ones.

use lode_proto::HashKind;
use md5::{Digest, Md5};

/// dvc-data reads legacy objects in chunks of this size and decides text or binary for each.
pub const CHUNK: usize = 1 << 20;
/// The text heuristic looks at this many bytes at the start of each chunk.
const TEXT_PROBE: usize = 512;

/// An incremental hash of one kind, fed pieces of any size.
pub struct StreamHasher {
    md5: Md5,
    /// For md5-dos2unix: the start of a chunk not complete yet (`None` for plain MD5).
    pending: Option<Vec<u8>>,
}

impl StreamHasher {
    pub fn new(kind: HashKind) -> StreamHasher {
        StreamHasher {
            md5: Md5::new(),
            pending: match kind {
                HashKind::Md5 => None,
                HashKind::Md5Dos2unix => Some(Vec::new()),
            },
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        let Some(pending) = &mut self.pending else {
            self.md5.update(data);
            return;
        };
        while !data.is_empty() {
            // Whole chunks at a chunk boundary are hashed where they are, without a copy.
            if pending.is_empty() && data.len() >= CHUNK {
                let (chunk, rest) = data.split_at(CHUNK);
                hash_chunk(&mut self.md5, chunk);
                data = rest;
                continue;
            }
            let take = (CHUNK - pending.len()).min(data.len());
            pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if pending.len() == CHUNK {
                hash_chunk(&mut self.md5, pending);
                pending.clear();
            }
        }
    }

    pub fn finish(mut self) -> [u8; 16] {
        if let Some(pending) = self.pending.take().filter(|p| !p.is_empty()) {
            hash_chunk(&mut self.md5, &pending);
        }
        self.md5.finalize().into()
    }
}

/// Hashes one md5-dos2unix chunk: CRLF becomes LF when the chunk looks like text.
fn hash_chunk(md5: &mut Md5, chunk: &[u8]) {
    if !is_text(&chunk[..chunk.len().min(TEXT_PROBE)]) {
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

/// Hashes a whole buffer in one go.
pub fn digest_of(kind: HashKind, data: &[u8]) -> [u8; 16] {
    let mut h = StreamHasher::new(kind);
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(kind: HashKind, data: &[u8]) -> String {
        hex::encode(digest_of(kind, data))
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
        assert!(hex(HashKind::Md5Dos2unix, b"\x00\x01bin\r\n").starts_with("4f595da0"));
        assert_eq!(
            hex(HashKind::Md5Dos2unix, b"\x00\x01bin\r\n"),
            hex(HashKind::Md5, b"\x00\x01bin\r\n")
        );
        assert_eq!(hex(HashKind::Md5, b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(HashKind::Md5Dos2unix, b""), hex(HashKind::Md5, b""));
    }

    #[test]
    fn dos2unix_is_per_chunk() {
        // A CRLF split across the 1 MiB boundary stays as it is.
        let mut data = vec![b'a'; CHUNK - 1];
        data.extend_from_slice(b"\r\nx\r\n");
        let mut expect = vec![b'a'; CHUNK - 1];
        expect.extend_from_slice(b"\r\nx\n");
        assert_eq!(
            hex(HashKind::Md5Dos2unix, &data),
            hex(HashKind::Md5, &expect)
        );
        // Each chunk decides text or binary from its own first 512 bytes.
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
    fn dos2unix_does_not_depend_on_the_pieces_fed() {
        let mut data = Vec::new();
        while data.len() < 3 * CHUNK + 100 {
            data.extend_from_slice(b"line of text\r\n");
        }
        let whole = digest_of(HashKind::Md5Dos2unix, &data);
        for piece in [1, 7777, CHUNK, CHUNK + 1] {
            let mut h = StreamHasher::new(HashKind::Md5Dos2unix);
            for p in data.chunks(piece) {
                h.update(p);
            }
            assert_eq!(h.finish(), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn text_heuristic() {
        assert!(is_text(b""));
        assert!(!is_text(b"a\x00b"));
        assert!(is_text("caf\u{e9} ok text here".as_bytes()));
        assert!(!is_text("\u{65e5}\u{672c}\u{8a9e}".as_bytes()));
        assert!(!is_text(&[0xff; 10]));
        // Exactly 30% outside text is still text; one more byte is not.
        assert!(is_text(&[
            b'a', b'a', b'a', b'a', b'a', b'a', b'a', 0xff, 0xff, 0xff
        ]));
        assert!(!is_text(&[
            b'a', b'a', b'a', b'a', b'a', b'a', 0xff, 0xff, 0xff, 0xff
        ]));
    }
}
