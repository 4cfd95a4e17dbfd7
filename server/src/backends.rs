//! Opening what a command works on: the index, the blob store, and the command's claim on the
//! deployment. `serve`, `admin` and `fsck` all start here, so a new engine is chosen in one place.

use std::path::PathBuf;
use std::sync::Arc;

use crate::auth::{load_or_create_secret, load_or_create_secret_file};
use crate::config::{BlobStoreConfig, ServerConfig};
use crate::datadir::DataDir;
use crate::db::postgres::PgIndex;
use crate::db::sqlite::SqliteIndex;
use crate::db::{Hold, Index, IndexError, Occupant};
use crate::store::s3::S3Store;
use crate::store::{BlobStore, FsStore, StoreError, Upkeep};

/// Connections `admin` and `fsck` open: they run one query at a time.
const TOOL_CONNECTIONS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret file {path}: {source}")]
    SecretFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The opened backends; the claim is released when this is dropped.
pub(crate) struct Backends {
    pub index: Arc<dyn Index>,
    pub store: Arc<dyn BlobStore>,
    pub upkeep: Arc<dyn Upkeep>,
    /// The filesystem store, when blobs live in the data folder (backups link its files).
    pub fs: Option<Arc<FsStore>>,
    /// Where blobs live when not in the data folder, for the log.
    remote_blobs: Option<String>,
    data: DataDir,
    /// Set when the index is in PostgreSQL, which then keeps the signing secret.
    postgres: Option<Arc<PgIndex>>,
    secret_file: Option<PathBuf>,
    _claim: Hold,
}

/// Opens the index and the blob store that `cfg` names for `who`, claiming the deployment as
/// `who` needs before anything is changed (the schema included).
pub(crate) async fn open_backends(
    cfg: &ServerConfig,
    who: Occupant,
) -> Result<Backends, BackendError> {
    let data = DataDir::prepare(&cfg.data_dir).map_err(|source| BackendError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let connections = match who {
        Occupant::Server => cfg.db_max_connections,
        Occupant::Admin | Occupant::Fsck => TOOL_CONNECTIONS,
    };
    let (index, postgres): (Arc<dyn Index>, _) = match &cfg.database_url {
        Some(url) => {
            let pg = Arc::new(PgIndex::connect(&url.0, connections).await?);
            (pg.clone(), Some(pg))
        }
        None => (
            Arc::new(SqliteIndex::connect(&data, connections).await?),
            None,
        ),
    };
    let claim = index.occupy(who).await?;
    index.migrate().await?;
    let mut remote_blobs = None;
    let (store, upkeep, fs): (Arc<dyn BlobStore>, Arc<dyn Upkeep>, _) = match &cfg.blob_store {
        BlobStoreConfig::DataDir => {
            let fs = FsStore::open(&data.path, cfg.max_object_size)?;
            (Arc::new(fs.clone()), Arc::new(fs.clone()), Some(fs))
        }
        BlobStoreConfig::S3 {
            location,
            settings,
            upload_grace,
        } => {
            let s3 = S3Store::open(
                location.clone(),
                settings,
                cfg.max_object_size,
                *upload_grace,
            )
            .await?;
            remote_blobs = Some(s3.describe());
            let s3 = Arc::new(s3);
            (s3.clone(), s3, None)
        }
    };
    Ok(Backends {
        index,
        store,
        upkeep,
        fs,
        remote_blobs,
        data,
        postgres,
        secret_file: cfg.secret_file.clone(),
        _claim: claim,
    })
}

impl Backends {
    /// The secret tokens are signed with, created on first use: from the secret file when one
    /// is configured, else from the database when it is PostgreSQL (so that every server sharing
    /// it accepts every token), else from the data folder.
    pub(crate) async fn signing_secret(&self) -> Result<Vec<u8>, BackendError> {
        if let Some(path) = &self.secret_file {
            return load_or_create_secret_file(path).map_err(|source| BackendError::SecretFile {
                path: path.clone(),
                source,
            });
        }
        if let Some(pg) = &self.postgres {
            return Ok(pg.signing_secret().await?);
        }
        load_or_create_secret(&self.data.path).map_err(|source| BackendError::DataDir {
            path: self.data.path.clone(),
            source,
        })
    }

    /// Where the deployment is, for the log (never a password).
    pub(crate) fn describe(&self) -> String {
        let index = match &self.postgres {
            Some(pg) => pg.describe(),
            None => self.data.path.display().to_string(),
        };
        let blobs = match &self.remote_blobs {
            Some(blobs) => blobs.clone(),
            None => self.data.path.display().to_string(),
        };
        if index == blobs {
            index
        } else {
            format!("{index}, blobs in {blobs}")
        }
    }

    pub(crate) async fn close(&self) {
        self.index.close().await;
    }
}
