//! A real `lode-server` process for end-to-end tests: a temporary data folder, a port chosen by
//! the OS, projects and tokens made with `lode-server admin`, and the process killed on drop.
//!
//! With `LODE_TEST_DATABASE=postgres` every server keeps its index in a new database of the test
//! process's PostgreSQL ([`crate::postgres`]) instead of SQLite in its data folder, and its
//! `admin`, `fsck` and restarts use the same database; tests about SQLite's files skip themselves
//! then through [`sqlite_only`]. With `LODE_TEST_BLOB_STORE=s3` every server keeps its blobs in a
//! new bucket of the test process's SeaweedFS ([`crate::seaweed`]); tests about the data folder's
//! blob files skip themselves then through [`disk_only`].
//!
//! ```no_run
//! let server = lode_e2e::server::Server::start();
//! let token = server.project_with_token("ml", "write");
//! let remote_url = server.project_url("ml"); // what `dvc remote add` / `lode remote add` take
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::repo::Run;
use crate::seaweed::Seaweed;

/// How long a server may take to print its address and answer `/healthz`.
const START_DEADLINE: Duration = Duration::from_secs(30);

pub struct Server {
    child: Option<Child>,
    /// Holds the data folder (`data/`) and the server's log (`server.log`).
    home: TempDir,
    data_dir: PathBuf,
    url: String,
    extra_env: Vec<(String, String)>,
    log_generation: u32,
    database_url: Option<String>,
    /// Where blobs live when not in the data folder.
    s3: Option<S3Place>,
}

/// Whether the servers of this test run keep their index in PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("LODE_TEST_DATABASE").as_deref() == Ok("postgres")
}

/// For tests about SQLite's own files: true (after saying why) when this run puts the index in
/// PostgreSQL, where the test has nothing to check; the test then returns.
pub fn sqlite_only(why: &str) -> bool {
    if on_postgres() {
        eprintln!("not run with LODE_TEST_DATABASE=postgres: {why}");
    }
    on_postgres()
}

/// The index a new server gets: a fresh PostgreSQL database under `LODE_TEST_DATABASE=postgres`.
fn new_database() -> Option<String> {
    if !on_postgres() {
        return None;
    }
    let pg = crate::postgres::shared()
        .expect("LODE_TEST_DATABASE=postgres needs PostgreSQL (/usr/lib/postgresql/*/bin)");
    Some(pg.fresh_database())
}

/// Whether the servers of this test run keep their blobs in S3 (SeaweedFS).
pub fn on_s3() -> bool {
    std::env::var("LODE_TEST_BLOB_STORE").as_deref() == Ok("s3")
}

/// For tests about the data folder's blob files: true (after saying why) when this run keeps
/// blobs in S3, where `tests/tests/server_s3.rs` checks the same rules; the test then returns.
pub fn disk_only(why: &str) -> bool {
    if on_s3() {
        eprintln!("not run with LODE_TEST_BLOB_STORE=s3: {why}");
    }
    on_s3()
}

/// A bucket and prefix of the test binary's SeaweedFS.
pub struct S3Place {
    pub store: &'static Seaweed,
    pub bucket: String,
    pub prefix: String,
}

/// The prefix servers keep their blobs under when `LODE_TEST_BLOB_STORE=s3` chooses the store.
const TEST_PREFIX: &str = "lode";

impl Server {
    /// Starts a server on a fresh, empty data folder.
    pub fn start() -> Server {
        Server::start_with_env(&[])
    }

