//! Parsing object paths strictly, before anything else happens with the request.

use lode_proto::{validate_project_name, HashKind, ObjectId};

use crate::store::BlobKey;

#[derive(Debug, PartialEq, Eq)]
pub enum ObjectPath {
    /// `/{project}/files/md5/{2}/{30}[.dir]` or legacy `/{project}/{2}/{30}[.dir]`.
    Object { project: String, key: BlobKey },
    /// What DVC probes before pulling (`{url}/files/md5`, `{url}`); the answer is ignored.
    Probe,
}

/// Splits and validates a raw request path. Anything outside the grammars (percent-escapes,
/// `..`, empty segments, uppercase, wrong lengths) is refused, so no such name ever reaches
/// the index or the disk.
pub fn parse(raw: &str) -> Result<ObjectPath, String> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err("path must start with '/'".into());
    };
    if rest.contains('%') {
        return Err("percent-encoded characters are not allowed in object paths".into());
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let project = segs[0];
    validate_project_name(project).map_err(|e| e.to_string())?;
    let (kind, prefix, name) = match segs.as_slice() {
        [_] | [_, "files", "md5"] | [_, "files"] => return Ok(ObjectPath::Probe),
        [_, "files", "md5", a, b] => (HashKind::Md5, *a, *b),
        [_, a, b] => (HashKind::Md5Dos2unix, *a, *b),
        _ => {
            return Err(
                "expected /{project}/files/md5/{2 hex}/{30 hex}[.dir] or /{project}/{2 hex}/{30 hex}[.dir]"
                    .into(),
            )
        }
    };
    let oid = ObjectId::from_key_parts(prefix, name).map_err(|e| e.to_string())?;
    Ok(ObjectPath::Object {
        project: project.to_string(),
        key: BlobKey { kind, oid },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths() {
        let p = parse("/ml/files/md5/b2/02f333fba4fd38d4b8e5e693077aab").unwrap();
        let ObjectPath::Object { project, key } = p else {
            panic!()
        };
        assert_eq!(project, "ml");
        assert_eq!(key.kind, HashKind::Md5);
        let ObjectPath::Object { key, .. } =
            parse("/ml/26/790b247ad68956ea76533aaf3f914f.dir").unwrap()
        else {
            panic!()
        };
        assert_eq!(key.kind, HashKind::Md5Dos2unix);
        assert!(key.oid.is_dir());
        assert_eq!(parse("/ml/files/md5").unwrap(), ObjectPath::Probe);
        assert_eq!(parse("/ml").unwrap(), ObjectPath::Probe);
    }

    #[test]
    fn invalid_paths() {
        for bad in [
            "/../files/md5/b2/02f333fba4fd38d4b8e5e693077aab",
            "/%2e%2e/files/md5/b2/02f333fba4fd38d4b8e5e693077aab",
            "/ml/files/md5/b2/%2e%2e",
            "/ml/files/md5/B2/02f333fba4fd38d4b8e5e693077aab",
            "/ml/files/md5/b2/02f333fba4fd38d4b8e5e693077aa",
            "/ml/files/md5/b2/02f333fba4fd38d4b8e5e693077aaz",
            "/ml/files/md5/b2/../02f333fba4fd38d4b8e5e693077aa",
            "/ML/files/md5/b2/02f333fba4fd38d4b8e5e693077aab",
            "/ml//b2/02f333fba4fd38d4b8e5e693077aab",
            "/ml/b2/02f333fba4fd38d4b8e5e693077aab/",
            "/ml/files/sha256/b2/02f333fba4fd38d4b8e5e693077aab",
            "/",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
