//! Reading a `.dir` manifest only as far as the server needs: the object ids it lists.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::store::ByteStream;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not a valid directory manifest: {0}")]
    Invalid(String),
    #[error("reading the manifest: {0}")]
    Read(#[source] std::io::Error),
}

/// The entries' digests of a manifest read from a stream (parsed on a blocking thread).
pub async fn entry_digests_of(stream: ByteStream) -> Result<Vec<[u8; 16]>, ManifestError> {
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    tokio::task::spawn_blocking(move || entry_digests(reader))
        .await
        .map_err(|e| ManifestError::Read(std::io::Error::other(e.to_string())))?
}

/// The entries' digests, in order. Only the 16-byte digests are kept, so even a manifest of
/// millions of files parses in bounded, small memory.
pub fn entry_digests(reader: impl Read) -> Result<Vec<[u8; 16]>, ManifestError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let out = de
        .deserialize_seq(ListVisitor)
        .map_err(|e| ManifestError::Invalid(e.to_string()))?;
    de.end()
        .map_err(|e| ManifestError::Invalid(e.to_string()))?;
    Ok(out)
}

struct ListVisitor;

impl<'de> Visitor<'de> for ListVisitor {
    type Value = Vec<[u8; 16]>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON list of {\"md5\": ..., \"relpath\": ...} entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(d) = seq.next_element_seed(EntrySeed)? {
            out.push(d);
        }
        Ok(out)
    }
}

struct EntrySeed;

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = [u8; 16];
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = [u8; 16];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a manifest entry with \"md5\" and \"relpath\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut digest = None;
        let mut relpath = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "md5" => {
                    let v: String = map.next_value()?;
                    let oid: lode_proto::ObjectId = v
                        .parse()
                        .map_err(|_| de::Error::custom(format!("bad md5 '{v}' in manifest")))?;
                    if oid.is_dir() {
                        return Err(de::Error::custom("manifest entries cannot be directories"));
                    }
                    digest = Some(*oid.digest());
                }
                "relpath" => {
                    let _: String = map.next_value()?;
                    relpath = true;
                }
                _ => {
                    let _: IgnoredAny = map.next_value()?;
                }
            }
        }
        if !relpath {
            return Err(de::Error::custom("manifest entry without relpath"));
        }
        digest.ok_or_else(|| de::Error::custom("manifest entry without md5"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dvc_manifest() {
        let m = br#"[{"md5": "9dd4e461268c8034f5c8564e155c67a6", "relpath": "Z upper.txt"}, {"md5": "b1946ac92492d2347c6235b4d2611184", "relpath": "a.txt"}]"#;
        let d = entry_digests(&m[..]).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(hex::encode(d[1]), "b1946ac92492d2347c6235b4d2611184");
        assert!(entry_digests(&b"[]"[..]).unwrap().is_empty());
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b"{}"[..],
            b"not json",
            br#"[{"relpath": "a"}]"#,
            br#"[{"md5": "XYZ", "relpath": "a"}]"#,
            br#"[{"md5": "9dd4e461268c8034f5c8564e155c67a6"}]"#,
            br#"[] trailing"#,
        ] {
            assert!(
                entry_digests(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
