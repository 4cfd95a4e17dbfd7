//! Making workspace outputs match their recorded hashes from the cache.
//!
//! Checkout is planned before anything is touched, so that a run which would lose unsaved work
//! (workspace content that is not in the cache) can stop with nothing changed, as DVC does.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};
use rayon::prelude::*;

use super::outputs::{join_rel, Found, Outputs, Tracked};
use super::CacheError;
use crate::hash::manifest::Manifest;
use crate::hash::state::DirSummary;
use crate::hash::walk::{FileEntry, Stat, Tree};
use crate::hash::HashError;
use crate::printer::Printer;
use crate::repo::dvcfile::Out;

/// What checking out one output will do.
#[derive(Debug)]
pub enum Plan {
    /// Already as recorded.
    Nothing,
    /// The cache lacks the object or some of a directory's entries.
    Missing,
    File {
        oid: ObjectId,
        existed: bool,
    },
    Dir(DirPlan),
}

/// What checking out a directory does.
#[derive(Debug)]
pub struct DirPlan {
    manifest: Manifest,
    existed: bool,
    /// Entries to (re)link.
    link: Vec<usize>,
    /// Workspace files that are not part of the manifest.
    delete: Vec<PathBuf>,
    /// Folders not needed by the manifest, deepest first.
    prune: Vec<PathBuf>,
    /// A file sits where the directory should be.
    replace_file: bool,
}

/// A plan, and the workspace files it would overwrite or delete whose content the cache lacks.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub unsaved: Vec<PathBuf>,
    /// False when the plan only re-creates links (`--relink`) for content already in place.
    pub changed: bool,
}

/// The change a checkout made, as DVC's letters: `A` added, `M` modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
}

impl Change {
    pub fn letter(self) -> char {
        match self {
            Change::Added => 'A',
            Change::Modified => 'M',
        }
    }
}

fn exec_mode(isexec: bool) -> u32 {
    let m = 0o666 & !super::umask();
    if isexec {
        m | 0o100
    } else {
        m
    }
}

/// Whether a checkout re-creates the links of content that is already in place (`--relink`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relink {
    No,
    Yes,
}

/// The checkout of several outputs, every plan made before anything is touched.
#[derive(Debug)]
pub struct Batch<'a> {
    items: Vec<(PathBuf, &'a Out, Planned)>,
    /// Workspace files the checkout would overwrite or delete whose content the cache lacks.
    pub unsaved: Vec<PathBuf>,
    /// Outputs whose objects (or some of a directory's) the cache lacks; left alone.
    pub missing: Vec<PathBuf>,
    /// Outputs recorded without a hash (a pipeline stage that never ran), among `missing`.
    unhashed: Vec<PathBuf>,
}

impl Applied<'_> {
    /// The line DVC prints for the change: `A       images/`, the path relative to `cwd`.
    pub fn shown(&self, cwd: &Path) -> String {
        let slash = if self.is_dir { "/" } else { "" };
        format!(
            "{}       {}{slash}",
            self.change.letter(),
            crate::hash::walk::relative_to(self.path, cwd).display()
        )
    }
}

impl Batch<'_> {
    /// DVC's warning for each output that has no hash to check out.
    pub fn warn_unhashed(&self, out: Printer) {
        for path in &self.unhashed {
            out.warn(format_args!(
                "No file hash info found for '{}'. It won't be created.",
                path.display()
            ));
        }
    }

    /// DVC's refusal to overwrite unsaved workspace files, when there are any.
    pub fn unsaved_refusal(&self) -> Option<String> {
        if self.unsaved.is_empty() {
            return None;
        }
        let mut list: Vec<String> = self
            .unsaved
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        list.sort();
        Some(format!(
            "Can't remove the following unsaved files without confirmation. Use `--force` to force.\n{}",
            list.join("\n")
        ))
    }

    /// DVC's report of the outputs the checkout cannot restore (named relative to `cwd`), when
    /// there are any.
    pub fn missing_report(&self, cwd: &Path) -> Option<String> {
        if self.missing.is_empty() {
            return None;
        }
        let shown: Vec<String> = self
            .missing
            .iter()
            .map(|p| crate::hash::walk::relative_to(p, cwd).display().to_string())
            .collect();
        Some(format!(
            "Checkout failed for following targets:\n{}\nIs your cache up to date?\n<https://error.dvc.org/missing-files>",
            shown.join("\n")
        ))
    }
}