    /// Starts a server with extra environment variables (e.g. `LODE_MAX_OBJECT_SIZE`).
    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        Server::start_in(None, env)
    }

    /// Starts a server on the given data folder (a fresh temporary one when `None`).
    pub fn start_in(data_dir: Option<&Path>, env: &[(&str, &str)]) -> Server {
        Server::launch(data_dir, env, new_database())
    }

    fn launch(
        data_dir: Option<&Path>,
        env: &[(&str, &str)],
        database_url: Option<String>,
    ) -> Server {
        let home = tempfile::Builder::new()
            .prefix("lode-server-")
            .tempdir()
            .expect("temp dir");
        let data_dir = data_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| home.path().join("data"));
        let chosen = env.iter().any(|(k, _)| *k == "LODE_BLOB_STORE");
        let s3 =
            (!chosen && std::env::var("LODE_TEST_BLOB_STORE").as_deref() == Ok("s3")).then(|| {
                let store = crate::seaweed::shared()
                    .expect("LODE_TEST_BLOB_STORE=s3 needs SeaweedFS (`weed`)");
                S3Place {
                    store,
                    bucket: store.fresh_bucket(),
                    prefix: TEST_PREFIX.to_string(),
                }
            });
        let mut s = Server {
            child: None,
            home,
            data_dir,
            url: String::new(),
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log_generation: 0,
            database_url,
            s3,
        };
        s.spawn();
        s
    }

    /// Starts a server whose index is the PostgreSQL database `database_url`, with its blobs in
    /// `data_dir` (a fresh temporary folder when `None`).
    pub fn start_on_database(
        database_url: &str,
        data_dir: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Server {
        Server::launch(data_dir, env, Some(database_url.to_string()))
    }

    /// Everything the index holds, as text: the SQLite file and its log, or a dump of the
    /// PostgreSQL database (of the test process's cluster).
    pub fn index_contents(&self) -> String {
        match self.database_url() {
            Some(url) => {
                let pg = crate::postgres::shared().expect("the test process's PostgreSQL");
                pg.dump(url.rsplit('/').next().expect("database name"))
            }
            None => {
                let mut db = std::fs::read(self.data_dir.join("lode.db")).expect("lode.db");
                if let Ok(wal) = std::fs::read(self.data_dir.join("lode.db-wal")) {
                    db.extend(wal);
                }
                String::from_utf8_lossy(&db).into_owned()
            }
        }
    }

    /// The PostgreSQL database this server's index is in, if any.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    fn spawn(&mut self) {
        self.log_generation += 1;
        let log_path = self.log_path_of(self.log_generation);
        let log = std::fs::File::create(&log_path).expect("server log file");
        let mut cmd = Command::new(crate::bins::lode_server());
        cmd.arg("serve")
            .env("LODE_DATA_DIR", &self.data_dir)
            .env("LODE_LISTEN", "127.0.0.1:0")
            .env("LODE_LOG", "info,lode_server=debug,tower_http=debug")
            .env_remove("LODE_CONFIG")
            .env_remove("LODE_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if let Some(url) = &self.database_url {
            cmd.env("LODE_DATABASE_URL", url);
        }
        for (k, v) in self.store_env() {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn lode-server");
        let stdout = child.stdout.take().expect("server stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("lode-server listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(START_DEADLINE) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "lode-server did not report its address; log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        };
        self.child = Some(child);
        self.url = url;
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        // Only asks whether it answers: an HTTPS server's certificate is the test's to check.
        let client = reqwest::blocking::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .expect("client");
        let deadline = Instant::now() + START_DEADLINE;
        let mut pause = Duration::from_millis(5);
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.url)).send() {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("lode-server exited ({status}); log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "lode-server not healthy in time; log:\n{}",
                self.log()
            );
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The DVC/lode remote URL of a project.
    pub fn project_url(&self, project: &str) -> String {
        format!("{}/{project}", self.url)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn log_path_of(&self, generation: u32) -> PathBuf {
        self.home.path().join(format!("server-{generation}.log"))
    }

    /// Everything every run of this server wrote to stderr so far.
    pub fn log(&self) -> String {
        (1..=self.log_generation)
            .map(|g| std::fs::read_to_string(self.log_path_of(g)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The server's extra environment and, when the harness chose an S3 store, its settings.
    fn store_env(&self) -> Vec<(String, String)> {
        let mut env = self.extra_env.clone();
        if let Some(p) = &self.s3 {
            env.extend(p.store.server_env(&p.bucket, &p.prefix));
        }
        env
    }

    /// Where this server keeps its blobs, when in S3.
    pub fn s3(&self) -> Option<&S3Place> {
        self.s3.as_ref()
    }

    /// Runs `lode-server <args>` on this server's deployment: its data folder, its index and the
    /// environment it was started with.
    pub fn cli(&self, args: &[&str]) -> Run {
        let mut cmd = Server::cli_command(&self.data_dir, args);
        if let Some(url) = self.database_url() {
            cmd.env("LODE_DATABASE_URL", url);
        }
        for (k, v) in self.store_env() {
            cmd.env(k, v);
        }
        cmd.output().expect("run lode-server").into()
    }

    /// Runs `lode-server <args>` on any data folder, with its index in SQLite there.
    pub fn cli_on(data_dir: &Path, args: &[&str]) -> Run {
        Server::cli_command(data_dir, args)
            .output()
            .expect("run lode-server")
            .into()
    }

    fn cli_command(data_dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(crate::bins::lode_server());
        cmd.args(args)
            .env("LODE_DATA_DIR", data_dir)
            .env_remove("LODE_CONFIG")
            .env_remove("LODE_DATABASE_URL")
            .env("RUST_BACKTRACE", "0");
        cmd
    }

    /// Runs `lode-server admin <args>`, panicking on failure.
    pub fn admin(&self, args: &[&str]) -> Run {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        self.cli(&all).ok()
    }

    /// The last line of stdout: where `admin token create` prints the token.
    fn last_line(run: &Run) -> String {
        run.stdout
            .lines()
            .last()
            .expect("token line")
            .trim()
            .to_string()
    }

    pub fn create_project(&self, name: &str) {
        self.admin(&["project", "create", name]);
    }

    /// A project token with `role` (`read`, `write` or `admin`).
    pub fn token(&self, project: &str, role: &str) -> String {
        Self::last_line(&self.admin(&["token", "create", "--project", project, "--role", role]))
    }

    /// Creates the project and returns a token with `role` on it.
    pub fn project_with_token(&self, project: &str, role: &str) -> String {
        self.create_project(project);
        self.token(project, role)
    }

    /// A token of a server admin user.
    pub fn server_admin_token(&self) -> String {
        Self::last_line(&self.admin(&["token", "create", "--server-admin"]))
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends a signal (`HUP`, `TERM`, ...) without waiting.
    pub fn signal(&self, name: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([&format!("-{name}"), &pid.to_string()])
                .status();
        }
    }

    /// Upload files in the data folder's `tmp/`: those with a name, and the unnamed ones
    /// (`O_TMPFILE`) that the running server holds open.
    /// With an S3 store: its multipart uploads not yet completed or aborted.
    pub fn temp_files(&self) -> usize {
        if let Some(p) = &self.s3 {
            return p.store.pending_uploads(&p.bucket, &p.prefix).len();
        }
        let tmp = self.data_dir().join("tmp");
        let named = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
        let tmp = tmp.canonicalize().unwrap_or(tmp);
        let open = self
            .pid()
            .and_then(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).ok())
            .map(|fds| {
                fds.flatten()
                    .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                    .filter(|target| target.starts_with(&tmp) && *target != tmp)
                    .count()
            })
            .unwrap_or(0);
        named + open
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit on its own.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let pid = self.pid()?;
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let mut c = self.child.take()?;
        c.wait().ok()
    }

    /// Sends SIGTERM without waiting; `wait` collects the exit.
    pub fn signal_terminate(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> Option<ExitStatus> {
        self.child.take()?.wait().ok()
    }

    /// Starts the server again on the same data folder (after `kill` or `terminate`).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Path of an object under a project's remote URL: `files/md5/ab/cdef...` (DVC 3).
pub fn object_path(oid: &str) -> String {
    format!("files/md5/{}/{}", &oid[..2], &oid[2..])
}

/// Path of a legacy (md5-dos2unix) object: `ab/cdef...`.
pub fn legacy_object_path(oid: &str) -> String {
    format!("{}/{}", &oid[..2], &oid[2..])
}

/// The answer to a raw HTTP request: status code, headers (lowercased names) and body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// The `Authorization` header line of a [`Server::raw`] request made with `token`.
pub fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

impl Server {
    /// Collects every unreferenced object of `project` at once, with no grace period, through
    /// the API.
    pub fn collect_everything(&self, project: &str, token: &str) -> RawResponse {
        self.raw(
            "POST",
            &format!("/api/v1/projects/{project}/gc"),
            &[&bearer(token), "Content-Type: application/json"],
            br#"{"keep":[],"grace_seconds":0}"#,
        )
    }

    /// Sends `METHOD target` exactly as given (no path normalisation, unlike HTTP clients) with
    /// the given extra header lines and body, and reads the whole answer.
    pub fn raw(&self, method: &str, target: &str, headers: &[&str], body: &[u8]) -> RawResponse {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).expect("send");
        s.write_all(body).expect("send body");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        RawResponse {
            status,
            headers,
            body: body.to_string(),
        }
    }

    /// Every file under the data folder's `blobs/` and `tmp/`, relative to the data folder.
    /// With an S3 store, its objects and unfinished uploads named the same way
    /// (`blobs/{kind}/ab/cdef…`, `tmp/{key}`).
    pub fn stored_files(&self) -> Vec<String> {
        if let Some(p) = &self.s3 {
            return s3_files(p);
        }
        let mut out = Vec::new();
        for sub in ["blobs", "tmp"] {
            for e in walkdir::WalkDir::new(self.data_dir.join(sub))
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_file())
            {
                if let Ok(rel) = e.path().strip_prefix(&self.data_dir) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }
}

impl Server {
    /// A stored blob's bytes, named as [`Server::stored_files`] names it; `None` when absent.
    pub fn stored_blob(&self, name: &str) -> Option<Vec<u8>> {
        let Some(p) = &self.s3 else {
            return std::fs::read(self.data_dir.join(name)).ok();
        };
        let key = if let Some(md5) = name.strip_prefix("blobs/md5/") {
            format!("{}/files/md5/{md5}", p.prefix)
        } else {
            let legacy = name.strip_prefix("blobs/md5-dos2unix/")?;
            format!("{}/{legacy}", p.prefix)
        };
        p.store.get(&p.bucket, &key)
    }
}

fn s3_files(p: &S3Place) -> Vec<String> {
    let start = format!("{}/", p.prefix);
    let mut out: Vec<String> = p
        .store
        .keys(&p.bucket, &start)
        .into_iter()
        .filter_map(|key| {
            let rel = key.strip_prefix(&start)?;
            if let Some(md5) = rel.strip_prefix("files/md5/") {
                Some(format!("blobs/md5/{md5}"))
            } else if rel.starts_with('.') || rel.starts_with("quarantine/") {
                None
            } else {
                Some(format!("blobs/md5-dos2unix/{rel}"))
            }
        })
        .collect();
    out.extend(
        p.store
            .pending_uploads(&p.bucket, &p.prefix)
            .into_iter()
            .map(|k| format!("tmp/{k}")),
    );
    out.sort();
    out
}
