//! One commit of a repository seen as DVC's file system sees it: the files Git tracks merged
//! with the outputs its `.dvc` files and pipelines declare, directories expanded from their
//! `.dir` manifests. `list` prints these entries, `get` and `import` fetch the files under one.

use std::collections::BTreeMap;

use lode_proto::{HashKind, ObjectId};

use crate::git::TreeEntry;
use crate::hash::manifest::Manifest;
use crate::repo::dvcfile::Out;

/// What DVC's `list` reports for one path (its JSON keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub path: String,
    pub isout: bool,
    pub isdir: bool,
    pub isexec: bool,
    pub size: Option<u64>,
    pub md5: Option<String>,
}

impl Entry {
    /// The entry as `dvc list --json` writes it.
    pub fn to_json(&self, s: &mut String) {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
        s.push_str(&format!(
            "{{\"isout\": {}, \"isdir\": {}, \"isexec\": {}, \"size\": {}, \"md5\": {}, \"path\": ",
            self.isout,
            self.isdir,
            self.isexec,
            opt(self.size.map(|n| n.to_string())),
            opt(self.md5.as_ref().map(|m| format!("\"{m}\""))),
        ));
        crate::hash::manifest::push_json_string(s, &self.path);
        s.push('}');
    }
}

/// Where the bytes of one file come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// A Git blob.
    Git { blob: String },
    /// A DVC object.
    Dvc { kind: HashKind, oid: ObjectId },
}

/// A file under a path, to be fetched.
#[derive(Debug, Clone)]
pub(crate) struct File {
    /// Relative to the path asked for; empty when the path is this file.
    pub rel: String,
    pub content: Content,
    pub isexec: bool,
    pub size: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ListingError<E> {
    /// DVC reports a missing path as Python's `FileNotFoundError`.
    #[error("[Errno 2] No such file or directory: '/{path}': ({})", python_tuple(.path))]
    NotFound { path: String },
    #[error(transparent)]
    Manifest(E),
}

fn python_tuple(path: &str) -> String {
    let parts: Vec<String> = path.split('/').map(|p| format!("'{p}'")).collect();
    if parts.len() == 1 {
        format!("{},", parts[0])
    } else {
        parts.join(", ")
    }
}

#[derive(Debug, Clone)]
struct Item {
    entry: Entry,
    /// A Git blob's id.
    blob: Option<String>,
    /// The output declared at exactly this path.
    out: Option<Out>,
    /// Whether an output is at or below this path (for `--dvc-only`).
    has_dvc: bool,
}

/// The merged tree of one commit.
pub(crate) struct Listing {
    items: BTreeMap<String, Item>,
}

/// `path` without `./`, leading or trailing `/`; empty for the top.
pub(crate) fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn name(path: &str) -> &str {
    path.rsplit_once('/').map(|(_, n)| n).unwrap_or(path)
}

fn under<'a>(path: &'a str, top: &str) -> Option<&'a str> {
    if top.is_empty() {
        return Some(path);
    }
    path.strip_prefix(top)?.strip_prefix('/')
}

impl Listing {
    /// `tree` is the commit's Git tree with `tree_sizes` the sizes of its tree objects (in the
    /// tree's order); `outs` the outputs it declares, by path from the top.
    pub fn new(tree: Vec<TreeEntry>, tree_sizes: &[u64], outs: &[(String, Out)]) -> Listing {
        let mut items = BTreeMap::new();
        let mut sizes = tree_sizes.iter();
        for t in tree {
            let size = if t.is_tree {
                sizes.next().copied()
            } else {
                t.size
            };
            // DVC hides its own folder.
            if t.path == ".dvc" || t.path.starts_with(".dvc/") {
                continue;
            }
            items.insert(
                t.path.clone(),
                Item {
                    entry: Entry {
                        path: t.path.clone(),
                        isout: false,
                        isdir: t.is_tree,
                        isexec: t.executable,
                        size,
                        md5: None,
                    },
                    blob: (!t.is_tree).then_some(t.oid),
                    out: None,
                    has_dvc: false,
                },
            );
        }
        for (path, out) in outs {
            let isdir = out.oid.is_some_and(|o| o.is_dir());
            items.insert(
                path.clone(),
                Item {
                    entry: Entry {
                        path: path.clone(),
                        isout: true,
                        isdir,
                        isexec: out.isexec,
                        size: out.size,
                        md5: out.oid.map(|o| o.to_string()),
                    },
                    blob: None,
                    out: Some(out.clone()),
                    has_dvc: true,
                },
            );
            let mut p = parent(path);
            while !p.is_empty() {
                let item = items.entry(p.to_string()).or_insert_with(|| Item {
                    entry: Entry {
                        path: p.to_string(),
                        isout: false,
                        isdir: true,
                        isexec: false,
                        size: None,
                        md5: None,
                    },
                    blob: None,
                    out: None,
                    has_dvc: false,
                });
                item.has_dvc = true;
                p = parent(p);
            }
        }
        Listing { items }
    }