/// One output a batch changed.
#[derive(Debug)]
pub struct Applied<'p> {
    pub path: &'p Path,
    pub change: Change,
    pub is_dir: bool,
    /// Files linked into place, and workspace files a directory no longer holds.
    pub linked: usize,
    pub deleted: usize,
    /// False when only links were re-created for content already in place.
    pub changed: bool,
}

impl Outputs {
    /// Plans the checkout of the cached outputs of `tracked`.
    pub fn plan_batch<'a>(
        &self,
        tracked: &'a [Tracked],
        relink: Relink,
    ) -> Result<Batch<'a>, CacheError> {
        let mut batch = Batch {
            items: Vec::new(),
            unsaved: Vec::new(),
            missing: Vec::new(),
            unhashed: Vec::new(),
        };
        for t in tracked {
            for &i in &t.outs {
                let out = &t.owner.outs()[i];
                let path = t.owner.out_path(i);
                if !self.checks_out(out, &path) {
                    continue;
                }
                let mut planned = self.plan_checkout(&path, out, relink)?;
                if matches!(planned.plan, Plan::Missing) {
                    if out.oid.is_none() {
                        // DVC would delete what is there; it is kept, and reported.
                        batch.unsaved.extend(self.unversioned_files(&path));
                        batch.unhashed.push(path.clone());
                    }
                    batch.missing.push(path);
                    continue;
                }
                batch.unsaved.append(&mut planned.unsaved);
                batch.items.push((path, out, planned));
            }
        }
        Ok(batch)
    }

    /// Carries out a batch, calling `each` for every output changed; stops at the first error.
    /// What was learnt about the workspace is saved either way.
    pub fn apply_batch<E: From<CacheError>>(
        &self,
        batch: Batch<'_>,
        mut each: impl FnMut(Applied<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut result = Ok(());
        for (path, out, planned) in batch.items {
            let (is_dir, linked, deleted) = match &planned.plan {
                Plan::Dir(d) => (
                    true,
                    if d.existed {
                        d.link.len()
                    } else {
                        d.manifest.entries().len()
                    },
                    d.delete.len(),
                ),
                _ => (false, 1, 0),
            };
            result = match self.apply_checkout(&path, out, planned.plan) {
                Ok(Some(change)) => each(Applied {
                    path: &path,
                    change,
                    is_dir,
                    linked,
                    deleted,
                    changed: planned.changed,
                }),
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if result.is_err() {
                break;
            }
        }
        self.flush();
        result
    }

    /// Plans the checkout of `out` at `path`.
    pub fn plan_checkout(
        &self,
        path: &Path,
        out: &Out,
        relink: Relink,
    ) -> Result<Planned, CacheError> {
        let kind = out.kind;
        let Some(oid) = out.oid else {
            return Ok(missing());
        };
        if !oid.is_dir() {
            return self.plan_file(path, out, oid, relink);
        }
        let Ok(manifest) = self.cache.read_manifest(&oid, kind) else {
            return Ok(missing());
        };
        let oids: Vec<ObjectId> = manifest.entries().iter().map(|e| e.oid).collect();
        let complete = self.cache.contains_all(&oids, kind);
        if !complete {
            return Ok(missing());
        }
        let all: Vec<usize> = (0..manifest.entries().len()).collect();
        let meta = std::fs::symlink_metadata(path).ok();
        match meta {
            None => Ok(Planned {
                plan: Plan::Dir(DirPlan {
                    manifest,
                    existed: false,
                    link: all,
                    delete: Vec::new(),
                    prune: Vec::new(),
                    replace_file: false,
                }),
                unsaved: Vec::new(),
                changed: true,
            }),
            Some(m) if !m.is_dir() => {
                let mut unsaved = Vec::new();
                if let Some(cur) = self.hash(path, kind)?.oid() {
                    if !self.cache.contains(&cur, kind) {
                        unsaved.push(path.to_path_buf());
                    }
                }
                Ok(Planned {
                    plan: Plan::Dir(DirPlan {
                        manifest,
                        existed: true,
                        link: all,
                        delete: Vec::new(),
                        prune: Vec::new(),
                        replace_file: true,
                    }),
                    unsaved,
                    changed: true,
                })
            }
            Some(_) => self.plan_dir(path, kind, oid, manifest, relink),
        }
    }

    /// Plans the checkout of a file output whose object is `oid`.
    fn plan_file(
        &self,
        path: &Path,
        out: &Out,
        oid: ObjectId,
        relink: Relink,
    ) -> Result<Planned, CacheError> {
        let kind = out.kind;
        if !self.cache.contains(&oid, kind) {
            return Ok(missing());
        }
        let meta = std::fs::symlink_metadata(path).ok();
        let Some(meta) = meta else {
            return Ok(Planned {
                plan: Plan::File {
                    oid,
                    existed: false,
                },
                unsaved: Vec::new(),
                changed: true,
            });
        };
        let mut unsaved = Vec::new();
        let mut changed = true;
        if meta.is_dir() {
            unsaved = self.unsaved_in_dir(path, kind)?;
        } else {
            let now = self.hash(path, kind)?;
            changed = now.oid() != Some(oid);
            if now.oid() == Some(oid) && relink == Relink::No {
                if let Found::File { isexec, .. } = now {
                    if out.isexec && !isexec {
                        set_mode(path, exec_mode(true))?;
                    }
                }
                return Ok(Planned {
                    plan: Plan::Nothing,
                    unsaved,
                    changed: true,
                });
            }
            if let Some(cur) = now.oid() {
                if !self.cache.contains(&cur, kind) {
                    unsaved.push(path.to_path_buf());
                }
            }
        }
        Ok(Planned {
            plan: Plan::File { oid, existed: true },
            unsaved,
            changed,
        })
    }

    fn plan_dir(
        &self,
        path: &Path,
        kind: HashKind,
        oid: ObjectId,
        manifest: Manifest,
        relink: Relink,
    ) -> Result<Planned, CacheError> {
        let relink = relink == Relink::Yes;
        let tree = self.walk(path)?;
        let prune = unneeded_dirs(path, &manifest, &tree);
        if !relink && self.state.get_dir(kind, path, &tree.files).map(|s| s.oid) == Some(oid) {
            let plan = if prune.is_empty() {
                Plan::Nothing
            } else {
                Plan::Dir(DirPlan {
                    manifest,
                    existed: true,
                    link: Vec::new(),
                    delete: Vec::new(),
                    prune,
                    replace_file: false,
                })
            };
            return Ok(Planned {
                plan,
                unsaved: Vec::new(),
                changed: true,
            });
        }
        let hashed = self.hash_tree(path, tree, kind)?;
        let wanted: HashMap<&str, (usize, &ObjectId)> = manifest
            .entries()
            .iter()
            .enumerate()
            .map(|(i, e)| (e.relpath.as_str(), (i, &e.oid)))
            .collect();
        let mut present: HashSet<&str> = HashSet::new();
        let mut differ = false;
        let mut link = Vec::new();
        let mut delete = Vec::new();
        let mut unsaved = Vec::new();
        for (f, cur) in hashed.tree.files.iter().zip(&hashed.oids) {
            let abs = join_rel(path, &f.rel);
            match wanted.get(f.rel.as_str()) {
                Some((i, want)) => {
                    present.insert(f.rel.as_str());
                    differ |= *want != cur;
                    if *want != cur || relink {
                        link.push(*i);
                        if *want != cur && !self.cache.contains(cur, kind) {
                            unsaved.push(abs);
                        }
                    }
                }
                None => {
                    if !self.cache.contains(cur, kind) {
                        unsaved.push(abs.clone());
                    }
                    delete.push(abs);
                }
            }
        }
        for (i, e) in manifest.entries().iter().enumerate() {
            if !present.contains(e.relpath.as_str()) {
                link.push(i);
                differ = true;
            }
        }
        if link.is_empty() && delete.is_empty() && prune.is_empty() {
            return Ok(Planned {
                plan: Plan::Nothing,
                unsaved,
                changed: true,
            });
        }
        let changed = differ || !delete.is_empty() || !prune.is_empty();
        Ok(Planned {
            plan: Plan::Dir(DirPlan {
                manifest,
                existed: true,
                link,
                delete,
                prune,
                replace_file: false,
            }),
            unsaved,
            changed,
        })
    }

    fn unsaved_in_dir(&self, path: &Path, kind: HashKind) -> Result<Vec<PathBuf>, CacheError> {
        let tree = self.walk(path)?;
        let hashed = self.hash_tree(path, tree, kind)?;
        Ok(hashed
            .tree
            .files
            .iter()
            .zip(&hashed.oids)
            .filter(|(_, oid)| !self.cache.contains(oid, kind))
            .map(|(f, _)| join_rel(path, &f.rel))
            .collect())
    }

    /// Carries out a plan; returns the change made, if any.
    pub fn apply_checkout(
        &self,
        path: &Path,
        out: &Out,
        plan: Plan,
    ) -> Result<Option<Change>, CacheError> {
        let kind = out.kind;
        match plan {
            Plan::Nothing | Plan::Missing => Ok(None),
            Plan::File { oid, existed } => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| HashError::io(parent, e))?;
                }
                let st = self.cache.link_to_stat(&oid, kind, path, out.isexec)?;
                self.state
                    .put_written_files(kind, [(path.to_path_buf(), &st, oid)]);
                Ok(Some(if existed {
                    Change::Modified
                } else {
                    Change::Added
                }))
            }
            Plan::Dir(dir) => self.apply_dir(path, kind, dir),
        }
    }

    /// Carries out the plan of a directory output.
    fn apply_dir(
        &self,
        path: &Path,
        kind: HashKind,
        dir: DirPlan,
    ) -> Result<Option<Change>, CacheError> {
        let DirPlan {
            manifest,
            existed,
            link,
            delete,
            prune,
            replace_file,
        } = dir;
        if replace_file {
            std::fs::remove_file(path).map_err(|e| HashError::io(path, e))?;
        }
        for f in &delete {
            remove_any(f)?;
        }
        let entries = manifest.entries();
        let mut parents: Vec<PathBuf> = link
            .iter()
            .filter_map(|&i| {
                join_rel(path, &entries[i].relpath)
                    .parent()
                    .map(Path::to_path_buf)
            })
            .collect();
        parents.push(path.to_path_buf());
        parents.sort();
        parents.dedup();
        for p in &parents {
            make_dir_replacing_files(p)?;
        }
        let linked: Vec<Result<(PathBuf, Stat, ObjectId), CacheError>> = link
            .par_iter()
            .map(|&i| {
                let e = &entries[i];
                let dest = join_rel(path, &e.relpath);
                let st = self.cache.link_to_stat(&e.oid, kind, &dest, false)?;
                Ok((dest, st, e.oid))
            })
            .collect();
        let mut fresh = Vec::with_capacity(linked.len());
        for r in linked {
            fresh.push(r?);
        }
        let mut known = self.state.get_dir_files(kind, path);
        for (&i, (_, st, oid)) in link.iter().zip(&fresh) {
            known.insert_written(&entries[i].relpath, st, *oid);
        }
        self.state.put_dir_files(kind, path, &known);
        for d in &prune {
            // Folders holding only ignored files stay, as with DVC.
            let _ = std::fs::remove_dir(d);
        }
        // Record the directory summary now so the next status reads nothing.
        if (!existed || replace_file) && link.len() == entries.len() {
            let files: Vec<FileEntry> = link
                .iter()
                .zip(&fresh)
                .map(|(&i, (_, st, _))| FileEntry {
                    rel: entries[i].relpath.clone(),
                    stat: *st,
                })
                .collect();
            let summary = DirSummary {
                oid: manifest.oid(),
                size: files.iter().map(|f| f.stat.size).sum(),
                nfiles: files.len() as u64,
            };
            self.state.put_written_dir(kind, path, &files, summary);
        } else {
            let _ = self.hash(path, kind);
        }
        Ok(Some(if existed {
            Change::Modified
        } else {
            Change::Added
        }))
    }
}

