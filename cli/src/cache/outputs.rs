//! Tracked outputs in the workspace: their current hash (through the hash cache), saving them
//! into the cache, and checking whether the cache holds everything they need.

use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};
use rayon::prelude::*;

use super::{Cache, CacheError, Committer, Staged, GROUP_FILE_MAX};
use crate::hash::manifest::{Entry, Manifest};
use crate::hash::state::{DirFiles, DirSummary, HashState};
use crate::hash::walk::{self, FileEntry, Stat, Tree};
use crate::hash::{hash_file, HashError};
use crate::printer::Printer;
use crate::repo::dvcfile::OutRecord;
use crate::repo::dvcignore::DvcIgnore;
use crate::repo::pipeline::{owner, targets};
use crate::repo::Repo;

/// What a workspace path holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Missing,
    File {
        oid: ObjectId,
        size: u64,
        isexec: bool,
    },
    Dir {
        oid: ObjectId,
        size: u64,
        nfiles: u64,
    },
}

impl Found {
    pub fn oid(&self) -> Option<ObjectId> {
        match self {
            Found::Missing => None,
            Found::File { oid, .. } | Found::Dir { oid, .. } => Some(*oid),
        }
    }
}

/// A directory as hashed: its files with their hashes, and the manifest built from them.
#[derive(Debug)]
pub struct HashedDir {
    pub tree: Tree,
    /// Hash of each file of `tree.files`, in the same order.
    pub oids: Vec<ObjectId>,
    pub manifest: Manifest,
}

/// The repository's cache, hash cache and ignore rules, shared by the data commands.
pub struct Outputs {
    pub root: PathBuf,
    pub cache: Cache,
    pub state: HashState,
    pub ignore: DvcIgnore,
}

impl Outputs {
    /// The outputs of `repo`; `out` hears about a hash cache that had to be rebuilt.
    pub fn open(repo: &Repo, out: Printer) -> Result<Outputs, CacheError> {
        Ok(Outputs {
            root: repo.root.clone(),
            cache: Cache::for_repo(repo)?,
            state: HashState::open(&repo.tmp_dir(), out),
            ignore: DvcIgnore::new(&repo.root),
        })
    }

