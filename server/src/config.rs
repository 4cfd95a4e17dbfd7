//! Server settings: flags and `LODE_*` variables win over the optional TOML file, which wins over
//! the defaults. The defaults need no configuration at all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::tls::TlsFiles;
use lode_s3::{S3Location, S3Settings};

pub const DEFAULT_DATA_DIR: &str = "./lode-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Keys accepted in the TOML file (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub max_object_size: Option<String>,
    pub api_body_limit: Option<String>,
    pub request_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub db_max_connections: Option<u32>,
    pub log_format: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub database_url: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub blob_store: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_path_style: Option<bool>,
    pub s3_redirect_downloads: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Value(String),
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Resolved settings of `serve`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: String,
    /// Largest object accepted in one upload.
    pub max_object_size: u64,
    /// Largest JSON request body of the native API.
    pub api_body_limit: usize,
    /// Whole-request limit for API calls (object transfers are limited by `body_timeout`).
    pub request_timeout: Duration,
    /// Longest pause allowed between two pieces of an upload body.
    pub body_timeout: Duration,
    pub db_max_connections: u32,
    pub log_format: LogFormat,
    /// HTTPS certificate chain and key (PEM); plain HTTP when neither is set.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The index: SQLite in the data folder when `None`, else a `postgres://` URL.
    pub database_url: Option<DatabaseUrl>,
    /// Where the token-signing secret is kept, when not in the index's own place (the data
    /// folder for SQLite, the database for PostgreSQL).
    pub secret_file: Option<PathBuf>,
    /// Where blobs live.
    pub blob_store: BlobStoreConfig,
    /// Answer GETs of large objects with a redirect to a presigned URL of the blob store.
    pub s3_redirect_downloads: bool,
}

/// A database URL, which may hold a password: never printed by `{:?}`.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(..)")
    }
}

/// Where blobs live: the data folder's `blobs/` (the default) or an S3 bucket.
#[derive(Debug, Clone, Default)]
pub enum BlobStoreConfig {
    #[default]
    DataDir,
    S3 {
        location: S3Location,
        settings: S3Settings,
        /// Multipart uploads older than this are taken for a crash's and aborted.
        upload_grace: Duration,
    },
}

/// How long an S3 multipart upload may stay unfinished by default: longer than any upload
/// takes.
pub const DEFAULT_S3_UPLOAD_GRACE: Duration = Duration::from_secs(24 * 3600);

impl BlobStoreConfig {
    /// From `--blob-store` (`s3://BUCKET/PREFIX`; none for the data folder) and the S3 options.
    pub fn parse(url: Option<&str>, settings: S3Settings) -> Result<BlobStoreConfig, ConfigError> {
        match url {
            None | Some("") => Ok(BlobStoreConfig::DataDir),
            Some(url) => S3Location::parse(url)
                .map(|location| BlobStoreConfig::S3 {
                    location,
                    settings,
                    upload_grace: DEFAULT_S3_UPLOAD_GRACE,
                })
                .map_err(|e| ConfigError::Value(e.to_string())),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            listen: DEFAULT_LISTEN.to_string(),
            max_object_size: 1 << 40,
            api_body_limit: 16 << 20,
            request_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(120),
            db_max_connections: 8,
            log_format: LogFormat::Text,
            tls_cert: None,
            tls_key: None,
            database_url: None,
            secret_file: None,
            blob_store: BlobStoreConfig::DataDir,
            s3_redirect_downloads: false,
        }
    }
}

impl ServerConfig {
    /// Applies the file's values over the defaults.
    pub fn from_file(file: &FileConfig) -> Result<ServerConfig, ConfigError> {
        let mut c = ServerConfig::default();
        if let Some(d) = &file.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(l) = &file.listen {
            c.listen = l.clone();
        }
        if let Some(s) = &file.max_object_size {
            c.max_object_size = parse_size(s)?;
        }
        if let Some(s) = &file.api_body_limit {
            c.api_body_limit = usize::try_from(parse_size(s)?)
                .map_err(|_| ConfigError::Value(format!("api_body_limit '{s}' is too large")))?;
        }
        if let Some(s) = &file.request_timeout {
            c.request_timeout = parse_duration(s)?;
        }
        if let Some(s) = &file.body_timeout {
            c.body_timeout = parse_duration(s)?;
        }
        if let Some(n) = file.db_max_connections {
            c.db_max_connections = n;
        }
        if let Some(f) = &file.log_format {
            c.log_format = parse_log_format(f)?;
        }
        c.tls_cert.clone_from(&file.tls_cert);
        c.tls_key.clone_from(&file.tls_key);
        c.database_url = file.database_url.clone().map(DatabaseUrl);
        c.secret_file.clone_from(&file.secret_file);
        let s3 = S3Settings {
            endpoint: file.s3_endpoint.clone(),
            region: file.s3_region.clone(),
            path_style: file.s3_path_style.unwrap_or(false),
        };
        c.blob_store = BlobStoreConfig::parse(file.blob_store.as_deref(), s3)?;
        c.s3_redirect_downloads = file.s3_redirect_downloads.unwrap_or(false);
        Ok(c)
    }

    /// The TLS files, when HTTPS is configured; one without the other is an error.
    pub fn tls_files(&self) -> Result<Option<TlsFiles>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            _ => Err(ConfigError::Value(
                "HTTPS needs both --tls-cert and --tls-key (LODE_TLS_CERT, LODE_TLS_KEY)".into(),
            )),
        }
    }
}

pub fn parse_log_format(s: &str) -> Result<LogFormat, ConfigError> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(ConfigError::Value(format!(
            "unknown log format '{other}': use text or json"
        ))),
    }
}

/// `30d`, `12h`, `15m`, `90s`, `2w` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    let s = s.trim();
    let bad = || {
        ConfigError::Value(format!(
            "invalid duration '{s}': use e.g. 90s, 15m, 12h, 30d, 2w"
        ))
    };
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).map(Duration::from_secs).ok_or_else(bad)
}

/// `1048576`, `512K`, `100M`, `4G`, `1T` (binary multiples; a trailing `iB`/`B` is accepted).
pub fn parse_size(s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    let bad = || ConfigError::Value(format!("invalid size '{s}': use e.g. 512K, 100M, 4G"));
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("3y").is_err());
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("100MiB").unwrap(), 100 << 20);
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn file_values_apply() {
        let f: FileConfig =
            toml::from_str("listen = \"0.0.0.0:9000\"\nmax_object_size = \"1G\"").unwrap();
        let c = ServerConfig::from_file(&f).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.max_object_size, 1 << 30);
        assert!(toml::from_str::<FileConfig>("nope = 1").is_err());
    }
}