/// Folders of the workspace directory at `path` (walked as `tree`) that no entry of `manifest`
/// needs, deepest first.
fn unneeded_dirs(path: &Path, manifest: &Manifest, tree: &Tree) -> Vec<PathBuf> {
    let needed: HashSet<&str> = manifest
        .entries()
        .iter()
        .flat_map(|e| {
            e.relpath
                .match_indices('/')
                .map(move |(i, _)| &e.relpath[..i])
        })
        .collect();
    let mut unneeded: Vec<PathBuf> = tree
        .dirs
        .iter()
        .filter(|d| !needed.contains(d.as_str()))
        .map(|d| join_rel(path, d))
        .collect();
    unneeded.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    unneeded
}

fn missing() -> Planned {
    Planned {
        plan: Plan::Missing,
        unsaved: Vec::new(),
        changed: false,
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), CacheError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| HashError::io(path, e).into())
}

fn remove_any(p: &Path) -> Result<(), CacheError> {
    let r = match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    };
    r.map_err(|e| HashError::io(p, e).into())
}

/// Creates `dir` and its parents; a file in the way (where the manifest wants a folder) goes.
fn make_dir_replacing_files(dir: &Path) -> Result<(), CacheError> {
    match std::fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(first) => {
            let mut cur = Some(dir);
            while let Some(c) = cur {
                if std::fs::symlink_metadata(c).is_ok_and(|m| !m.is_dir()) {
                    std::fs::remove_file(c).map_err(|e| HashError::io(c, e))?;
                    return std::fs::create_dir_all(dir).map_err(|e| HashError::io(dir, e).into());
                }
                cur = c.parent();
            }
            Err(HashError::io(dir, first).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Cache, LinkType, Sharing};
    use crate::hash::manifest::Entry;

    fn out(path: &str, oid: ObjectId) -> Out {
        Out {
            path: path.into(),
            oid: Some(oid),
            kind: HashKind::Md5,
            size: None,
            nfiles: None,
            isexec: false,
            cache: true,
            push: true,
        }
    }

    /// What `get` needs: a cache in any folder, outputs written into a folder that belongs to no
    /// repository, with the process's current folder elsewhere.
    #[test]
    fn checks_out_outside_any_repository() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(
            tmp.path().join("cache"),
            vec![LinkType::Copy],
            Sharing::Private,
        );
        let put = |cache: &Cache, bytes: &[u8]| {
            let oid = ObjectId::from_digest(crate::hash::md5_bytes(bytes), false);
            cache
                .insert_bytes(oid, HashKind::Md5, bytes)
                .expect("insert");
            oid
        };
        let one = put(&cache, b"one\n");
        let two = put(&cache, b"two\n");
        let manifest = Manifest::new(vec![
            Entry {
                relpath: "a.txt".into(),
                oid: one,
            },
            Entry {
                relpath: "sub/b.txt".into(),
                oid: two,
            },
        ]);
        let dir = manifest.oid();
        cache
            .insert_bytes(dir, HashKind::Md5, &manifest.to_json())
            .expect("manifest");

        let dest = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&dest).expect("mkdir");
        let outputs = Outputs::outside_repo(&dest, cache);
        for (name, oid) in [("file.txt", one), ("data", dir)] {
            let o = out(name, oid);
            let path = dest.join(name);
            let planned = outputs.plan_checkout(&path, &o, Relink::No).expect("plan");
            assert!(planned.unsaved.is_empty());
            let change = outputs
                .apply_checkout(&path, &o, planned.plan)
                .expect("apply");
            assert_eq!(change, Some(Change::Added));
        }
        assert_eq!(
            std::fs::read(dest.join("file.txt")).expect("file"),
            b"one\n"
        );
        assert_eq!(std::fs::read(dest.join("data/a.txt")).expect("a"), b"one\n");
        assert_eq!(
            std::fs::read(dest.join("data/sub/b.txt")).expect("b"),
            b"two\n"
        );
        let again = outputs
            .plan_checkout(&dest.join("data"), &out("data", dir), Relink::No)
            .expect("plan");
        assert!(matches!(again.plan, Plan::Nothing));
        let missing = out("gone", put(&outputs.cache, b"x"));
        std::fs::remove_file(
            outputs
                .cache
                .object_path(&missing.oid.expect("oid"), HashKind::Md5),
        )
        .expect("remove object");
        let planned = outputs
            .plan_checkout(&dest.join("gone"), &missing, Relink::No)
            .expect("plan");
        assert!(matches!(planned.plan, Plan::Missing));
    }
}