    /// Outputs under `root` outside any repository (where `get` writes): objects come from
    /// `cache`, and no hash is remembered between runs.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "what `lode get` checks out with, pinned by a test"
        )
    )]
    pub fn outside_repo(root: &Path, cache: Cache) -> Outputs {
        Outputs {
            root: root.to_path_buf(),
            cache,
            state: HashState::disabled(),
            ignore: DvcIgnore::new(root),
        }
    }

    /// Whether `.dvcignore` excludes an absolute path inside the repository.
    pub fn ignored(&self, abs: &Path, is_dir: bool) -> bool {
        match abs.strip_prefix(&self.root) {
            Ok(rel) => self.ignore.is_ignored(rel, is_dir),
            Err(_) => false,
        }
    }

    /// Lists a directory, leaving out what `.dvcignore` excludes.
    pub fn walk(&self, dir: &Path) -> Result<Tree, HashError> {
        if self.only_builtin_ignores(dir) {
            // No pattern can apply below `dir`: test names against DVC's built-in rules directly
            // rather than matching every path.
            return walk::walk(dir, &|p: &Path, d: bool| builtin_ignored(p, d));
        }
        walk::walk(dir, &|p: &Path, d: bool| self.ignored(p, d))
    }

    /// True when no `.dvcignore` from the root down to `dir` holds a pattern. (One inside `dir`
    /// is an error the walk reports.)
    fn only_builtin_ignores(&self, dir: &Path) -> bool {
        let Ok(rel) = dir.strip_prefix(&self.root) else {
            return false;
        };
        let mut cur = self.root.clone();
        let mut dirs = vec![cur.clone()];
        for c in rel.components() {
            cur.push(c);
            dirs.push(cur.clone());
        }
        dirs.iter()
            .all(|d| match std::fs::read_to_string(d.join(".dvcignore")) {
                Ok(text) => text
                    .lines()
                    .map(str::trim)
                    .all(|l| l.is_empty() || l.starts_with('#')),
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            })
    }

    /// The current hash of `path` for `kind`, reading only files the hash cache doesn't know.
    pub fn hash(&self, path: &Path, kind: HashKind) -> Result<Found, CacheError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
            Err(e) => return Err(HashError::io(path, e).into()),
        };
        if meta.is_dir() {
            let tree = self.walk(path)?;
            if let Some(sum) = self.state.get_dir(kind, path, &tree.files) {
                return Ok(Found::Dir {
                    oid: sum.oid,
                    size: sum.size,
                    nfiles: sum.nfiles,
                });
            }
            let hd = self.hash_tree(path, tree, kind)?;
            Ok(dir_found(&hd))
        } else {
            let stat = Stat::of(&meta);
            let oid = match self.state.get_file(kind, path, &stat) {
                Some(oid) => oid,
                None => {
                    let (oid, _) = hash_file(path, kind)?;
                    self.state
                        .put_files(kind, [(path.to_path_buf(), &stat, oid)]);
                    oid
                }
            };
            Ok(Found::File {
                oid,
                size: stat.size,
                isexec: stat.is_exec(),
            })
        }
    }

    /// Hashes every file of a walked directory (in parallel, through the hash cache).
    pub fn hash_tree(
        &self,
        dir: &Path,
        tree: Tree,
        kind: HashKind,
    ) -> Result<HashedDir, CacheError> {
        let mut known = self.state.get_dir_files(kind, dir);
        let results: Vec<Result<(ObjectId, bool), HashError>> = tree
            .files
            .par_iter()
            .map(|f| match known.get(&f.rel, &f.stat) {
                Some(oid) => Ok((oid, false)),
                None => hash_file(&join_rel(dir, &f.rel), kind).map(|(oid, _)| (oid, true)),
            })
            .collect();
        let mut oids = Vec::with_capacity(results.len());
        for (f, r) in tree.files.iter().zip(results) {
            let (oid, new) = r?;
            if new {
                known.insert_read(&f.rel, &f.stat, oid);
            }
            oids.push(oid);
        }
        self.forget_missing(&mut known, &tree);
        self.state.put_dir_files(kind, dir, &known);
        let hd = finish_dir(tree, oids);
        self.remember_dir(dir, kind, &hd);
        Ok(hd)
    }

    /// Drops records of files no longer in the directory, so the record tracks the tree.
    fn forget_missing(&self, known: &mut DirFiles, tree: &Tree) {
        let present: std::collections::HashSet<&str> =
            tree.files.iter().map(|f| f.rel.as_str()).collect();
        known.retain(|r| present.contains(r));
    }

    fn remember_dir(&self, dir: &Path, kind: HashKind, hd: &HashedDir) {
        self.remember_found(dir, kind, &hd.tree.files, &dir_found(hd));
    }

    fn remember_found(&self, dir: &Path, kind: HashKind, files: &[FileEntry], found: &Found) {
        if let Found::Dir { oid, size, nfiles } = *found {
            self.state
                .put_dir(kind, dir, files, DirSummary { oid, size, nfiles });
        }
    }

    /// Hashes `path` and stores it (every file, and the manifest of a directory) in the cache.
    /// Each file is read once: it is hashed while it is copied into the cache.
    pub fn save(&self, path: &Path, kind: HashKind) -> Result<Found, CacheError> {
        let meta = std::fs::metadata(path).map_err(|e| HashError::io(path, e))?;
        if !meta.is_dir() {
            return self.save_file(path, kind, Stat::of(&meta));
        }
        let tree = self.walk(path)?;
        let mut known = self.state.get_dir_files(kind, path);
        // Many new files: one listing of the object folders answers "already stored?" for all
        // of them, instead of a failing `stat` each. Not worth it when the cache is much larger.
        let listed = (tree.files.len() >= 1024
            && self.cache.estimate_objects(kind) <= 4 * tree.files.len())
        .then(|| self.cache.list_objects(kind));
        self.cache.commit_streaming(|committer| {
            // Chunks of files go to one thread each, so that their small files are hashed side
            // by side.
            let results: Vec<Vec<Result<(ObjectId, bool), CacheError>>> = tree
                .files
                .par_chunks(GROUP_FILES)
                .map(|chunk| {
                    let mut out: Vec<Option<Result<(ObjectId, bool), CacheError>>> =
                        (0..chunk.len()).map(|_| None).collect();
                    let mut group = Vec::new();
                    let mut slots = Vec::new();
                    for (i, f) in chunk.iter().enumerate() {
                        if let Some(oid) = known.get(&f.rel, &f.stat) {
                            if self.cache.is_protected(&oid, kind) {
                                out[i] = Some(Ok((oid, false)));
                                continue;
                            }
                        }
                        let abs = join_rel(path, &f.rel);
                        if f.stat.size <= GROUP_FILE_MAX {
                            group.push((abs, f.stat));
                            slots.push(i);
                            continue;
                        }
                        let staged =
                            self.cache
                                .stage_file_listed(&abs, kind, Some(f.stat), listed.as_ref());
                        out[i] = Some(staged.map(|s| hand_over(committer, s)));
                    }
                    let staged = self.cache.stage_group(&group, kind, listed.as_ref());
                    for (i, s) in slots.into_iter().zip(staged) {
                        out[i] = Some(s.map(|s| hand_over(committer, s)));
                    }
                    out.into_iter()
                        .zip(chunk)
                        .map(|(r, f)| {
                            r.unwrap_or_else(|| {
                                Err(CacheError::Io {
                                    path: join_rel(path, &f.rel),
                                    source: std::io::Error::other("file was not stored"),
                                })
                            })
                        })
                        .collect()
                })
                .collect();
            let mut oids = Vec::with_capacity(tree.files.len());
            for (f, r) in tree.files.iter().zip(results.into_iter().flatten()) {
                let (oid, read) = r?;
                if read {
                    known.insert_read(&f.rel, &f.stat, oid);
                }
                oids.push(oid);
            }
            let bytes = manifest_of(&tree, &oids).to_json();
            let dir_oid = ObjectId::from_digest(crate::hash::md5_bytes(&bytes), true);
            // Handed over last, so the directory object appears only after all its entries.
            committer.push(self.cache.stage_bytes(dir_oid, kind, &bytes)?);
            // The hash cache is written while the last batch is flushed and renamed. Its records
            // are about the workspace files, true whether or not the objects get stored.
            self.forget_missing(&mut known, &tree);
            self.state.put_dir_files(kind, path, &known);
            // Named by the bytes just stored: no need to serialise the manifest again.
            let found = Found::Dir {
                oid: dir_oid,
                size: tree.files.iter().map(|f| f.stat.size).sum(),
                nfiles: tree.files.len() as u64,
            };
            self.remember_found(path, kind, &tree.files, &found);
            Ok(found)
        })
    }

    /// Stores one file (of stat `stat`), unless the hash cache knows it and its object is in
    /// place.
    fn save_file(&self, path: &Path, kind: HashKind, stat: Stat) -> Result<Found, CacheError> {
        let found = |oid| Found::File {
            oid,
            size: stat.size,
            isexec: stat.is_exec(),
        };
        if let Some(oid) = self.state.get_file(kind, path, &stat) {
            if self.cache.is_protected(&oid, kind) {
                return Ok(found(oid));
            }
        }
        let staged = self.cache.stage_file_at(path, kind, Some(stat))?;
        let oid = staged.oid;
        self.cache.commit(vec![staged])?;
        self.state
            .put_files(kind, [(path.to_path_buf(), &stat, oid)]);
        Ok(found(oid))
    }

    /// Whether the cache holds `oid` and, for a directory, its manifest and every entry.
    ///
    /// Reading a large manifest and listing the cache costs more than the rest of a `status`, so
    /// a directory found complete is remembered with the fingerprint of the cache folders; while
    /// no object is added, removed or renamed the answer stands without reading anything.
    pub fn in_cache(&self, oid: &ObjectId, kind: HashKind) -> bool {
        if !oid.is_dir() {
            return self.cache.contains(oid, kind);
        }
        let before = self.cache.folders_fingerprint(kind);
        if let Some(fp) = &before {
            if self.state.is_complete(kind, self.cache.root(), oid, fp) {
                return true;
            }
        }
        let complete = match self.cache.read_manifest(oid, kind) {
            Ok(m) => {
                let oids: Vec<ObjectId> = m.entries().iter().map(|e| e.oid).collect();
                self.cache.contains_all(&oids, kind)
            }
            Err(_) => false,
        };
        // Recorded only when the folders did not change while they were checked.
        if let (true, Some(fp)) = (complete, before) {
            if self.cache.folders_fingerprint(kind) == Some(fp) {
                self.state.put_complete(kind, self.cache.root(), oid, &fp);
            }
        }
        complete
    }

    pub fn flush(&self) {
        self.state.flush();
    }
}

