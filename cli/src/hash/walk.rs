//! Parallel walks of tracked directories: one `stat` per file, subdirectories listed concurrently.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use super::HashError;

/// What the hash cache keys on, besides the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stat {
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
}

impl Stat {
    pub fn of(m: &std::fs::Metadata) -> Stat {
        Stat {
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
            mode: m.mode(),
        }
    }

    /// Any execute bit set, as DVC's `isexec` check does.
    pub fn is_exec(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// A file found under a walked directory.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// `/`-separated path relative to the walked directory.
    pub rel: String,
    pub stat: Stat,
}

/// Everything below a directory that is not ignored.
#[derive(Debug, Default)]
pub struct Tree {
    pub files: Vec<FileEntry>,
    /// Subdirectories (relative, `/`-separated), including empty ones.
    pub dirs: Vec<String>,
}

/// Decides whether an absolute path is excluded (by `.dvcignore`); the bool says it is a directory.
pub type IgnoreFn<'a> = dyn Fn(&Path, bool) -> bool + Sync + 'a;

/// Walks `root`, following symlinks to files and directories, skipping what `ignored` rejects.
/// A `.dvcignore` below `root` is an error, as it is for DVC. Files come back sorted by relpath bytes.
pub fn walk(root: &Path, ignored: &IgnoreFn<'_>) -> Result<Tree, HashError> {
    let mut tree = walk_dir(root, "", ignored)?;
    tree.files
        .par_sort_unstable_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    tree.dirs.sort_unstable();
    Ok(tree)
}

fn walk_dir(abs: &Path, rel: &str, ignored: &IgnoreFn<'_>) -> Result<Tree, HashError> {
    let rd = std::fs::read_dir(abs).map_err(|e| HashError::io(abs, e))?;
    let mut tree = Tree::default();
    let mut subdirs: Vec<(PathBuf, String)> = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| HashError::io(abs, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else {
            // DVC can't represent non-UTF-8 names in .dvc files or manifests either.
            continue;
        };
        let path = ent.path();
        let child_rel = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let ft = ent.file_type().map_err(|e| HashError::io(&path, e))?;
        let meta = if ft.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(m) => m,
                // A dangling link has nothing to track.
                Err(_) => continue,
            }
        } else if ft.is_dir() {
            if ignored(&path, true) {
                continue;
            }
            subdirs.push((path, child_rel));
            continue;
        } else {
            ent.metadata().map_err(|e| HashError::io(&path, e))?
        };
        if meta.is_dir() {
            if !ignored(&path, true) {
                subdirs.push((path, child_rel));
            }
            continue;
        }
        if !meta.is_file() || ignored(&path, false) {
            continue;
        }
        if name == ".dvcignore" {
            return Err(HashError::NestedDvcIgnore {
                path: abs.to_path_buf(),
            });
        }
        tree.files.push(FileEntry {
            rel: child_rel,
            stat: Stat::of(&meta),
        });
    }
    let children: Vec<Result<Tree, HashError>> = subdirs
        .par_iter()
        .map(|(p, r)| walk_dir(p, r, ignored))
        .collect();
    for ((_, r), child) in subdirs.into_iter().zip(children) {
        let child = child?;
        tree.dirs.push(r);
        tree.files.extend(child.files);
        tree.dirs.extend(child.dirs);
    }
    Ok(tree)
}

/// `path` relative to `base` (both made absolute lexically), with `..` where needed.
pub fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let path = normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    let base = normalize(&std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf()));
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Removes `.` and resolves `..` lexically (no symlink resolution, like `os.path.normpath`).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_and_rejects_nested_dvcignore() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::create_dir_all(d.path().join("empty")).unwrap();
        std::fs::write(d.path().join("a/b/x"), b"1").unwrap();
        std::fs::write(d.path().join("a.txt"), b"22").unwrap();
        std::fs::write(d.path().join("skip.tmp"), b"").unwrap();
        let ign = |p: &Path, _d: bool| p.extension().is_some_and(|e| e == "tmp");
        let t = walk(d.path(), &ign).unwrap();
        let rels: Vec<_> = t.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, ["a.txt", "a/b/x"]);
        assert_eq!(t.dirs, ["a", "a/b", "empty"]);
        std::fs::write(d.path().join("a/.dvcignore"), b"").unwrap();
        assert!(matches!(
            walk(d.path(), &ign),
            Err(HashError::NestedDvcIgnore { .. })
        ));
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to(Path::new("/a/b/c"), Path::new("/a/x")),
            PathBuf::from("../b/c")
        );
        assert_eq!(
            relative_to(Path::new("/a/b"), Path::new("/a/b")),
            PathBuf::from(".")
        );
    }
}
