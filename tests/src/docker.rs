//! The lode-server image in a real Docker engine: the image built from the working tree with
//! `docker/build.sh` (once per test process), and containers and volumes with unique names that
//! are removed when dropped. Published ports are bound to 127.0.0.1 only.
//!
//! The tests run whenever `docker info` answers and say loudly when they skip; the test script
//! sets `LODE_REQUIRE_DOCKER=1`, under which a missing engine fails them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::repo::Run;
use crate::uploads::eventually_within;

/// The tag the tests build and run.
pub const IMAGE: &str = "lode-server:e2e";
/// The numeric user the image runs as.
pub const IMAGE_UID: u32 = 65532;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `docker ARGS`, with its output.
pub fn docker(args: &[&str]) -> Run {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running docker {args:?}: {e}"))
        .into()
}

/// `docker ARGS`, panicking with its output unless it succeeds.
#[track_caller]
pub fn docker_ok(args: &[&str]) -> Run {
    let r = docker(args);
    assert_eq!(
        r.code, 0,
        "docker {args:?} failed:\n{}\n{}",
        r.stdout, r.stderr
    );
    r
}

/// Whether a Docker engine answers. Prints a loud notice when it does not, and panics instead
/// under `LODE_REQUIRE_DOCKER=1`.
pub fn available() -> bool {
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o: Output| o.status.success());
    if answers {
        return true;
    }
    if std::env::var("LODE_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!(
            "a Docker engine is required (LODE_REQUIRE_DOCKER=1) but `docker info` does not answer"
        );
    }
    eprintln!(
        "\n==========\nSKIPPED: no Docker engine answers `docker info`; the image tests did NOT run\n==========\n"
    );
    false
}

fn image_id(tag: &str) -> Option<String> {
    let r = docker(&["image", "inspect", "--format", "{{.Id}}", tag]);
    (r.code == 0).then(|| r.stdout.trim().to_string())
}

/// Builds the image from the working tree (once per test process; test processes take turns
/// through a lock file) and returns its tag. The image it replaces is removed.
pub fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace_root();
        let lock_path = root.join("target").join("docker-image.lock");
        let lock = std::fs::File::create(&lock_path)
            .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        let before = image_id(IMAGE);
        let out = Command::new(root.join("docker/build.sh"))
            .args(["--tag", IMAGE])
            .current_dir(&root)
            .output()
            .expect("run docker/build.sh");
        assert!(
            out.status.success(),
            "docker/build.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let after = image_id(IMAGE);
        if let Some(old) = before.filter(|old| Some(old) != after.as_ref()) {
            // Still used by another test process's containers, at worst: then it stays.
            let _ = docker(&["image", "rm", &old]);
        }
    });
    IMAGE
}

