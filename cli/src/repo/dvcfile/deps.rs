//! `deps:` entries of `.dvc` files: what `dvc import` (a path in another repository, with
//! `repo: {url, rev, rev_lock, config, remote}`) and `dvc import-url` (a path or URL with its
//! recorded hash) write, read with DVC's validation and written back byte for byte, with the
//! stage hash (`md5:` at the top) DVC computes over them.

use lode_proto::{HashKind, ObjectId};

use super::{
    check_file_entry, check_type, location, out_key_type, parse_bool, parse_int, Node, Ty,
    DEP_KEYS, REPO_KEYS,
};

/// One entry of `deps:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// As written: the path inside the source repository for an import, a path or URL for
    /// `import-url`, a workspace path (relative to the `.dvc` file) otherwise.
    pub path: String,
    /// Set for an import from another DVC or Git repository.
    pub repo: Option<RepoSource>,
    /// The recorded md5 (`import-url` dependencies), when there is one.
    pub oid: Option<ObjectId>,
    /// `hash: md5` means DVC 3; without it, the md5 is DVC 2's md5-dos2unix. An import's
    /// dependency records no hash: the source repository's own `.dvc` file has it.
    pub kind: HashKind,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
    pub isexec: bool,
}

/// Where an import comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSource {
    /// Anything `git clone` takes.
    pub url: String,
    /// The revision asked for (`--rev`), when one was.
    pub rev: Option<String>,
    /// The commit the import was made from.
    pub rev_lock: Option<String>,
    /// `--config`: a config file for the source repository, or its options.
    pub config: Option<Setting>,
    /// `--remote` / `--remote-config`: the source's remote by name, or options merged into it.
    pub remote: Option<Setting>,
}

/// A `config:` or `remote:` value: a string, or options (nested for `config:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Str(String),
    Map(Vec<(String, Setting)>),
}

/// The hash and size keys of an output or dependency, in DVC's order (`path` and the rest
/// follow).
pub(super) fn hash_fields(
    oid: Option<ObjectId>,
    size: Option<u64>,
    nfiles: Option<u64>,
    isexec: bool,
    kind: HashKind,
) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(oid) = oid {
        v.push(("md5", oid.to_string()));
    }
    if let Some(size) = size {
        v.push(("size", size.to_string()));
    }
    if let Some(n) = nfiles {
        v.push(("nfiles", n.to_string()));
    }
    if isexec {
        v.push(("isexec", "true".into()));
    }
    if kind == HashKind::Md5 {
        v.push(("hash", "md5".into()));
    }
    v
}

pub(super) fn read_dep(node: &Node, at: &str, errors: &mut Vec<String>) -> Option<Dep> {
    let Node::Map { entries, .. } = node else {
        errors.push(format!("expected a dictionary, in {at}"));
        return None;
    };
    let here = node.start();
    let before = errors.len();
    let mut dep = Dep {
        path: String::new(),
        repo: None,
        oid: None,
        kind: HashKind::Md5Dos2unix,
        size: None,
        nfiles: None,
        isexec: false,
    };
    for (k, v) in entries {
        let key = k.as_str().unwrap_or_default();
        if !DEP_KEYS.contains(&key) {
            errors.push(format!(
                "extra keys not allowed, in {at} -> {key}{}",
                location(here)
            ));
            continue;
        }
        let ty = match key {
            "repo" | "db" => Some(Ty::Dict),
            other => out_key_type(other),
        };
        if let Some(ty) = ty {
            check_type(v, ty, &format!("{at} -> {key}"), here, errors);
        }
        if key == "files" {
            if let Node::Seq { items } = v {
                for (i, item) in items.iter().enumerate() {
                    check_file_entry(item, &format!("{at} -> files -> {i}"), errors);
                }
            }
        }
        let text = v.as_str();
        match key {
            "path" => dep.path = text.unwrap_or_default().to_string(),
            "md5" => dep.oid = text.and_then(|t| t.parse().ok()),
            "hash" if text == Some("md5") => dep.kind = HashKind::Md5,
            "size" => dep.size = text.and_then(parse_int),
            "nfiles" => dep.nfiles = text.and_then(parse_int),
            "isexec" => dep.isexec = text.and_then(parse_bool).unwrap_or(false),
            "repo" => dep.repo = read_repo(v, &format!("{at} -> repo"), errors),
            _ => {}
        }
    }
    (errors.len() == before).then_some(dep)
}

