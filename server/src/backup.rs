//! `lode-server backup DEST`: a copy of the deployment that a server can be started on, taken
//! while the server runs and takes uploads.
//!
//! The index is copied first, as of one moment ([`Index::backup_into`]); then every blob that
//! copy references is hard-linked into DEST (copied where DEST is on another filesystem), then
//! the token signing secret. A blob is in place before its reference is indexed, so every
//! object the copied index names has its bytes; an upload acknowledged before the backup began
//! is in the copy. Blobs are never changed once written, so a link shares the bytes safely.
//!
//! DEST must be a new or empty folder that this user can write; anything else is refused before
//! anything is written, and a backup that fails midway removes what it wrote.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use lode_proto::ObjectId;

use crate::auth::load_or_create_secret;
use crate::backends::{open_backends, BackendError, Backends};
use crate::config::{BlobStoreConfig, ServerConfig};
use crate::datadir::{current_uid, writable, DataDir};
use crate::db::{IndexError, Occupant};
use crate::store::{BlobKey, FsStore};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("backup destination {}: {reason}; nothing was written", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error("nothing to back up: {} holds no lode-server data (set --data-dir or LODE_DATA_DIR)", .0.display())]
    NoSource(PathBuf),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the index names an object with a malformed id: {0}")]
    BadId(String),
    #[error("backup copies blobs kept in the data folder; with --blob-store s3://… back up the bucket with the store's own tools (versioning, replication) and the index on its own")]
    NotOnDisk,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// What a finished backup holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub objects: usize,
    pub bytes: u64,
    /// Blobs shared with the data folder by a hard link.
    pub linked: usize,
    /// Blobs copied (DEST on another filesystem).
    pub copied: usize,
    /// Objects the copied index named whose blob a collection deleted before it was linked;
    /// their references are dropped from the copy.
    pub collected: usize,
}

fn not_writable(e: &io::Error) -> String {
    format!("not writable by this user (uid {}): {e}", current_uid())
}

/// Refuses any DEST but a new or empty folder this user can write, inside no data folder.
/// Returns whether DEST must be created.
fn check_destination(dest: &Path, data_dir: &Path) -> Result<bool, BackupError> {
    let refuse = |reason: String| BackupError::Refused {
        path: dest.to_path_buf(),
        reason,
    };
    let create = match fs::symlink_metadata(dest) {
        Ok(m) if !m.is_dir() => return Err(refuse("exists and is not a folder".into())),
        Ok(_) => {
            let mut entries = fs::read_dir(dest).map_err(|e| refuse(e.to_string()))?;
            if entries.next().is_some() {
                return Err(refuse(
                    "is not empty; give a new or empty folder for each backup".into(),
                ));
            }
            writable(dest).map_err(|e| refuse(not_writable(&e)))?;
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = match dest.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !parent.is_dir() {
                return Err(refuse(format!(
                    "its parent folder {} does not exist",
                    parent.display()
                )));
            }
            writable(parent).map_err(|e| {
                refuse(format!(
                    "cannot be created: {} is {}",
                    parent.display(),
                    not_writable(&e)
                ))
            })?;
            true
        }
        Err(e) => return Err(refuse(e.to_string())),
    };
    let resolved = match dest.parent() {
        Some(p) if create && !p.as_os_str().is_empty() => p.canonicalize().ok(),
        _ if create => std::env::current_dir().ok(),
        _ => dest.canonicalize().ok(),
    };
    if let (Some(d), Ok(data)) = (resolved, data_dir.canonicalize()) {
        if d.starts_with(&data) {
            return Err(refuse(format!(
                "is inside the data folder {}; put backups elsewhere",
                data.display()
            )));
        }
    }
    Ok(create)
}

/// Backs up the deployment `cfg` names into `dest`.
pub async fn run(cfg: &ServerConfig, dest: &Path) -> Result<BackupReport, BackupError> {
    if !matches!(cfg.blob_store, BlobStoreConfig::DataDir) {
        return Err(BackupError::NotOnDisk);
    }
    let data = DataDir {
        path: cfg.data_dir.clone(),
    };
    // An index in PostgreSQL refuses below, through the index trait, before anything is copied.
    if cfg.database_url.is_none() && !data.db_path().is_file() {
        return Err(BackupError::NoSource(cfg.data_dir.clone()));
    }
    let create = check_destination(dest, &cfg.data_dir)?;
    let source = open_backends(cfg, Occupant::Admin).await?;
    let result = write_backup(&source, cfg, dest, create).await;
    source.close().await;
    if result.is_err() {
        remove_partial(dest, create);
    }
    result
}