/// Files per chunk of a directory being stored; small files of a chunk are hashed together.
const GROUP_FILES: usize = 64;

/// Queues a staged object for the committer and notes it was read.
fn hand_over(committer: &Committer, staged: Staged) -> (ObjectId, bool) {
    let oid = staged.oid;
    committer.push(staged);
    (oid, true)
}

/// DVC's built-in ignores: `.git` anywhere, `.hg/`, `.dvc/` folders, and nested repositories
/// (folders holding their own `.dvc/`).
fn builtin_ignored(p: &Path, is_dir: bool) -> bool {
    let name = p
        .file_name()
        .map(|n| n.as_encoded_bytes())
        .unwrap_or_default();
    if name == b".git" {
        return true;
    }
    is_dir && (name == b".hg" || name == b".dvc" || p.join(".dvc").is_dir())
}

fn dir_found(hd: &HashedDir) -> Found {
    Found::Dir {
        oid: hd.manifest.oid(),
        size: hd.tree.files.iter().map(|f| f.stat.size).sum(),
        nfiles: hd.tree.files.len() as u64,
    }
}

fn manifest_of(tree: &Tree, oids: &[ObjectId]) -> Manifest {
    Manifest::new(
        tree.files
            .iter()
            .zip(oids)
            .map(|(f, oid)| Entry {
                relpath: f.rel.clone(),
                oid: *oid,
            })
            .collect(),
    )
}