fn read_repo(node: &Node, at: &str, errors: &mut Vec<String>) -> Option<RepoSource> {
    let Node::Map { entries, .. } = node else {
        // The type error was reported by the caller.
        return None;
    };
    let here = node.start();
    let mut repo = RepoSource {
        url: String::new(),
        rev: None,
        rev_lock: None,
        config: None,
        remote: None,
    };
    let mut has_url = false;
    for (k, v) in entries {
        let key = k.as_str().unwrap_or_default();
        if !REPO_KEYS.contains(&key) {
            errors.push(format!(
                "extra keys not allowed, in {at} -> {key}{}",
                location(here)
            ));
            continue;
        }
        let text = v.as_str().map(str::to_string);
        match key {
            "url" | "rev" | "rev_lock" => {
                check_type(v, Ty::Str, &format!("{at} -> {key}"), here, errors);
                match key {
                    "url" => {
                        has_url = true;
                        repo.url = text.unwrap_or_default();
                    }
                    "rev" => repo.rev = text,
                    _ => repo.rev_lock = text,
                }
            }
            _ => {
                let setting = match v {
                    Node::Null => None,
                    Node::Scalar { value, .. } => Some(Setting::Str(value.clone())),
                    Node::Map { .. } => Some(setting_of(v)),
                    Node::Seq { .. } => {
                        errors.push(format!("expected str, in {at} -> {key}{}", location(here)));
                        None
                    }
                };
                if key == "config" {
                    repo.config = setting;
                } else {
                    repo.remote = setting;
                }
            }
        }
    }
    if !has_url {
        errors.push(format!(
            "required key not provided, in {at} -> url{}",
            location(here)
        ));
    }
    Some(repo)
}

fn setting_of(node: &Node) -> Setting {
    match node {
        Node::Map { entries, .. } => Setting::Map(
            entries
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), setting_of(v)))
                .collect(),
        ),
        Node::Scalar { value, .. } => Setting::Str(value.clone()),
        Node::Null | Node::Seq { .. } => Setting::Str(String::new()),
    }
}

