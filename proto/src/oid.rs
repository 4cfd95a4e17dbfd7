//! Object ids: the MD5 of an object's bytes (or of its dos2unix form for DVC 2 legacy objects),
//! written as 32 lowercase hex digits, with a `.dir` suffix for directory manifests.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which hash names an object. The same hex can name different bytes in the two kinds, so the kind
/// is part of an object's identity everywhere (cache paths, blob paths, index rows, API calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HashKind {
    /// DVC 3: MD5 of the raw bytes; stored under `files/md5/`.
    #[serde(rename = "md5")]
    Md5,
    /// DVC 2 legacy: MD5 after CRLF→LF for text files; stored at the root of the cache/remote.
    #[serde(rename = "md5-dos2unix")]
    Md5Dos2unix,
}

impl HashKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HashKind::Md5 => "md5",
            HashKind::Md5Dos2unix => "md5-dos2unix",
        }
    }

    /// The folder prefix of this kind's objects in a DVC cache or remote, without a trailing `/`
    /// (empty for legacy objects, which live at the root).
    pub fn dvc_prefix(self) -> &'static str {
        match self {
            HashKind::Md5 => "files/md5",
            HashKind::Md5Dos2unix => "",
        }
    }
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashKind {
    type Err = OidError;
    fn from_str(s: &str) -> Result<Self, OidError> {
        match s {
            "md5" => Ok(HashKind::Md5),
            "md5-dos2unix" => Ok(HashKind::Md5Dos2unix),
            other => Err(OidError::UnknownKind(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidError {
    #[error(
        "invalid object id '{0}': expected 32 lowercase hex digits, optionally followed by '.dir'"
    )]
    Invalid(String),
    #[error("unknown hash kind '{0}': expected 'md5' or 'md5-dos2unix'")]
    UnknownKind(String),
}

/// A validated object id: 16 bytes of MD5 plus whether it names a `.dir` manifest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    digest: [u8; 16],
    is_dir: bool,
}

impl ObjectId {
    pub fn from_digest(digest: [u8; 16], is_dir: bool) -> Self {
        ObjectId { digest, is_dir }
    }

    pub fn digest(&self) -> &[u8; 16] {
        &self.digest
    }

    pub fn is_dir(&self) -> bool {
        self.is_dir
    }

    /// The 32 hex digits without any suffix.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(32);
        for b in self.digest {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 0xf) as usize] as char);
        }
        s
    }

    /// The object's relative path inside a DVC cache or remote for this hash kind:
    /// `files/md5/ab/cdef...[.dir]` or, for legacy objects, `ab/cdef...[.dir]`.
    pub fn dvc_key(&self, kind: HashKind) -> String {
        let name = self.to_string();
        let prefix = kind.dvc_prefix();
        if prefix.is_empty() {
            format!("{}/{}", &name[..2], &name[2..])
        } else {
            format!("{}/{}/{}", prefix, &name[..2], &name[2..])
        }
    }

    /// Parses the two path segments of a key (`ab` and `cdef...[.dir]`).
    pub fn from_key_parts(prefix: &str, rest: &str) -> Result<Self, OidError> {
        if prefix.len() != 2 {
            return Err(OidError::Invalid(format!("{prefix}/{rest}")));
        }
        format!("{prefix}{rest}")
            .parse()
            .map_err(|_| OidError::Invalid(format!("{prefix}/{rest}")))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl FromStr for ObjectId {
    type Err = OidError;
    fn from_str(s: &str) -> Result<Self, OidError> {
        let (hex, is_dir) = match s.strip_suffix(".dir") {
            Some(h) => (h, true),
            None => (s, false),
        };
        let bytes = hex.as_bytes();
        if bytes.len() != 32 {
            return Err(OidError::Invalid(s.to_string()));
        }
        let mut digest = [0u8; 16];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or_else(|| OidError::Invalid(s.to_string()))?;
            let lo = hex_val(pair[1]).ok_or_else(|| OidError::Invalid(s.to_string()))?;
            digest[i] = (hi << 4) | lo;
        }
        Ok(ObjectId { digest, is_dir })
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())?;
        if self.is_dir {
            f.write_str(".dir")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let id: ObjectId = "b202f333fba4fd38d4b8e5e693077aab".parse().unwrap();
        assert!(!id.is_dir());
        assert_eq!(id.to_string(), "b202f333fba4fd38d4b8e5e693077aab");
        assert_eq!(
            id.dvc_key(HashKind::Md5),
            "files/md5/b2/02f333fba4fd38d4b8e5e693077aab"
        );
        assert_eq!(
            id.dvc_key(HashKind::Md5Dos2unix),
            "b2/02f333fba4fd38d4b8e5e693077aab"
        );
        let d: ObjectId = "26790b247ad68956ea76533aaf3f914f.dir".parse().unwrap();
        assert!(d.is_dir());
        assert_eq!(
            d.dvc_key(HashKind::Md5),
            "files/md5/26/790b247ad68956ea76533aaf3f914f.dir"
        );
        assert_eq!(
            ObjectId::from_key_parts("26", "790b247ad68956ea76533aaf3f914f.dir").unwrap(),
            d
        );
    }

    #[test]
    fn rejects_bad_ids() {
        for bad in [
            "",
            "B202f333fba4fd38d4b8e5e693077aab",
            "b202f333fba4fd38d4b8e5e693077aa",
            "b202f333fba4fd38d4b8e5e693077aabb",
            "g202f333fba4fd38d4b8e5e693077aab",
            "../../etc/passwd",
            "b202f333fba4fd38d4b8e5e693077aab.DIR",
            "b202f333fba4fd38d4b8e5e693077aab.dir.dir",
        ] {
            assert!(bad.parse::<ObjectId>().is_err(), "{bad}");
        }
        assert!(ObjectId::from_key_parts("b", "202f333fba4fd38d4b8e5e693077aab").is_err());
    }
}
