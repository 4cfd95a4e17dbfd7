//! Bulk transfer between `lode` and `lode-server`: the pack stream format and server-side GC.
//!
//! A pack carries many objects of one hash kind in one streamed request, so 100,000 small files do
//! not cost 100,000 round trips:
//!
//! ```text
//! pack   := MAGIC frame* END
//! frame  := flags:u8  digest:[u8;16]  len:u64 (big-endian)  bytes:[u8; len]
//! END    := 0x80 followed by 24 zero bytes
//! ```
//! `flags` bit 0 marks a `.dir` manifest. The receiver verifies every object against its name
//! (md5, or md5-dos2unix for legacy objects) before it keeps it; a stream that ends without END is
//! truncated and its unfinished object is discarded.
//!
//! Routes (under `/api/v1/projects/{project}`):
//! - `POST packs?kind=md5` with a pack body (`Content-Type: application/x-lode-pack`): write role.
//!   Answers [`PackUploadResponse`]. Objects are committed one by one as they verify; a `.dir`
//!   is accepted only when every entry it lists is held by the project (earlier in the same pack
//!   counts). A bad object fails the request with 400 naming it; the objects before it stay stored.
//! - `POST packs/fetch` with a [`PackFetchRequest`]: read role. Answers a pack holding exactly the
//!   requested objects in request order, or 404 (JSON error) before any byte when one is not held.
//! - `POST gc` with a [`GcRequest`]: admin role. Without `grace_seconds`, objects pushed within
//!   the last hour are kept (the `lode` client sends `LODE_GC_GRACE_SECONDS` when it is set).
//!
//! These routes sit outside the JSON API's request timeout and body limit: a pack streams for as
//! long as it takes, like a single object. The server makes each batch of small objects durable
//! with one journal commit before it indexes them, so a crash never leaves an index row without
//! its blob.

use serde::{Deserialize, Serialize};

use crate::{HashKind, ObjectId};

pub const PACK_CONTENT_TYPE: &str = "application/x-lode-pack";
pub const MAGIC: &[u8; 8] = b"LODEPK01";
pub const FRAME_HEADER_LEN: usize = 25;
const FLAG_DIR: u8 = 0x01;
const FLAG_END: u8 = 0x80;

/// The most objects one fetch request may ask for.
pub const MAX_FETCH_OBJECTS: usize = 10_000;

/// One frame header: which object follows and how many bytes it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Object { oid: ObjectId, len: u64 },
    End,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    #[error("not a lode pack: bad magic bytes")]
    BadMagic,
    #[error("corrupt pack frame header (flags {0:#04x})")]
    BadFlags(u8),
}

impl Frame {
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut h = [0u8; FRAME_HEADER_LEN];
        match self {
            Frame::Object { oid, len } => {
                h[0] = if oid.is_dir() { FLAG_DIR } else { 0 };
                h[1..17].copy_from_slice(oid.digest());
                h[17..25].copy_from_slice(&len.to_be_bytes());
            }
            Frame::End => h[0] = FLAG_END,
        }
        h
    }

    pub fn decode(h: &[u8; FRAME_HEADER_LEN]) -> Result<Frame, PackError> {
        match h[0] {
            FLAG_END if h[1..].iter().all(|b| *b == 0) => Ok(Frame::End),
            flags @ (0 | FLAG_DIR) => {
                let mut digest = [0u8; 16];
                digest.copy_from_slice(&h[1..17]);
                let mut len = [0u8; 8];
                len.copy_from_slice(&h[17..25]);
                Ok(Frame::Object {
                    oid: ObjectId::from_digest(digest, flags == FLAG_DIR),
                    len: u64::from_be_bytes(len),
                })
            }
            other => Err(PackError::BadFlags(other)),
        }
    }
}

/// Checks the 8 magic bytes a pack starts with.
pub fn check_magic(bytes: &[u8; 8]) -> Result<(), PackError> {
    if bytes == MAGIC {
        Ok(())
    } else {
        Err(PackError::BadMagic)
    }
}

/// Query of `POST packs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackUploadQuery {
    pub kind: HashKind,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PackUploadResponse {
    /// Objects newly referenced by the project.
    pub stored: u64,
    /// Objects the project already held.
    pub existing: u64,
    /// Bytes received in object bodies.
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackFetchRequest {
    pub kind: HashKind,
    pub oids: Vec<ObjectId>,
}

/// Object ids of one hash kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindedOids {
    pub kind: HashKind,
    pub oids: Vec<ObjectId>,
}

/// `POST gc`: drop the project's references to every object not in `keep`, except those pushed
/// within the grace period; blobs no project references any more are deleted from disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GcRequest {
    pub keep: Vec<KindedOids>,
    #[serde(default)]
    pub dry_run: bool,
    /// Objects pushed less than this many seconds ago are kept; the server's default when absent.
    #[serde(default)]
    pub grace_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GcResponse {
    pub dry_run: bool,
    /// References removed (or that would be, in a dry run).
    pub removed: Vec<KindedOids>,
    pub removed_bytes: u64,
    /// Unreferenced objects kept because they were pushed within the grace period.
    pub kept_recent: u64,
    /// Blobs deleted from disk because no project references them any more.
    pub blobs_deleted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let oid: ObjectId = "26790b247ad68956ea76533aaf3f914f.dir".parse().unwrap();
        let f = Frame::Object { oid, len: 270 };
        assert_eq!(Frame::decode(&f.encode()), Ok(f));
        assert_eq!(Frame::decode(&Frame::End.encode()), Ok(Frame::End));
        let mut bad = Frame::End.encode();
        bad[3] = 1;
        assert!(Frame::decode(&bad).is_err());
        bad[0] = 0x02;
        assert_eq!(Frame::decode(&bad), Err(PackError::BadFlags(2)));
        assert!(check_magic(b"LODEPK01").is_ok());
        assert!(check_magic(b"LODEPK02").is_err());
    }
}
