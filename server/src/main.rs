//! `lode-server`: serve, admin, fsck.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use lode_s3::S3Settings;
use lode_server::admin::AdminCmd;
use lode_server::config::{
    parse_duration, parse_log_format, parse_size, BlobStoreConfig, DatabaseUrl, FileConfig,
    LogFormat, ServerConfig,
};

#[derive(Parser)]
#[command(
    name = "lode-server",
    version,
    about = "Self-hosted HTTP remote for DVC and lode"
)]
struct Cli {
    /// Data folder (database, blobs, signing secret). Default ./lode-data.
    #[arg(long, env = "LODE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Optional TOML configuration file; flags and LODE_* variables override it.
    #[arg(long, env = "LODE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The index in PostgreSQL (postgres://USER:PASSWORD@HOST:PORT/DATABASE) instead of SQLite
    /// in the data folder; every server of a deployment and its admin and fsck use the same.
    #[arg(long, env = "LODE_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// File holding the token-signing secret (created when missing), instead of the data folder
    /// (SQLite) or the database (PostgreSQL).
    #[arg(long, env = "LODE_SECRET_FILE", global = true)]
    secret_file: Option<PathBuf>,
    #[command(flatten)]
    s3: S3Args,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Administer projects, users, groups, grants and tokens directly on the data folder.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Check the index against the blobs; with --repair, fix what disagrees.
    Fsck {
        /// Fix what disagrees: drop index rows of bad blobs, move stray files aside.
        #[arg(long)]
        repair: bool,
        /// Compare sizes only; do not re-hash every blob.
        #[arg(long)]
        quick: bool,
    },
    /// Exit 0 when the server on the configured address answers /readyz with 200, else 1.
    Healthcheck(HealthcheckArgs),
    /// Copy the deployment into DEST (a new or empty folder) while the server runs: the index as
    /// of one moment and every blob it references (hard links on the same filesystem).
    Backup {
        /// A new or empty folder to copy into.
        dest: PathBuf,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed on stdout).
    #[arg(long, env = "LODE_LISTEN")]
    listen: Option<String>,
    /// Largest object accepted, e.g. 100G.
    #[arg(long, env = "LODE_MAX_OBJECT_SIZE")]
    max_object_size: Option<String>,
    /// Time limit of a native API call, e.g. 60s.
    #[arg(long, env = "LODE_REQUEST_TIMEOUT")]
    request_timeout: Option<String>,
    /// Longest pause allowed inside an upload body, e.g. 120s.
    #[arg(long, env = "LODE_BODY_TIMEOUT")]
    body_timeout: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "LODE_LOG_FORMAT")]
    log_format: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (re-read on SIGHUP); needs --tls-key.
    #[arg(long, env = "LODE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key.
    #[arg(long, env = "LODE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// With an S3 blob store: answer downloads of large objects with a redirect to a URL of the
    /// bucket that expires in minutes, so their bytes do not pass through this server.
    #[arg(long, env = "LODE_S3_REDIRECT_DOWNLOADS")]
    s3_redirect_downloads: bool,
}

/// Where blobs live, for `serve`, `admin` and `fsck` alike.
#[derive(Args)]
struct S3Args {
    /// Keep blobs in an S3 bucket, s3://BUCKET/PREFIX, instead of the data folder.
    #[arg(long, env = "LODE_BLOB_STORE", global = true)]
    blob_store: Option<String>,
    /// S3 endpoint URL of a store other than AWS, e.g. http://127.0.0.1:8333.
    #[arg(long, env = "LODE_S3_ENDPOINT", global = true)]
    s3_endpoint: Option<String>,
    /// S3 region (default: from the AWS configuration, else us-east-1).
    #[arg(long, env = "LODE_S3_REGION", global = true)]
    s3_region: Option<String>,
    /// Address buckets as http://ENDPOINT/BUCKET (most self-hosted stores need it).
    #[arg(long, env = "LODE_S3_PATH_STYLE", global = true)]
    s3_path_style: bool,
    /// Abort multipart uploads left unfinished this long (by a crash), e.g. 24h.
    #[arg(long, env = "LODE_S3_UPLOAD_GRACE", global = true)]
    s3_upload_grace: Option<String>,
}

