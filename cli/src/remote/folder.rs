//! A local folder remote in DVC's layout: `files/md5/ab/cd…[.dir]`, legacy objects at
//! `ab/cd…[.dir]`. Writes go to `.<random>.tmp` next to their destination and are renamed into
//! place after one filesystem flush per batch, so a crash leaves whole objects or stray temp files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lode_proto::{HashKind, ObjectId};
use rayon::prelude::*;

use super::progress::Progress;
use super::{Download, Fail, Failure, Outcome, Upload};
use crate::cache::Cache;

/// Objects copied between flushes.
const BATCH: usize = 1000;

pub struct Folder {
    pub root: PathBuf,
}

impl Folder {
    pub fn new(path: &str) -> Folder {
        Folder {
            root: PathBuf::from(path),
        }
    }

    pub fn path_of(&self, kind: HashKind, oid: &ObjectId) -> PathBuf {
        self.root.join(oid.dvc_key(kind))
    }

    pub fn missing(&self, kind: HashKind, oids: &[ObjectId]) -> Result<HashSet<ObjectId>, String> {
        Ok(oids
            .par_iter()
            .filter(|o| !self.path_of(kind, o).is_file())
            .copied()
            .collect())
    }

    pub fn upload(
        &self,
        cache: &Arc<Cache>,
        kind: HashKind,
        items: Vec<Upload>,
        progress: &Progress,
    ) -> Result<Outcome, String> {
        let mut out = Outcome::default();
        for batch in items.chunks(BATCH) {
            let copied: Vec<(Upload, Result<tempfile::TempPath, String>)> = batch
                .par_iter()
                .map(|u| {
                    let dest = self.path_of(kind, &u.oid);
                    (*u, copy_to_temp(&cache.object_path(&u.oid, kind), &dest))
                })
                .collect();
            let mut ready = Vec::new();
            for (u, r) in copied {
                match r {
                    Ok(t) => ready.push((u, t)),
                    Err(message) => out.failed.push(Failure {
                        oid: u.oid,
                        message,
                    }),
                }
            }
            if let Some((_, first)) = ready.first() {
                sync_fs_of(first)
                    .map_err(|e| format!("cannot flush writes to {}: {e}", self.root.display()))?;
            }
            for (u, tmp) in ready {
                let dest = self.path_of(kind, &u.oid);
                match tmp.persist(&dest) {
                    Ok(()) => {
                        out.done.push(u.oid);
                        out.bytes += u.size;
                        progress.object_done(&u.oid, u.size);
                    }
                    Err(e) => out.failed.push(Failure {
                        oid: u.oid,
                        message: format!("cannot write {}: {}", dest.display(), e.error),
                    }),
                }
            }
        }
        Ok(out)
    }

    pub fn download(
        &self,
        cache: &Arc<Cache>,
        kind: HashKind,
        items: Vec<Download>,
        progress: &Progress,
    ) -> Result<Outcome, String> {
        let mut out = Outcome::default();
        for batch in items.chunks(BATCH) {
            let staged: Vec<(ObjectId, Result<crate::cache::Staged, Fail>)> = batch
                .par_iter()
                .map(|d| {
                    let src = self.path_of(kind, &d.oid);
                    if !src.is_file() {
                        return (d.oid, Err(Fail::Absent));
                    }
                    let r = cache
                        .stage_file(&src, kind)
                        .map_err(|e| Fail::Object(e.to_string()))
                        .and_then(|s| {
                            if s.oid == d.oid {
                                Ok(s)
                            } else {
                                Err(Fail::Object(format!(
                                    "{} hashes to {}, not to its name; nothing was kept",
                                    src.display(),
                                    s.oid
                                )))
                            }
                        });
                    (d.oid, r)
                })
                .collect();
            let mut ok = Vec::new();
            for (oid, r) in staged {
                match r {
                    Ok(s) => {
                        progress.object_done(&oid, s.size);
                        out.bytes += s.size;
                        out.done.push(oid);
                        ok.push(s);
                    }
                    Err(Fail::Absent) => out.absent.push(oid),
                    Err(Fail::Object(message)) | Err(Fail::Fatal(message)) => {
                        out.failed.push(Failure { oid, message })
                    }
                }
            }
            cache
                .commit(ok)
                .map_err(|e| format!("cannot write to the cache: {e}"))?;
        }
        Ok(out)
    }

    pub fn read_small(&self, kind: HashKind, oid: ObjectId) -> Result<Option<Vec<u8>>, Fail> {
        let p = self.path_of(kind, &oid);
        match std::fs::read(&p) {
            Ok(b) => {
                super::verify_bytes(kind, &oid, &b).map_err(Fail::Object)?;
                Ok(Some(b))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Fail::Object(format!("cannot read {}: {e}", p.display()))),
        }
    }

    /// Every object stored in the folder, by kind.
    pub fn list(&self) -> Vec<(HashKind, ObjectId, PathBuf)> {
        let mut out = Vec::new();
        for (kind, dir) in [
            (HashKind::Md5, self.root.join("files").join("md5")),
            (HashKind::Md5Dos2unix, self.root.clone()),
        ] {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for prefix in rd.flatten() {
                let pname = prefix.file_name().to_string_lossy().into_owned();
                if pname.len() != 2 || !prefix.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let Ok(inner) = std::fs::read_dir(prefix.path()) else {
                    continue;
                };
                for obj in inner.flatten() {
                    let name = obj.file_name().to_string_lossy().into_owned();
                    if let Ok(oid) = ObjectId::from_key_parts(&pname, &name) {
                        out.push((kind, oid, obj.path()));
                    }
                }
            }
        }
        out
    }
}

fn copy_to_temp(src: &Path, dest: &Path) -> Result<tempfile::TempPath, String> {
    let dir = dest
        .parent()
        .ok_or_else(|| format!("{} has no folder", dest.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let (mut file, path) = tmp.into_parts();
    let mut from =
        std::fs::File::open(src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
    std::io::copy(&mut from, &mut file)
        .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    Ok(path)
}

fn sync_fs_of(p: &Path) -> std::io::Result<()> {
    lode_objio::flush::syncfs(&std::fs::File::open(p)?)
}