/// A name no other test, process or earlier run uses.
pub fn unique_name(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "lode-e2e-{what}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A named volume, removed when dropped.
pub struct Volume {
    pub name: String,
}

impl Volume {
    pub fn new(what: &str) -> Volume {
        let name = unique_name(what);
        docker_ok(&["volume", "create", &name]);
        Volume { name }
    }

    /// `-v NAME:PATH` for `docker run`.
    pub fn mount(&self, path: &str) -> String {
        format!("{}:{path}", self.name)
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = docker(&["volume", "rm", "-f", &self.name]);
    }
}

/// A container, removed (with its anonymous volumes) when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d` of the image with `opts` (before the image) and `args` (after it),
    /// publishing port 8080 on a free loopback port.
    pub fn run(opts: &[&str], args: &[&str]) -> Container {
        let c = Container::start(opts, args);
        let r = docker(&["inspect", "--format", "{{.State.Status}}", &c.name]);
        assert_eq!(r.code, 0, "container {} vanished", c.name);
        c
    }

    fn start(opts: &[&str], args: &[&str]) -> Container {
        let name = unique_name("ctr");
        let mut all = vec!["run", "-d", "--name", &name, "-p", "127.0.0.1::8080"];
        all.extend_from_slice(opts);
        all.push(image());
        all.extend_from_slice(args);
        docker_ok(&all);
        Container { name }
    }

    /// Runs the image to completion (`docker run` without `-d`), returning what it printed.
    pub fn run_once(opts: &[&str], args: &[&str]) -> Run {
        let name = unique_name("once");
        let mut all = vec!["run", "--name", &name];
        all.extend_from_slice(opts);
        all.push(image());
        all.extend_from_slice(args);
        let r = docker(&all);
        let _ = docker(&["rm", "-f", "-v", &name]);
        r
    }

    /// The host port 8080 is published on (it changes when the container restarts).
    pub fn port(&self) -> u16 {
        let r = docker_ok(&["port", &self.name, "8080/tcp"]);
        r.stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("127.0.0.1:"))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no loopback port in {:?}", r.stdout))
    }

    /// `SCHEME://127.0.0.1:PORT`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port())
    }

    /// `docker exec` of `lode-server ARGS` inside the container.
    pub fn exec(&self, args: &[&str]) -> Run {
        let mut all = vec!["exec", &self.name, "/usr/local/bin/lode-server"];
        all.extend_from_slice(args);
        docker(&all)
    }

    /// `lode-server admin ARGS` inside the container, panicking on failure.
    #[track_caller]
    pub fn admin(&self, args: &[&str]) -> Run {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        let r = self.exec(&all);
        assert_eq!(r.code, 0, "admin {args:?}: {}\n{}", r.stdout, r.stderr);
        r
    }

    /// The last line `admin token create ...` printed: the token.
    pub fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token", "create"];
        all.extend_from_slice(args);
        self.admin(&all)
            .stdout
            .lines()
            .last()
            .expect("token line")
            .trim()
            .to_string()
    }

    /// `docker inspect --format FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "--format", format, &self.name])
            .stdout
            .trim()
            .to_string()
    }

    pub fn logs(&self) -> String {
        let r = docker(&["logs", &self.name]);
        format!("{}{}", r.stdout, r.stderr)
    }

    /// Polls `/readyz` (over `client`) until it answers 200.
    pub fn wait_ready(&self, client: &reqwest::blocking::Client, scheme: &str) {
        eventually_within(Duration::from_secs(60), "the container is ready", || {
            assert_ne!(
                self.inspect("{{.State.Status}}"),
                "exited",
                "the container exited:\n{}",
                self.logs()
            );
            client
                .get(format!("{}/readyz", self.url(scheme)))
                .send()
                .is_ok_and(|r| r.status() == 200)
        });
    }

    /// Waits until the container has stopped; returns its exit code.
    pub fn wait_exit(&self) -> i32 {
        let r = docker_ok(&["wait", &self.name]);
        r.stdout.trim().parse().expect("exit code")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.name]);
    }
}

/// Makes everything under `path` belong to `uid` (as the container user needs its folders).
pub fn chown_tree(path: &Path, uid: u32) {
    for e in walkdir::WalkDir::new(path).into_iter().flatten() {
        std::os::unix::fs::lchown(e.path(), Some(uid), Some(uid))
            .unwrap_or_else(|err| panic!("chown {}: {err}", e.path().display()));
    }
}

/// Writes a server certificate issued by `ca` into a new folder `certs` under `dir` (the key
/// with mode `key_mode`, everything else readable by all) and returns the `docker run` options
/// that serve HTTPS with it.
pub fn tls_options(dir: &Path, ca: &crate::tls::TestCa, key_mode: u32) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).expect("certs folder");
    let cert = ca.issue(&certs, "server");
    for (path, mode) in [(&certs, 0o755), (&cert.cert, 0o644), (&cert.key, key_mode)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    [
        "-v",
        &format!("{}:/certs:ro", certs.display()),
        "-e",
        "LODE_TLS_CERT=/certs/server.crt",
        "-e",
        "LODE_TLS_KEY=/certs/server.key",
    ]
    .map(String::from)
    .to_vec()
}

/// Sets up the README's team through `lode_server` (which runs `lode-server ARGS` where the
/// server is): project `ml`, user `alice` in group `team` granted write; returns alice's token.
pub fn team_token(lode_server: impl Fn(&[&str]) -> Run) -> String {
    for args in [
        &["admin", "project", "create", "ml"][..],
        &["admin", "user", "create", "alice"],
        &["admin", "group", "create", "team"],
        &["admin", "group", "add-member", "team", "alice"],
        &[
            "admin",
            "grant",
            "set",
            "--project",
            "ml",
            "--group",
            "team",
            "--role",
            "write",
        ],
    ] {
        let r = lode_server(args);
        assert_eq!(r.code, 0, "{args:?}: {}\n{}", r.stdout, r.stderr);
    }
    let r = lode_server(&[
        "admin",
        "token",
        "create",
        "--user",
        "alice",
        "--expires-in",
        "90d",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
        .lines()
        .last()
        .expect("token line")
        .trim()
        .to_string()
}