#[derive(Args)]
struct HealthcheckArgs {
    /// The address `serve` listens on.
    #[arg(long, env = "LODE_LISTEN")]
    listen: Option<String>,
    /// Set when `serve` speaks HTTPS.
    #[arg(long, env = "LODE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// Longest wait for the answer, e.g. 3s.
    #[arg(long, default_value = "3s")]
    timeout: String,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LODE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn resolve_config(cli: &Cli, args: Option<&ServeArgs>) -> anyhow::Result<ServerConfig> {
    let file = match &cli.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let mut cfg = ServerConfig::from_file(&file)?;
    if let Some(d) = &cli.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(u) = &cli.database_url {
        cfg.database_url = Some(DatabaseUrl(u.clone()));
    }
    if let Some(p) = &cli.secret_file {
        cfg.secret_file = Some(p.clone());
    }
    if let Some(url) = &cli.s3.blob_store {
        cfg.blob_store = BlobStoreConfig::parse(Some(url), S3Settings::default())?;
    }
    if let BlobStoreConfig::S3 {
        settings,
        upload_grace,
        ..
    } = &mut cfg.blob_store
    {
        if let Some(g) = &cli.s3.s3_upload_grace {
            *upload_grace = parse_duration(g)?;
        }
        if let Some(e) = &cli.s3.s3_endpoint {
            settings.endpoint = Some(e.clone());
        }
        if let Some(r) = &cli.s3.s3_region {
            settings.region = Some(r.clone());
        }
        settings.path_style |= cli.s3.s3_path_style;
    }
    if let Some(a) = args {
        if let Some(l) = &a.listen {
            cfg.listen = l.clone();
        }
        if let Some(s) = &a.max_object_size {
            cfg.max_object_size = parse_size(s)?;
        }
        if let Some(s) = &a.request_timeout {
            cfg.request_timeout = parse_duration(s)?;
        }
        if let Some(s) = &a.body_timeout {
            cfg.body_timeout = parse_duration(s)?;
        }
        if let Some(s) = &a.log_format {
            cfg.log_format = parse_log_format(s)?;
        }
        if let Some(p) = &a.tls_cert {
            cfg.tls_cert = Some(p.clone());
        }
        if let Some(p) = &a.tls_key {
            cfg.tls_key = Some(p.clone());
        }
        cfg.s3_redirect_downloads |= a.s3_redirect_downloads;
    }
    Ok(cfg)
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once (many messages already quote theirs).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let serve_args = match &cli.command {
        Command::Serve(a) => Some(a),
        _ => None,
    };
    let cfg = resolve_config(&cli, serve_args)?;
    init_logging(cfg.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve(_) => Ok(lode_server::serve::run(cfg).await?),
            Command::Admin(cmd) => Ok(lode_server::admin::run(&cfg, cmd).await?),
            Command::Fsck { repair, quick } => fsck(&cfg, repair, quick).await,
            Command::Healthcheck(args) => healthcheck(cfg, args).await,
            Command::Backup { dest } => backup(&cfg, &dest).await,
        }
    })
}

async fn backup(cfg: &ServerConfig, dest: &std::path::Path) -> anyhow::Result<()> {
    let r = lode_server::backup::run(cfg, dest).await?;
    println!(
        "backed up {} object(s), {} byte(s), to {}: {} linked, {} copied",
        r.objects,
        r.bytes,
        dest.display(),
        r.linked,
        r.copied
    );
    if r.collected > 0 {
        println!(
            "{} object(s) collected after the index was copied are not in the backup",
            r.collected
        );
    }
    Ok(())
}

async fn healthcheck(cfg: ServerConfig, args: HealthcheckArgs) -> anyhow::Result<()> {
    let listen = args.listen.unwrap_or(cfg.listen);
    let tls = args.tls_cert.or(cfg.tls_cert).is_some();
    let url = lode_server::healthcheck::ready_url(&listen, tls)?;
    let timeout = parse_duration(&args.timeout)?;
    if let Err(e) = lode_server::healthcheck::check(&url, timeout).await {
        eprintln!("not ready: {e}");
        std::process::exit(1);
    }
    Ok(())
}

async fn fsck(cfg: &ServerConfig, repair: bool, quick: bool) -> anyhow::Result<()> {
    let report = lode_server::fsck::check(cfg, repair, quick).await?;
    println!(
        "checked {} blob(s) against {} indexed object(s)",
        report.blobs, report.indexed
    );
    let sections = [
        ("missing blob", &report.missing),
        ("corrupt blob", &report.corrupt),
        ("unreferenced blob", &report.orphans),
        ("stray file", &report.strays),
        ("incomplete directory", &report.incomplete_dirs),
    ];
    for (what, items) in sections {
        for i in items.iter() {
            println!("{what}: {i}");
        }
    }
    if report.temp_files > 0 {
        println!("unfinished uploads in tmp/: {}", report.temp_files);
    }
    let n = report.problems();
    if n == 0 {
        println!("no problems found");
    } else if repair {
        println!("repaired {n} problem(s)");
    } else {
        println!("{n} problem(s) found; run `lode-server fsck --repair` to fix them");
        std::process::exit(1);
    }
    Ok(())
}