fn finish_dir(tree: Tree, oids: Vec<ObjectId>) -> HashedDir {
    let manifest = manifest_of(&tree, &oids);
    HashedDir {
        tree,
        oids,
        manifest,
    }
}

/// `dir` joined with a `/`-separated relative path.
pub fn join_rel(dir: &Path, rel: &str) -> PathBuf {
    let mut p = dir.to_path_buf();
    for part in rel.split('/') {
        p.push(part);
    }
    p
}

/// A declaration (`.dvc` file or pipeline stage) and which of its outputs a command was asked
/// about.
pub type Tracked = crate::repo::pipeline::targets::Selected;

impl Outputs {
    /// The declarations and outputs that `targets` name (all of them when empty): see
    /// [`targets::select`](crate::repo::pipeline::targets::select). `code` is the exit code for
    /// an invalid declaration or unknown target, which are named relative to `cwd`.
    pub fn tracked(
        &self,
        targets: &[PathBuf],
        cwd: &Path,
        code: crate::ExitCode,
    ) -> Result<Vec<Tracked>, crate::LodeError> {
        let all = || owner::collect(&self.root, &|p: &Path, d: bool| self.ignored(p, d), cwd);
        targets::select(targets, cwd, code, &all)
    }

    /// The workspace files at the path of an output without a recorded hash, which a checkout
    /// would have to remove.
    pub fn unversioned_files(&self, path: &Path) -> Vec<PathBuf> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => self
                .walk(path)
                .map(|t| t.files.iter().map(|f| join_rel(path, &f.rel)).collect())
                .unwrap_or_default(),
            Ok(_) => vec![path.to_path_buf()],
            Err(_) => Vec::new(),
        }
    }

    /// Whether checkout and pull handle an output: it is cached and inside the repository (a
    /// pipeline may name paths outside it, which are never written).
    pub fn checks_out(&self, out: &crate::repo::dvcfile::Out, path: &Path) -> bool {
        out.cache && path.starts_with(&self.root)
    }
}

/// The `.dvc` entry values for a saved output (DVC 3 kind unless `kind` says otherwise).
pub fn out_record(path: String, kind: HashKind, found: &Found) -> Option<OutRecord> {
    match *found {
        Found::File { oid, size, isexec } => Some(OutRecord {
            path,
            oid,
            kind,
            size,
            nfiles: None,
            isexec,
        }),
        Found::Dir { oid, size, nfiles } => Some(OutRecord {
            path,
            oid,
            kind,
            size,
            nfiles: Some(nfiles),
            isexec: false,
        }),
        Found::Missing => None,
    }
}
