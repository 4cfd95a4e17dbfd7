//! `lode-server`: serve, admin, fsck.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use lode_proto::Role;
use lode_server::admin::{Admin, TokenTarget, DEFAULT_ADMIN_USER};
use lode_server::backends::open_backends;
use lode_server::config::{
    parse_duration, parse_log_format, parse_size, FileConfig, LogFormat, ServerConfig,
};
use lode_server::db::{Grantee, Occupant};

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
    Backup { dest: PathBuf },
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

#[derive(Subcommand)]
enum AdminCmd {
    #[command(subcommand)]
    Project(ProjectCmd),
    #[command(subcommand)]
    User(UserCmd),
    #[command(subcommand)]
    Group(GroupCmd),
    #[command(subcommand)]
    Grant(GrantCmd),
    #[command(subcommand)]
    Token(TokenCmd),
    /// Objects and bytes a project holds.
    Usage { project: String },
    /// Recent audit log entries, newest first.
    Audit {
        #[arg(long)]
        project: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum ProjectCmd {
    Create { name: String },
    List,
    Delete { name: String },
}

#[derive(Subcommand)]
enum UserCmd {
    Create {
        name: String,
        #[arg(long)]
        server_admin: bool,
    },
    List,
    Delete {
        name: String,
    },
}

#[derive(Subcommand)]
enum GroupCmd {
    Create { name: String },
    List,
    Delete { name: String },
    AddMember { group: String, user: String },
    RemoveMember { group: String, user: String },
}

#[derive(Args)]
struct Grantee_ {
    #[arg(long, conflicts_with = "user", required_unless_present = "user")]
    group: Option<String>,
    #[arg(long)]
    user: Option<String>,
}

impl Grantee_ {
    fn get(&self) -> Grantee<'_> {
        match (&self.group, &self.user) {
            (Some(g), _) => Grantee::Group(g),
            (None, Some(u)) => Grantee::User(u),
            (None, None) => Grantee::User(""),
        }
    }
}

#[derive(Subcommand)]
enum GrantCmd {
    /// Give a group or user a role on a project.
    Set {
        #[arg(long)]
        project: String,
        #[command(flatten)]
        who: Grantee_,
        #[arg(long)]
        role: Role,
    },
    Remove {
        #[arg(long)]
        project: String,
        #[command(flatten)]
        who: Grantee_,
    },
    List {
        #[arg(long)]
        project: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token; the token alone is printed on the last line of stdout.
    Create {
        /// A project token with --role.
        #[arg(long, conflicts_with = "server_admin", requires = "role")]
        project: Option<String>,
        #[arg(long)]
        role: Option<Role>,
        /// A user token (with --server-admin: the admin user's name, default "admin").
        #[arg(long)]
        user: Option<String>,
        /// A token of a server admin user, created if missing.
        #[arg(long)]
        server_admin: bool,
        /// Lifetime, e.g. 30d, 12h; no expiry when left out.
        #[arg(long)]
        expires_in: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    List {
        #[arg(long)]
        project: Option<String>,
    },
    Revoke {
        id: String,
    },
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
    }
    Ok(cfg)
}

fn main() -> anyhow::Result<()> {
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
            Command::Admin(cmd) => admin(&cfg, cmd).await,
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

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn admin(cfg: &ServerConfig, cmd: AdminCmd) -> anyhow::Result<()> {
    let a = Admin::open(cfg).await?;
    let result = admin_inner(&a, cmd).await;
    a.close().await;
    result
}

async fn admin_inner(a: &Admin, cmd: AdminCmd) -> anyhow::Result<()> {
    let db = &a.db;
    match cmd {
        AdminCmd::Project(ProjectCmd::Create { name }) => {
            Admin::check_name("project", &name)?;
            db.create_project(&name).await?;
            a.audit("project.create", Some(&name), None).await;
            println!("{name}");
        }
        AdminCmd::Project(ProjectCmd::List) => print_json(&db.list_projects().await?)?,
        AdminCmd::Project(ProjectCmd::Delete { name }) => {
            db.delete_project(&name).await?;
            a.audit("project.delete", Some(&name), None).await;
        }
        AdminCmd::User(UserCmd::Create { name, server_admin }) => {
            Admin::check_name("user", &name)?;
            db.create_user(&name, server_admin).await?;
            a.audit("user.create", None, Some(name.clone())).await;
            println!("{name}");
        }
        AdminCmd::User(UserCmd::List) => print_json(&db.list_users().await?)?,
        AdminCmd::User(UserCmd::Delete { name }) => {
            db.delete_user(&name).await?;
            a.audit("user.delete", None, Some(name)).await;
        }
        AdminCmd::Group(GroupCmd::Create { name }) => {
            Admin::check_name("group", &name)?;
            db.create_group(&name).await?;
            a.audit("group.create", None, Some(name.clone())).await;
            println!("{name}");
        }
        AdminCmd::Group(GroupCmd::List) => print_json(&db.list_groups().await?)?,
        AdminCmd::Group(GroupCmd::Delete { name }) => {
            db.delete_group(&name).await?;
            a.audit("group.delete", None, Some(name)).await;
        }
        AdminCmd::Group(GroupCmd::AddMember { group, user }) => {
            db.add_member(&group, &user).await?;
            a.audit("group.add_member", None, Some(format!("{group}:{user}")))
                .await;
        }
        AdminCmd::Group(GroupCmd::RemoveMember { group, user }) => {
            db.remove_member(&group, &user).await?;
            a.audit("group.remove_member", None, Some(format!("{group}:{user}")))
                .await;
        }
        AdminCmd::Grant(GrantCmd::Set { project, who, role }) => {
            a.set_grant(&project, who.get(), role).await?;
        }
        AdminCmd::Grant(GrantCmd::Remove { project, who }) => {
            let id = db.require_project(&project).await?;
            db.remove_grant(id, who.get()).await?;
            a.audit(
                "grant.remove",
                Some(&project),
                Some(format!("{:?}", who.get())),
            )
            .await;
        }
        AdminCmd::Grant(GrantCmd::List { project }) => {
            let id = db.require_project(&project).await?;
            print_json(&db.list_grants(id).await?)?;
        }
        AdminCmd::Token(TokenCmd::Create {
            project,
            role,
            user,
            server_admin,
            expires_in,
            description,
        }) => {
            let expires = expires_in.as_deref().map(parse_duration).transpose()?;
            let target = match (project, role, user, server_admin) {
                (Some(name), Some(role), None, false) => TokenTarget::Project { name, role },
                (None, None, user, true) => {
                    TokenTarget::ServerAdmin(user.unwrap_or_else(|| DEFAULT_ADMIN_USER.into()))
                }
                (None, None, Some(user), false) => TokenTarget::User(user),
                _ => bail!(
                    "use --project NAME --role ROLE, --user NAME, or --server-admin [--user NAME]"
                ),
            };
            let created = a.create_token(target, expires, &description).await?;
            eprintln!(
                "created token {} ({}); it is shown once, store it safely",
                created.info.id,
                match (&created.info.project, &created.info.user) {
                    (Some(p), _) => format!(
                        "project {p}, role {}",
                        created.info.role.map(|r| r.to_string()).unwrap_or_default()
                    ),
                    (None, Some(u)) => format!("user {u}"),
                    _ => String::new(),
                }
            );
            println!("{}", created.token);
        }
        AdminCmd::Token(TokenCmd::List { project }) => {
            let pid = match project {
                Some(p) => Some(db.require_project(&p).await?),
                None => None,
            };
            let rows = db.list_tokens(pid, None).await?;
            print_json(&rows.iter().map(|r| r.info()).collect::<Vec<_>>())?;
        }
        AdminCmd::Token(TokenCmd::Revoke { id }) => {
            let row = db.token(&id).await?;
            db.revoke_token(&id).await?;
            a.audit(
                "token.revoke",
                row.as_ref().and_then(|r| r.project.as_deref()),
                Some(id),
            )
            .await;
        }
        AdminCmd::Usage { project } => {
            let id = db.require_project(&project).await?;
            print_json(&db.usage(id, &project).await?)?;
        }
        AdminCmd::Audit { project, limit } => {
            print_json(&db.list_audit(project.as_deref(), None, limit).await?)?;
        }
    }
    Ok(())
}

async fn fsck(cfg: &ServerConfig, repair: bool, quick: bool) -> anyhow::Result<()> {
    let backends = open_backends(cfg, Occupant::Fsck).await?;
    let report = lode_server::fsck::run(&*backends.index, &backends.store, repair, quick).await?;
    backends.close().await;
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