async fn write_backup(
    source: &Backends,
    cfg: &ServerConfig,
    dest: &Path,
    create: bool,
) -> Result<BackupReport, BackupError> {
    if create {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dest)
            .map_err(io_err("creating", dest))?;
    }
    let dest_dir = DataDir::prepare(dest).map_err(io_err("opening", dest))?;
    source.index.backup_into(&dest_dir).await?;

    let dest_cfg = ServerConfig {
        data_dir: dest.to_path_buf(),
        ..cfg.clone()
    };
    // As `fsck` would: nothing else may work on the copy until it is complete.
    let target = open_backends(&dest_cfg, Occupant::Fsck).await?;
    let result = place_blobs(source, &target).await;
    let result = match result {
        Ok(report) => copy_secret(source, dest).await.map(|()| report),
        Err(e) => Err(e),
    };
    target.close().await;
    let report = result?;
    sync_filesystem(dest)?;
    Ok(report)
}

async fn place_blobs(source: &Backends, target: &Backends) -> Result<BackupReport, BackupError> {
    let referenced = target.index.all_referenced().await?;
    let mut keys = Vec::with_capacity(referenced.len());
    for (kind, oid, size) in referenced {
        let oid: ObjectId = oid
            .parse()
            .map_err(|_| BackupError::BadId(format!("{kind}:{oid}")))?;
        keys.push((BlobKey { kind, oid }, size));
    }
    let (Some(from), Some(to)) = (source.fs.clone(), target.fs.clone()) else {
        return Err(BackupError::NotOnDisk);
    };
    let (mut report, gone) = tokio::task::spawn_blocking(move || link_all(&from, &to, keys))
        .await
        .map_err(|e| BackupError::Io {
            what: "placing blobs in",
            path: PathBuf::new(),
            source: io::Error::other(e.to_string()),
        })??;
    for key in gone {
        target
            .index
            .forget_object(key.kind, &key.oid.to_string())
            .await?;
        report.collected += 1;
    }
    Ok(report)
}

/// Links (or copies) each blob; returns the report and the blobs that no longer exist.
fn link_all(
    from: &FsStore,
    to: &FsStore,
    keys: Vec<(BlobKey, u64)>,
) -> Result<(BackupReport, Vec<BlobKey>), BackupError> {
    let mut report = BackupReport::default();
    let mut gone = Vec::new();
    let mut same_filesystem = true;
    for (key, size) in keys {
        let src = from.blob_path(key);
        let dst = to.blob_path(key);
        if let Some(folder) = dst.parent() {
            fs::create_dir_all(folder).map_err(io_err("creating", folder))?;
        }
        if same_filesystem {
            match fs::hard_link(&src, &dst) {
                Ok(()) => {
                    report.linked += 1;
                    report.objects += 1;
                    report.bytes += size;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    gone.push(key);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::CrossesDevices => same_filesystem = false,
                Err(e) => return Err(io_err("linking", &dst)(e)),
            }
        }
        match copy_blob(&src, &dst) {
            Ok(()) => {
                report.copied += 1;
                report.objects += 1;
                report.bytes += size;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !src.exists() => gone.push(key),
            Err(e) => return Err(io_err("copying to", &dst)(e)),
        }
    }
    Ok((report, gone))
}

/// Copies under a temporary name, so a blob's own name only ever holds all of it.
fn copy_blob(src: &Path, dst: &Path) -> io::Result<()> {
    let partial = dst.with_extension("partial");
    fs::copy(src, &partial)?;
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o444))?;
    fs::rename(&partial, dst)
}

async fn copy_secret(source: &Backends, dest: &Path) -> Result<(), BackupError> {
    let secret = source.signing_secret().await?;
    let path = dest.join("secret");
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err("creating", &path))?;
    f.write_all(hex::encode(&secret).as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .map_err(io_err("writing", &path))?;
    // The check a server makes when it reads it.
    load_or_create_secret(dest).map_err(io_err("reading back", &path))?;
    Ok(())
}

/// One flush of DEST's filesystem makes every link, copy and folder durable together.
fn sync_filesystem(dest: &Path) -> Result<(), BackupError> {
    let dir = File::open(dest).map_err(io_err("opening", dest))?;
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(io_err("flushing", dest)(io::Error::last_os_error()));
    }
    Ok(())
}

/// Removes what a failed backup wrote: DEST itself if it made it, else DEST's contents.
fn remove_partial(dest: &Path, created: bool) {
    if created {
        let _ = fs::remove_dir_all(dest);
        return;
    }
    if let Ok(entries) = fs::read_dir(dest) {
        for e in entries.flatten() {
            let p = e.path();
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
}
