//! Putting cache objects into the workspace with the `cache.type` strategies, in the configured
//! order: reflink, hardlink, symlink, copy. A strategy the filesystem refuses once (reflink on ext4)
//! is not tried again for the rest of the run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use super::{umask, CacheError};
use crate::hash::walk::Stat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Reflink,
    Hardlink,
    Symlink,
    Copy,
}

impl LinkType {
    fn bit(self) -> u8 {
        match self {
            LinkType::Reflink => 1,
            LinkType::Hardlink => 2,
            LinkType::Symlink => 4,
            LinkType::Copy => 8,
        }
    }
}

/// Parses a `cache.type` value such as `reflink,copy` or `hardlink, symlink`.
pub fn parse_types(value: &str) -> Result<Vec<LinkType>, CacheError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "reflink" => Ok(LinkType::Reflink),
            "hardlink" => Ok(LinkType::Hardlink),
            "symlink" => Ok(LinkType::Symlink),
            "copy" => Ok(LinkType::Copy),
            other => Err(CacheError::BadLinkType(other.to_string())),
        })
        .collect()
}

#[derive(Debug)]
pub struct Linker {
    types: Vec<LinkType>,
    /// Bits of strategies that failed as unsupported.
    refused: AtomicU8,
}

impl Linker {
    pub fn new(types: Vec<LinkType>) -> Linker {
        Linker {
            types,
            refused: AtomicU8::new(0),
        }
    }

    pub fn types(&self) -> &[LinkType] {
        &self.types
    }

    /// Makes `dest` a link to (or copy of) `src`, replacing whatever `dest` is. Returns what a
    /// `stat` of `dest` (following links) now says, for the hash cache.
    pub fn link(&self, src: &Path, dest: &Path, isexec: bool) -> Result<Stat, CacheError> {
        let mut last = std::io::Error::other("no cache.type configured");
        for &t in &self.types {
            if self.refused.load(Ordering::Relaxed) & t.bit() != 0 {
                continue;
            }
            match try_link(t, src, dest, isexec) {
                Ok(st) => return Ok(st),
                Err(e) => {
                    if e.kind() == std::io::ErrorKind::NotFound && !src.exists() {
                        return Err(CacheError::Io {
                            path: src.to_path_buf(),
                            source: e,
                        });
                    }
                    if t != LinkType::Copy {
                        self.refused.fetch_or(t.bit(), Ordering::Relaxed);
                    }
                    last = e;
                }
            }
        }
        Err(CacheError::Link {
            path: dest.to_path_buf(),
            source: last,
        })
    }
}

/// A sibling temp name for `dest`, so the final step is an atomic rename.
fn temp_name(dest: &Path) -> PathBuf {
    use std::cell::Cell;
    thread_local! {
        static NEXT: Cell<u64> = Cell::new({
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.finish()
        });
    }
    let r = NEXT.with(|n| {
        let v = n.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        n.set(v);
        v
    });
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{r:016x}.tmp"))
}

fn workspace_mode(isexec: bool) -> u32 {
    let m = 0o666 & !umask();
    if isexec {
        m | 0o100
    } else {
        m
    }
}

fn try_link(t: LinkType, src: &Path, dest: &Path, isexec: bool) -> std::io::Result<Stat> {
    let tmp = temp_name(dest);
    let made = match t {
        LinkType::Reflink => reflink_copy::reflink(src, &tmp).and_then(|()| {
            std::fs::set_permissions(
                &tmp,
                std::fs::Permissions::from_mode(workspace_mode(isexec)),
            )?;
            std::fs::metadata(&tmp).map(|m| Stat::of(&m))
        }),
        LinkType::Copy => copy_new(src, &tmp, workspace_mode(isexec)),
        LinkType::Hardlink => std::fs::hard_link(src, &tmp)
            .and_then(|()| std::fs::metadata(&tmp).map(|m| Stat::of(&m))),
        LinkType::Symlink => std::os::unix::fs::symlink(src, &tmp)
            .and_then(|()| std::fs::metadata(&tmp).map(|m| Stat::of(&m))),
    };
    let stat = match made {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let renamed = std::fs::rename(&tmp, dest).or_else(|e| {
        // A folder where the file should go (only then is the extra work worth doing).
        match std::fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => {
                std::fs::remove_dir_all(dest)?;
                std::fs::rename(&tmp, dest)
            }
            _ => Err(e),
        }
    });
    match renamed {
        Ok(()) => Ok(stat),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Copies `src` to a new file created with `mode`, in the kernel where it can.
fn copy_new(src: &Path, dest: &Path, mode: u32) -> std::io::Result<Stat> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let mut from = std::fs::File::open(src)?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)?;
    let mut kernel_copy = true;
    loop {
        // SAFETY: both descriptors are open for the call; null offsets use the file positions.
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
                std::ptr::null_mut(),
                1 << 30,
                0,
            )
        };
        if n > 0 {
            continue;
        }
        if n == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        // Not offered between these files (e.g. across filesystems): copy in user space.
        kernel_copy = false;
        break;
    }
    if !kernel_copy {
        std::io::Seek::seek(&mut from, std::io::SeekFrom::Start(0))?;
        to.set_len(0)?;
        std::io::Seek::seek(&mut to, std::io::SeekFrom::Start(0))?;
        std::io::copy(&mut from, &mut to)?;
    }
    if mode & umask() != 0 {
        to.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(Stat::of(&to.metadata()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types() {
        assert_eq!(
            parse_types("reflink, copy").unwrap(),
            vec![LinkType::Reflink, LinkType::Copy]
        );
        assert!(parse_types("hardlink,bogus").is_err());
    }

    #[test]
    fn hardlinks_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("obj");
        std::fs::write(&src, b"x").unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o444)).unwrap();
        let l = Linker::new(vec![LinkType::Hardlink]);
        let dest = d.path().join("h");
        std::fs::write(&dest, b"old").unwrap();
        l.link(&src, &dest, false).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&dest).unwrap().ino(),
            std::fs::metadata(&src).unwrap().ino()
        );
        let l = Linker::new(vec![LinkType::Symlink]);
        let dest = d.path().join("s");
        l.link(&src, &dest, false).unwrap();
        assert_eq!(std::fs::read_link(&dest).unwrap(), src);
    }
}
