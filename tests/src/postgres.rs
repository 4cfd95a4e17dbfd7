//! A real PostgreSQL for tests, from Debian's packages (`/usr/lib/postgresql/*/bin/`): a cluster
//! made by `initdb` in a temporary folder, listening on a free loopback port, one empty database
//! per test.
//!
//! ```no_run
//! let Some(pg) = lode_e2e::postgres::shared() else { return }; // skipped: no PostgreSQL
//! let url = pg.fresh_database(); // postgres://lode:…@127.0.0.1:PORT/tN
//! ```
//!
//! [`shared`] starts one cluster per test process, used by all its tests. [`Postgres::start`]
//! starts a private one that a test may stop and start again. Every cluster runs under a small
//! shell that stops it and removes its folder as soon as this process closes the shell's standard
//! input, which the kernel does when the process exits, however it exits.
//!
//! `initdb` refuses to run as root, so as root the cluster runs as the `postgres` user that
//! Debian's package creates. The tests run whenever the binaries are installed and say loudly
//! when they skip; the test script sets `LODE_REQUIRE_POSTGRES=1`, under which a PostgreSQL that
//! is missing or does not start fails them.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser the tests connect as, and its password (also used to check that no message
/// ever prints it).
pub const USER: &str = "lode";
pub const PASSWORD: &str = "pg-test-password-7f3a";

/// How long a cluster may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Stops the cluster when its standard input closes and removes the folder `$1` unless the line
/// read was `keep`; the rest of the arguments are the `postgres` command.
const WATCHDOG: &str = r#"dir=$1; shift
"$@" &
pid=$!
read -r answer || answer=
kill -INT "$pid" 2>/dev/null
wait "$pid"
if [ "$answer" != keep ]; then rm -rf "$dir"; fi
"#;

/// A running PostgreSQL cluster.
pub struct Postgres {
    bin: PathBuf,
    home: PathBuf,
    port: u16,
    run_as: Option<String>,
    watchdog: Option<(Child, ChildStdin)>,
    databases: AtomicU32,
}

/// Whether the test script demands PostgreSQL.
fn required() -> bool {
    std::env::var("LODE_REQUIRE_POSTGRES").as_deref() == Ok("1")
}

/// The newest installed `bin/` folder of Debian's PostgreSQL packages.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The cluster every test of this process shares, started on first use; `None` (with a loud
/// notice) when PostgreSQL is not installed and the test script did not demand it.
pub fn shared() -> Option<&'static Postgres> {
    static SHARED: OnceLock<Option<Postgres>> = OnceLock::new();
    SHARED.get_or_init(Postgres::start).as_ref()
}

impl Postgres {
    /// Starts a cluster of its own; `None` as for [`shared`]. Panics when PostgreSQL is
    /// installed (or demanded) but does not start.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            if required() {
                panic!("PostgreSQL is required (LODE_REQUIRE_POSTGRES=1) but no /usr/lib/postgresql/*/bin/initdb is installed");
            }
            eprintln!(
                "\n==========\nSKIPPED: PostgreSQL is not installed (/usr/lib/postgresql/*/bin); the PostgreSQL tests did NOT run\n==========\n"
            );
            return None;
        };
        // SAFETY: geteuid has no preconditions.
        let run_as = (unsafe { libc::geteuid() } == 0).then(|| "postgres".to_string());
        let home = tempfile::Builder::new()
            .prefix("lode-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let mut pg = Postgres {
            bin,
            home,
            port: 0,
            run_as,
            watchdog: None,
            databases: AtomicU32::new(0),
        };
        pg.init();
        // Another process may take the port between choosing it and binding it: choose again.
        for _ in 0..5 {
            pg.port = free_port();
            if pg.spawn() {
                return Some(pg);
            }
        }
        panic!("PostgreSQL did not start; log:\n{}", pg.log());
    }

    fn data(&self) -> PathBuf {
        self.home.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.home.join("postgres.log")
    }

    /// What the cluster logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A command for one of the cluster's binaries, run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={user}"))
                    .arg(format!("--regid={user}"))
                    .arg("--init-groups")
                    .arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn init(&self) {
        let pwfile = self.home.join("password");
        std::fs::write(&pwfile, PASSWORD).expect("write password file");
        if let Some(user) = &self.run_as {
            let (uid, gid) = ids_of(user);
            for p in [&self.home, &pwfile] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown to postgres");
            }
        }
        std::fs::set_permissions(&self.home, std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        let out = self
            .command("initdb")
            .arg("--pgdata")
            .arg(self.data())
            .args(["--username", USER, "--encoding=UTF8", "--locale=C.UTF-8"])
            .arg(format!("--pwfile={}", pwfile.display()))
            // Connections over TCP, as lode-server makes them, need the password.
            .args([
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `postgres` under the watchdog; false when it could not listen on the port.
    fn spawn(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("postgres log");
        let postgres = self.command("postgres");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(&self.home)
            .arg(postgres.get_program())
            .args(postgres.get_args())
            .arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.home)
            .args(["-c", "listen_addresses=127.0.0.1"])
            // Durability is not what these tests check; speed is what they need.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn postgres");
        let stdin = child.stdin.take().expect("watchdog stdin");
        self.watchdog = Some((child, stdin));
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if self.accepts_connections() {
                return true;
            }
            let exited = self
                .watchdog
                .as_mut()
                .is_some_and(|(c, _)| matches!(c.try_wait(), Ok(Some(_))));
            if exited || self.log().contains("could not bind") {
                self.stop();
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections in time; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn accepts_connections(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection URL of `database`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Creates a new, empty database and returns its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs SQL in `database` and returns what `psql` printed (unaligned, tuples only).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", USER, "-d", database, "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Every row of `database`, as `pg_dump --data-only` writes them.
    pub fn dump(&self, database: &str) -> String {
        let out = Command::new(self.bin.join("pg_dump"))
            .args([
                "--data-only",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .args(["-U", USER, database])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the cluster (fast shutdown: open connections are cut), keeping its data.
    pub fn stop(&mut self) {
        if let Some((mut child, mut stdin)) = self.watchdog.take() {
            let _ = stdin.write_all(b"keep\n");
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Starts the stopped cluster again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "PostgreSQL did not start again on port {}; log:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        match self.watchdog.take() {
            // End of input: the watchdog stops the cluster and removes its folder.
            Some((mut child, stdin)) => {
                drop(stdin);
                let _ = child.wait();
            }
            None => {
                let _ = std::fs::remove_dir_all(&self.home);
            }
        }
    }
}

/// A port the OS considers free on 127.0.0.1 at this moment.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The numeric user and group of `user`, which Debian's package creates.
fn ids_of(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, user])
            .output()
            .expect("run id");
        assert!(
            out.status.success(),
            "running as root needs the user '{user}' that Debian's postgresql package creates: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    (id("-u"), id("-g"))
}