    /// The output directory `path` is at or inside, with the part of `path` below it.
    fn enclosing_dir_out<'a>(&self, path: &'a str) -> Option<(&Item, &'a str)> {
        let mut p = path;
        loop {
            if let Some(item) = self.items.get(p) {
                if item.out.is_some() && item.entry.isdir {
                    let rest = under(path, p).unwrap_or("");
                    return Some((item, rest));
                }
            }
            if p.is_empty() {
                return None;
            }
            p = parent(p);
        }
    }

    /// The output directory's files below `sub`, relative to `sub` (to the directory when
    /// empty), and the directories among them.
    fn dir_files<E>(
        out: &Out,
        sub: &str,
        manifests: &mut dyn FnMut(HashKind, ObjectId) -> Result<Manifest, E>,
    ) -> Result<Option<Vec<File>>, E> {
        let Some(oid) = out.oid else {
            return Ok(Some(Vec::new()));
        };
        let m = manifests(out.kind, oid)?;
        let mut files = Vec::new();
        let mut found = sub.is_empty();
        for e in m.entries() {
            if e.relpath == sub {
                return Ok(Some(vec![File {
                    rel: String::new(),
                    content: Content::Dvc {
                        kind: out.kind,
                        oid: e.oid,
                    },
                    isexec: false,
                    size: None,
                }]));
            }
            if let Some(rel) = under(&e.relpath, sub) {
                found = true;
                files.push(File {
                    rel: rel.to_string(),
                    content: Content::Dvc {
                        kind: out.kind,
                        oid: e.oid,
                    },
                    isexec: false,
                    size: None,
                });
            }
        }
        Ok(found.then_some(files))
    }

    /// Every file at or under `path`, relative to it, with where its bytes come from; the flag
    /// says whether `path` is a directory. Only `dvc_only` files when asked.
    pub fn files<E>(
        &self,
        path: &str,
        dvc_only: bool,
        manifests: &mut dyn FnMut(HashKind, ObjectId) -> Result<Manifest, E>,
    ) -> Result<(bool, Vec<File>), ListingError<E>> {
        let path = normalize(path);
        let not_found = || ListingError::NotFound { path: path.clone() };
        if let Some((item, sub)) = self.enclosing_dir_out(&path) {
            let out = item.out.as_ref().ok_or_else(not_found)?;
            let files = Self::dir_files(out, sub, manifests)
                .map_err(ListingError::Manifest)?
                .ok_or_else(not_found)?;
            let is_dir = !(files.len() == 1 && files[0].rel.is_empty());
            return Ok((is_dir, files));
        }
        let top = if path.is_empty() {
            None
        } else {
            Some(self.items.get(&path).ok_or_else(not_found)?)
        };
        if let Some(item) = top {
            if !item.entry.isdir {
                let files = Self::file_of(item, String::new(), dvc_only);
                return Ok((false, files.into_iter().collect()));
            }
        }
        let mut files = Vec::new();
        for (p, item) in self.range_under(&path) {
            let Some(rel) = under(p, &path) else { continue };
            if item.entry.isdir {
                if let Some(out) = &item.out {
                    for f in Self::dir_files(out, "", manifests)
                        .map_err(ListingError::Manifest)?
                        .unwrap_or_default()
                    {
                        files.push(File {
                            rel: format!("{rel}/{}", f.rel),
                            ..f
                        });
                    }
                }
                continue;
            }
            files.extend(Self::file_of(item, rel.to_string(), dvc_only));
        }
        Ok((true, files))
    }

    fn file_of(item: &Item, rel: String, dvc_only: bool) -> Option<File> {
        let content = match (&item.out, &item.blob) {
            (Some(out), _) => Content::Dvc {
                kind: out.kind,
                oid: out.oid?,
            },
            (None, Some(blob)) if !dvc_only => Content::Git { blob: blob.clone() },
            _ => return None,
        };
        Some(File {
            rel,
            content,
            isexec: item.entry.isexec,
            size: item.entry.size,
        })
    }

    /// Items strictly below `path`, in path order (entries inside output directories
    /// excluded: they come from manifests).
    fn range_under<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (&'a String, &'a Item)> {
        self.items
            .iter()
            .filter(move |(p, _)| !p.is_empty() && under(p, path).is_some_and(|r| !r.is_empty()))
            .filter(move |(p, _)| {
                // Skip what an output directory above would hide.
                let mut q = parent(p);
                loop {
                    if q.is_empty() || q.len() <= path.len() {
                        return true;
                    }
                    if self.items.get(q).is_some_and(|i| i.out.is_some()) {
                        return false;
                    }
                    q = parent(q);
                }
            })
    }

    /// What `dvc list URL PATH` prints: `path`'s children (or, `recursive`, every file below
    /// it), or the file itself; sorted by path.
    pub fn list<E>(
        &self,
        path: &str,
        recursive: bool,
        dvc_only: bool,
        manifests: &mut dyn FnMut(HashKind, ObjectId) -> Result<Manifest, E>,
    ) -> Result<Vec<Entry>, ListingError<E>> {
        let path = normalize(path);
        let not_found = || ListingError::NotFound { path: path.clone() };
        let mut entries: Vec<Entry> = Vec::new();
        if let Some((item, sub)) = self.enclosing_dir_out(&path) {
            let out = item.out.as_ref().ok_or_else(not_found)?;
            let files = Self::dir_files(out, sub, manifests)
                .map_err(ListingError::Manifest)?
                .ok_or_else(not_found)?;
            let dvc_file = |rel: &str, f: &File| Entry {
                path: rel.to_string(),
                isout: true,
                isdir: false,
                isexec: false,
                size: None,
                md5: match &f.content {
                    Content::Dvc { oid, .. } => Some(oid.to_string()),
                    Content::Git { .. } => None,
                },
            };
            if files.len() == 1 && files[0].rel.is_empty() {
                entries.push(dvc_file(name(&path), &files[0]));
                return Ok(entries);
            }
            for f in &files {
                if recursive {
                    entries.push(dvc_file(&f.rel, f));
                    continue;
                }
                match f.rel.split_once('/') {
                    None => entries.push(dvc_file(&f.rel, f)),
                    Some((dir, _)) => entries.push(Entry {
                        path: dir.to_string(),
                        isout: true,
                        isdir: true,
                        isexec: false,
                        size: None,
                        md5: None,
                    }),
                }
            }
            entries.sort_by(|a, b| a.path.cmp(&b.path));
            entries.dedup_by(|a, b| a.path == b.path);
            return Ok(entries);
        }
        if !path.is_empty() {
            let item = self.items.get(&path).ok_or_else(not_found)?;
            if !item.entry.isdir {
                let mut e = item.entry.clone();
                e.path = name(&path).to_string();
                return Ok(vec![e]);
            }
        }
        if recursive {
            let (_, files) = self.files(&path, dvc_only, manifests)?;
            for f in files {
                let full = if path.is_empty() {
                    f.rel.clone()
                } else {
                    format!("{path}/{}", f.rel)
                };
                let entry = match self.items.get(&full) {
                    Some(item) => Entry {
                        path: f.rel,
                        ..item.entry.clone()
                    },
                    None => Entry {
                        path: f.rel,
                        isout: true,
                        isdir: false,
                        isexec: false,
                        size: None,
                        md5: match f.content {
                            Content::Dvc { oid, .. } => Some(oid.to_string()),
                            Content::Git { .. } => None,
                        },
                    },
                };
                entries.push(entry);
            }
        } else {
            for (p, item) in self.range_under(&path) {
                let Some(rel) = under(p, &path) else { continue };
                if rel.contains('/') || (dvc_only && !item.has_dvc) {
                    continue;
                }
                entries.push(Entry {
                    path: rel.to_string(),
                    ..item.entry.clone()
                });
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(path: &str, size: u64) -> TreeEntry {
        TreeEntry {
            path: path.into(),
            is_tree: false,
            executable: false,
            oid: format!("{size:040}"),
            size: Some(size),
        }
    }

    fn tree(path: &str) -> TreeEntry {
        TreeEntry {
            path: path.into(),
            is_tree: true,
            executable: false,
            oid: "0".repeat(40),
            size: None,
        }
    }

    const DIR: &str = "3ccabac68ff12f7672d6f8e3bb43c241.dir";
    const A: &str = "60b725f10c9c85c70d97880dfe8191b3";
    const B: &str = "bfcc9da4f2e1d313c63cd0a4ee7604e9";

    fn out(path: &str, oid: &str, size: u64) -> (String, Out) {
        (
            path.into(),
            Out {
                path: path.into(),
                oid: oid.parse().ok(),
                kind: HashKind::Md5,
                size: Some(size),
                nfiles: None,
                isexec: false,
                cache: true,
                push: true,
            },
        )
    }

    fn listing() -> Listing {
        Listing::new(
            vec![
                tree(".dvc"),
                blob(".dvc/config", 3),
                blob("README.md", 7),
                blob("data.dvc", 97),
                tree("src"),
                blob("src/run.py", 9),
            ],
            &[1, 34],
            &[out("data", DIR, 5)],
        )
    }

    fn manifests(_: HashKind, oid: ObjectId) -> Result<Manifest, String> {
        assert_eq!(oid.to_string(), DIR);
        Manifest::parse(
            format!("[{{\"md5\": \"{A}\", \"relpath\": \"a.txt\"}}, {{\"md5\": \"{B}\", \"relpath\": \"sub/b.txt\"}}]")
                .as_bytes(),
        )
        .map_err(|e| e.to_string())
    }

    fn paths(v: &[Entry]) -> Vec<&str> {
        v.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn lists_as_dvc_does() {
        let l = listing();
        let top = l.list("", false, false, &mut manifests).expect("top");
        assert_eq!(paths(&top), ["README.md", "data", "data.dvc", "src"]);
        assert_eq!(top[3].size, Some(34));
        assert_eq!(top[1].md5.as_deref(), Some(DIR));
        let all = l.list("", true, false, &mut manifests).expect("all");
        assert_eq!(
            paths(&all),
            [
                "README.md",
                "data.dvc",
                "data/a.txt",
                "data/sub/b.txt",
                "src/run.py"
            ]
        );
        let dvc = l.list(".", true, true, &mut manifests).expect("dvc");
        assert_eq!(paths(&dvc), ["data/a.txt", "data/sub/b.txt"]);
        let inside = l.list("data/", false, false, &mut manifests).expect("data");
        assert_eq!(paths(&inside), ["a.txt", "sub"]);
        assert!(inside[1].isdir && inside[1].isout);
        let file = l
            .list("data/sub/b.txt", false, false, &mut manifests)
            .expect("b");
        assert_eq!(paths(&file), ["b.txt"]);
        let e = l
            .list("data/nope", false, false, &mut manifests)
            .expect_err("nope");
        assert_eq!(
            e.to_string(),
            "[Errno 2] No such file or directory: '/data/nope': ('data', 'nope')"
        );
        let e = l
            .list("nope", false, false, &mut manifests)
            .expect_err("nope");
        assert_eq!(
            e.to_string(),
            "[Errno 2] No such file or directory: '/nope': ('nope',)"
        );
    }

    #[test]
    fn files_under_a_path() {
        let l = listing();
        let (is_dir, files) = l.files("data/sub", false, &mut manifests).expect("sub");
        assert!(is_dir);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].rel, "b.txt");
        let (is_dir, files) = l.files("src/run.py", false, &mut manifests).expect("git");
        assert!(!is_dir);
        assert!(matches!(files[0].content, Content::Git { .. }));
    }
}
