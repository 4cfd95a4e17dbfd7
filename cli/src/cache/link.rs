//! Putting cache objects into the workspace with the `cache.type` strategies, in the configured
//! order: reflink, hardlink, symlink, copy. A strategy the filesystem refuses once (reflink on ext4)
//! is not tried again for the rest of the run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use super::{umask, CacheError};

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

    /// Makes `dest` a link to (or copy of) `src`, replacing whatever `dest` is.
    pub fn link(&self, src: &Path, dest: &Path, isexec: bool) -> Result<(), CacheError> {
        let mut last = std::io::Error::other("no cache.type configured");
        for &t in &self.types {
            if self.refused.load(Ordering::Relaxed) & t.bit() != 0 {
                continue;
            }
            match try_link(t, src, dest, isexec) {
                Ok(()) => return Ok(()),
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
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let r: u64 = rand_u64();
    dest.with_file_name(format!(".{name}.{r:016x}.tmp"))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

fn workspace_mode(isexec: bool) -> u32 {
    let m = 0o666 & !umask();
    if isexec {
        m | 0o100
    } else {
        m
    }
}

fn try_link(t: LinkType, src: &Path, dest: &Path, isexec: bool) -> std::io::Result<()> {
    let tmp = temp_name(dest);
    let made = match t {
        LinkType::Reflink => reflink_copy::reflink(src, &tmp).and_then(|()| {
            std::fs::set_permissions(
                &tmp,
                std::fs::Permissions::from_mode(workspace_mode(isexec)),
            )
        }),
        LinkType::Copy => copy_new(src, &tmp, workspace_mode(isexec)),
        LinkType::Hardlink => std::fs::hard_link(src, &tmp),
        LinkType::Symlink => std::os::unix::fs::symlink(src, &tmp),
    };
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
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
    renamed.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Copies `src` to a new file created with `mode` (kernel-side copy where the OS offers it).
fn copy_new(src: &Path, dest: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut from = std::fs::File::open(src)?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)?;
    std::io::copy(&mut from, &mut to)?;
    if mode & umask() != 0 {
        to.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
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