pub mod write;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::write::{render_import, stage_md5};
    use super::*;
    use crate::repo::dvcfile::{DvcFile, Out};

    /// The `.dvc` files real DVC 3 wrote for `dvc import` and `dvc import-url`
    /// (`tests/fixtures/make-dvc3-import.sh`).
    fn fixtures() -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dvc3-import");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("fixture folder")
            .map(|e| {
                let path = e.expect("entry").path();
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                (name, std::fs::read_to_string(&path).expect("fixture"))
            })
            .collect();
        files.sort();
        assert!(files.len() >= 10, "fixtures missing");
        files
    }

    #[test]
    fn dvc_import_files_round_trip_byte_for_byte() {
        for (name, text) in fixtures() {
            let f = DvcFile::parse(Path::new(&name), text.clone()).expect(&name);
            assert!(f.frozen, "{name}");
            assert_eq!(f.deps.len(), 1, "{name}");
            assert_eq!(
                f.md5.as_deref(),
                Some(stage_md5(&f.deps, &f.outs).as_str()),
                "{name}"
            );
            assert_eq!(render_import(&f.deps, &f.outs), text, "{name}");
        }
    }

    #[test]
    fn reads_what_each_import_records() {
        let files = fixtures();
        let get = |n: &str| {
            let (name, text) = files.iter().find(|(f, _)| f == n).expect(n);
            DvcFile::parse(Path::new(name), text.clone()).expect(n)
        };
        let imgs = get("imgs.dvc");
        let repo = imgs.deps[0].repo.as_ref().expect("repo");
        assert_eq!(imgs.deps[0].path, "images");
        assert_eq!(repo.url, "../registry.git");
        assert_eq!(repo.rev.as_deref(), Some("v1"));
        assert_eq!(repo.rev_lock.as_ref().map(String::len), Some(40));
        assert!(imgs.outs[0].oid.expect("oid").is_dir());
        let nd = get("nd.dvc");
        assert_eq!(nd.outs[0].oid, None);
        assert_eq!(nd.outs[0].kind, HashKind::Md5);
        let named = get("named-remote.csv.dvc");
        let named = named.deps[0].repo.as_ref().expect("repo");
        assert_eq!(named.remote, Some(Setting::Str("store".into())));
        let rc = get("remote-config.csv.dvc");
        match &rc.deps[0].repo.as_ref().expect("repo").remote {
            Some(Setting::Map(opts)) => {
                assert_eq!(opts[0], ("jobs".into(), Setting::Str("2".into())));
                assert_eq!(opts[1].0, "url");
            }
            other => panic!("{other:?}"),
        }
        let ext = get("ext-dir.dvc");
        let dep = &ext.deps[0];
        assert!(dep.repo.is_none());
        assert_eq!(dep.path, "../ext-dir");
        assert_eq!(dep.oid, ext.outs[0].oid);
        assert_eq!(
            (dep.size, dep.nfiles, dep.kind),
            (Some(2), Some(1), HashKind::Md5)
        );
        assert_eq!(get("odd.txt.dvc").deps[0].path, "../é a: b.txt");
    }

    #[test]
    fn a_nested_config_is_written_as_dvc_writes_it() {
        let dep = Dep {
            path: "data/x y.csv".into(),
            repo: Some(RepoSource {
                url: "https://example.com/r.git".into(),
                rev: Some("123".into()),
                rev_lock: Some("0123456789".into()),
                config: Some(Setting::Map(vec![(
                    "core".into(),
                    Setting::Map(vec![("remote".into(), Setting::Str("s".into()))]),
                )])),
                remote: None,
            }),
            oid: None,
            kind: HashKind::Md5Dos2unix,
            size: None,
            nfiles: None,
            isexec: false,
        };
        let out = Out {
            path: "x.csv".into(),
            oid: None,
            kind: HashKind::Md5,
            size: None,
            nfiles: None,
            isexec: false,
            cache: true,
            push: true,
        };
        let text = render_import(std::slice::from_ref(&dep), std::slice::from_ref(&out));
        let body = "frozen: true\ndeps:\n- path: data/x y.csv\n  repo:\n    url: https://example.com/r.git\n    rev: '123'\n    rev_lock: '0123456789'\n    config:\n      core:\n        remote: s\nouts:\n- hash: md5\n  path: x.csv\n";
        assert_eq!(text.split_once('\n').expect("md5 line").1, body);
        let back = DvcFile::parse(Path::new("x.csv.dvc"), text.clone()).expect("parse");
        assert_eq!(back.deps, vec![dep]);
        assert_eq!(back.outs, vec![out]);
    }

    /// DVC's messages for invalid `deps:` entries (from `dvc status` on each text).
    #[test]
    fn rejects_invalid_deps_as_dvc_does() {
        let cases = [
            (
                "deps:\n- foo: 1\n  path: a\nouts:\n- path: b\n",
                "extra keys not allowed, in deps -> 0 -> foo, line 2, column 3",
            ),
            (
                "deps:\n- path: a\n  repo:\n    rev: x\n",
                "required key not provided, in deps -> 0 -> repo -> url, line 4, column 5",
            ),
            (
                "deps:\n- path: a\n  repo:\n    url: u\n    bar: x\n",
                "extra keys not allowed, in deps -> 0 -> repo -> bar, line 4, column 5",
            ),
            (
                "deps:\n- path: a\n  repo: 3\n",
                "expected a dictionary, in deps -> 0 -> repo, line 2, column 3",
            ),
            (
                "deps:\n- path: a\n  db: 3\n",
                "expected a dictionary, in deps -> 0 -> db, line 2, column 3",
            ),
            (
                "deps:\n- path: a\n  size: x\n",
                "expected int, in deps -> 0 -> size, line 2, column 3",
            ),
            (
                "deps:\n- path: a\n  files:\n  - relpath: x\n    zz: 1\n",
                "extra keys not allowed, in deps -> 0 -> files -> 0 -> zz, line 4, column 5",
            ),
        ];
        for (text, want) in cases {
            let e = DvcFile::parse(Path::new("x.dvc"), text.to_string())
                .expect_err(text)
                .to_string();
            assert_eq!(
                e,
                format!("'./x.dvc' validation failed.\n\n{want}"),
                "{text}"
            );
        }
    }
}
