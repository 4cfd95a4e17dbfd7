//! `.dir` manifests: the JSON list DVC stores for a tracked directory (docs/dvc-formats.md §2).
//!
//! The bytes must equal Python's `json.dumps(entries, sort_keys=True)` exactly, since the manifest
//! is named by their MD5: `", "` and `": "` separators, ASCII-only output with `\uXXXX` escapes
//! (surrogate pairs above the BMP), entries sorted by relpath bytes.

use lode_proto::ObjectId;

use super::md5_bytes;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid .dir manifest: {0}")]
    Invalid(String),
}

/// One file of a tracked directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the directory, `/`-separated.
    pub relpath: String,
    pub oid: ObjectId,
}

/// A directory listing, always kept sorted by relpath bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: Vec<Entry>,
}

impl Manifest {
    /// Builds a manifest from entries in any order.
    pub fn new(mut entries: Vec<Entry>) -> Manifest {
        entries.sort_unstable_by(|a, b| a.relpath.as_bytes().cmp(b.relpath.as_bytes()));
        Manifest { entries }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The manifest's bytes as DVC writes them.
    pub fn to_json(&self) -> Vec<u8> {
        let mut s = String::with_capacity(self.entries.len() * 80 + 2);
        s.push('[');
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str("{\"md5\": \"");
            s.push_str(&e.oid.to_string());
            s.push_str("\", \"relpath\": ");
            push_json_string(&mut s, &e.relpath);
            s.push('}');
        }
        s.push(']');
        s.into_bytes()
    }

    /// The object id of these bytes, with the `.dir` suffix.
    pub fn oid(&self) -> ObjectId {
        ObjectId::from_digest(md5_bytes(&self.to_json()), true)
    }

    /// Reads a manifest as DVC does: any JSON list of objects with `relpath` and a hash key.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        #[derive(serde::Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            relpath: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow)]
            md5: Option<std::borrow::Cow<'a, str>>,
        }
        let list: Vec<Raw> =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        let mut entries = Vec::with_capacity(list.len());
        for item in list {
            let relpath = item
                .relpath
                .ok_or_else(|| ManifestError::Invalid("entry without relpath".into()))?;
            let md5 = item
                .md5
                .ok_or_else(|| ManifestError::Invalid(format!("no md5 for '{relpath}'")))?;
            let oid = md5
                .parse()
                .map_err(|_| ManifestError::Invalid(format!("bad md5 '{md5}' for '{relpath}'")))?;
            if !safe_relpath(&relpath) {
                return Err(ManifestError::Invalid(format!(
                    "unsafe relpath '{relpath}'"
                )));
            }
            entries.push(Entry {
                relpath: relpath.into_owned(),
                oid,
            });
        }
        Ok(Manifest::new(entries))
    }
}

/// A relpath must stay inside its directory: a manifest from a remote is not trusted.
fn safe_relpath(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && !p.contains('\0')
}

/// Appends `v` as a JSON string the way Python's `json.dumps` writes it (ASCII only).
pub fn push_json_string(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            '\u{08}' => s.push_str("\\b"),
            '\u{0c}' => s.push_str("\\f"),
            ' '..='~' => s.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    s.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(rel: &str, md5: &str) -> Entry {
        Entry {
            relpath: rel.into(),
            oid: md5.parse().unwrap(),
        }
    }

    #[test]
    fn matches_dvc_bytes() {
        let m = Manifest::new(vec![
            e("sub/b.txt", "591785b794601e212b260e25925636fd"),
            e("c.bin", "0a3618d886b265f5986c91890c53f18d"),
            e("a.txt", "b1946ac92492d2347c6235b4d2611184"),
            e("Z upper.txt", "9dd4e461268c8034f5c8564e155c67a6"),
        ]);
        let json = String::from_utf8(m.to_json()).unwrap();
        assert_eq!(json, "[{\"md5\": \"9dd4e461268c8034f5c8564e155c67a6\", \"relpath\": \"Z upper.txt\"}, {\"md5\": \"b1946ac92492d2347c6235b4d2611184\", \"relpath\": \"a.txt\"}, {\"md5\": \"0a3618d886b265f5986c91890c53f18d\", \"relpath\": \"c.bin\"}, {\"md5\": \"591785b794601e212b260e25925636fd\", \"relpath\": \"sub/b.txt\"}]");
        assert_eq!(m.oid().to_string(), "26790b247ad68956ea76533aaf3f914f.dir");
        assert_eq!(Manifest::parse(json.as_bytes()).unwrap(), m);
        assert_eq!(
            Manifest::new(vec![]).oid().to_string(),
            "d751713988987e9331980363e24189ce.dir"
        );
    }

    #[test]
    fn escapes_and_sorts_like_python() {
        let z = "d41d8cd98f00b204e9800998ecf8427e";
        let m = Manifest::new(vec![
            e("\u{65e5}\u{672c}.txt", z),
            e("\u{e9}.txt", z),
            e("empty", z),
            e("a/x", z),
            e("a.b", z),
            e("a-b", z),
            e("B/y", z),
            e("\u{1f600}\"q", z),
        ]);
        let order: Vec<&str> = m.entries().iter().map(|x| x.relpath.as_str()).collect();
        assert_eq!(
            order,
            [
                "B/y",
                "a-b",
                "a.b",
                "a/x",
                "empty",
                "\u{e9}.txt",
                "\u{65e5}\u{672c}.txt",
                "\u{1f600}\"q"
            ]
        );
        let json = String::from_utf8(m.to_json()).unwrap();
        assert!(json.contains("\"relpath\": \"\\u00e9.txt\""));
        assert!(json.contains("\"relpath\": \"\\u65e5\\u672c.txt\""));
        assert!(json.contains("\"relpath\": \"\\ud83d\\ude00\\\"q\""));
    }

    #[test]
    fn rejects_bad_manifests() {
        assert!(Manifest::parse(b"{}").is_err());
        assert!(Manifest::parse(
            b"[{\"relpath\": \"../x\", \"md5\": \"d41d8cd98f00b204e9800998ecf8427e\"}]"
        )
        .is_err());
        assert!(Manifest::parse(b"not json").is_err());
    }
}
