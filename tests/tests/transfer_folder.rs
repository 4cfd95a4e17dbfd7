//! `lode push/pull/status -c/gc -c` with a local folder remote in DVC's layout, and with a
//! plain HTTP server that speaks only DVC's HTTP remote protocol (not lode-server).

use std::path::Path;
use std::process::Command;

use lode_e2e::dvc;
use lode_e2e::pyserver::PyServer;
use lode_e2e::repo::{files_under, Scratch};

fn commit_all(s: &Scratch) {
    s.run("git", &["add", "-A"]).ok();
    s.run("git", &["commit", "-qm", "data"]).ok();
}

fn clone_of(s: &Scratch) -> Scratch {
    let c = Scratch::new();
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(s.path())
        .arg(c.path().join("w"))
        .output()
        .expect("git clone");
    assert!(out.status.success());
    c
}

#[test]
fn folder_round_trip_status_and_gc() {
    let remote = Scratch::new();
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    s.lode(&[
        "remote",
        "add",
        "-d",
        "store",
        remote.path().to_str().unwrap(),
    ])
    .ok();
    s.write("d/a.txt", "a\n");
    s.write("d/sp ace/ü.txt", "u\n");
    s.write("d/empty", "");
    s.write("f.csv", "a,b\r\n");
    s.lode(&["add", "d", "f.csv"]).ok();
    commit_all(&s);
    assert_eq!(s.lode(&["push"]).ok().stdout, "5 files pushed\n");
    let stored = files_under(remote.path());
    assert_eq!(stored.len(), 5);
    assert!(
        stored.iter().all(|p| p.starts_with("files/md5/")),
        "{stored:?}"
    );
    assert!(stored.iter().any(|p| p.ends_with(".dir")));
    assert_eq!(
        s.lode(&["status", "-c"]).ok().stdout,
        "Cache and remote 'store' are in sync.\n"
    );

    let c = clone_of(&s);
    let pull = c.run_in("w", lode_e2e::bins::lode(), &["pull"]).ok();
    assert_eq!(
        pull.stdout,
        "A       d/\nA       f.csv\n5 files fetched and 4 files added\n"
    );
    assert_eq!(
        std::fs::read_to_string(c.path().join("w/d/sp ace/ü.txt")).unwrap(),
        "u\n"
    );

    s.write("f.csv", "changed\n");
    s.lode(&["add", "f.csv"]).ok();
    s.lode(&["push"]).ok();
    assert_eq!(files_under(remote.path()).len(), 6);
    let gc = s.lode(&["gc", "-w", "-c", "-f"]).ok();
    assert!(
        gc.stdout.contains("Removed 1 objects from remote."),
        "{}",
        gc.stdout
    );
    assert_eq!(files_under(remote.path()).len(), 5);
    assert_eq!(
        s.lode(&["status", "-c"]).ok().stdout,
        "Cache and remote 'store' are in sync.\n"
    );
}

#[test]
fn push_without_remote_and_missing_objects() {
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    s.write("x.txt", "x\n");
    s.lode(&["add", "x.txt"]).ok();
    let r = s.lode(&["push"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with(
            "ERROR: failed to push data to the cloud - config file error: no remote specified in "
        ),
        "{}",
        r.stderr
    );
    let remote = Scratch::new();
    s.lode(&[
        "remote",
        "add",
        "-d",
        "store",
        remote.path().to_str().unwrap(),
    ])
    .ok();
    std::fs::remove_dir_all(s.join(".dvc/cache")).unwrap();
    let pushed = s.lode(&["push"]);
    assert!(
        pushed
            .stderr
            .contains("Missing cache files:\nmd5: 401b30e3b8b5d629635a5c613cdb7919"),
        "{}",
        pushed.stderr
    );
    let st = s.lode(&["status", "-c"]).ok();
    assert_eq!(st.stdout, "\tmissing:            x.txt\n");
    let pull = s.lode(&["pull"]);
    assert_eq!(pull.code, 1);
    assert!(pull
        .stderr
        .contains("Checkout failed for following targets:\nx.txt"));
}

#[test]
fn dvc_pushes_to_folder_and_lode_pulls() {
    let Some(dvc_bin) = dvc::require() else {
        return;
    };
    let remote = Scratch::new();
    let d = Scratch::git();
    let site = Scratch::new();
    d.run(&dvc_bin, &["init", "-q"]).ok();
    d.run(
        &dvc_bin,
        &[
            "config",
            "--local",
            "core.site_cache_dir",
            site.path().to_str().unwrap(),
        ],
    )
    .ok();
    d.run(
        &dvc_bin,
        &[
            "remote",
            "add",
            "-d",
            "store",
            remote.path().to_str().unwrap(),
        ],
    )
    .ok();
    d.write("imgs/1.txt", "one\n");
    d.write("imgs/2.txt", "two\n");
    d.run(&dvc_bin, &["add", "imgs"]).ok();
    d.run(&dvc_bin, &["push"]).ok();
    commit_all(&d);
    let c = clone_of(&d);
    let pull = c.run_in("w", lode_e2e::bins::lode(), &["pull"]).ok();
    assert!(pull.stdout.ends_with("3 files fetched and 2 files added\n"));
    assert_eq!(
        std::fs::read_to_string(c.path().join("w/imgs/2.txt")).unwrap(),
        "two\n"
    );
}

/// A minimal HTTP server speaking DVC's object protocol over a folder (GET, HEAD, PUT, POST),
/// nothing else: the kind of server lode must fall back to plain requests for.
const PLAIN_SERVER: &str = r#"
root = sys.argv[1]
class H(Base):
    def path_of(self):
        return os.path.join(root, self.path.lstrip("/").replace("..", ""))
    def do_GET(self):
        p = self.path_of()
        if os.path.isfile(p):
            self.answer(200, open(p, "rb").read())
        else:
            self.answer(404)
    do_HEAD = do_GET
    def do_PUT(self):
        data = self.body()
        p = self.path_of()
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, "wb").write(data)
        self.answer(201)
    do_POST = do_PUT
"#;

fn plain_server(root: &Path) -> PyServer {
    PyServer::start(PLAIN_SERVER, root)
}

#[test]
fn plain_http_server_fallback() {
    let root = Scratch::new();
    let server = plain_server(root.path());
    let url = format!("http://127.0.0.1:{}/store", server.port);
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    let add = s.lode(&["remote", "add", "-d", "web", &url]).ok();
    assert_eq!(add.stderr, "", "no lode-server hint for a plain server");
    s.lode(&["remote", "modify", "web", "method", "PUT"]).ok();
    s.write("d/a.txt", "a\n");
    s.write("d/b.txt", "b\n");
    s.write("big.bin", vec![9u8; 3 << 20]);
    s.lode(&["add", "d", "big.bin"]).ok();
    commit_all(&s);
    assert_eq!(s.lode(&["push"]).ok().stdout, "4 files pushed\n");
    assert_eq!(files_under(&root.path().join("store/files/md5")).len(), 4);
    assert_eq!(s.lode(&["push"]).ok().stdout, "Everything is up to date.\n");
    let c = clone_of(&s);
    let pull = c.run_in("w", lode_e2e::bins::lode(), &["pull"]).ok();
    assert!(pull.stdout.ends_with("4 files fetched and 3 files added\n"));
    assert_eq!(
        std::fs::read(c.path().join("w/big.bin")).unwrap(),
        vec![9u8; 3 << 20]
    );
    let gc = s.lode(&["gc", "-w", "-c", "-f"]);
    assert_eq!(gc.code, 255);
    assert!(gc.stderr.contains("cannot list or delete"), "{}", gc.stderr);
}

#[test]
fn all_commits_push_and_fetch_every_version() {
    let remote = Scratch::new();
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    s.lode(&[
        "remote",
        "add",
        "-d",
        "store",
        remote.path().to_str().unwrap(),
    ])
    .ok();
    s.write("v.txt", "one\n");
    s.lode(&["add", "v.txt"]).ok();
    commit_all(&s);
    s.write("v.txt", "two\n");
    s.lode(&["add", "v.txt"]).ok();
    commit_all(&s);
    assert_eq!(s.lode(&["push"]).ok().stdout, "1 file pushed\n");
    assert_eq!(s.lode(&["push", "-A"]).ok().stdout, "1 file pushed\n");
    assert_eq!(files_under(remote.path()).len(), 2);
    let c = clone_of(&s);
    let lode = lode_e2e::bins::lode();
    assert_eq!(
        c.run_in("w", &lode, &["fetch"]).ok().stdout,
        "1 file fetched\n"
    );
    assert_eq!(
        c.run_in("w", &lode, &["fetch", "--all-commits"])
            .ok()
            .stdout,
        "1 file fetched\n"
    );
    assert_eq!(
        c.run_in("w", &lode, &["status", "-c", "--json"])
            .ok()
            .stdout,
        "{}\n"
    );
}

/// Runs `lode args...` on a pseudo-terminal (util-linux `script`), returning all it printed.
fn lode_on_terminal(s: &Scratch, args: &[&str]) -> lode_e2e::repo::Run {
    let mut cmd = lode_e2e::bins::lode().to_string_lossy().into_owned();
    for a in args {
        cmd.push_str(" '");
        cmd.push_str(a);
        cmd.push('\'');
    }
    s.run("script", &["-qec", &cmd, "/dev/null"])
}

/// A new empty folder remote named `name`; the folder lives as long as the returned value.
fn empty_remote(s: &Scratch, name: &str) -> Scratch {
    let remote = Scratch::new();
    s.lode(&["remote", "add", name, remote.path().to_str().unwrap()])
        .ok();
    remote
}

#[test]
fn progress_bar_only_on_a_terminal() {
    let remote = Scratch::new();
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    s.lode(&["remote", "add", "-d", "r", remote.path().to_str().unwrap()])
        .ok();
    for i in 0..3 {
        s.write(&format!("f{i}"), format!("{i}{i}\n"));
    }
    s.lode(&["add", "-q", "f0", "f1", "f2"]).ok();

    // On a terminal: a bar with objects, bytes, rate and ETA, then the summary.
    let tty = lode_on_terminal(&s, &["push"]).ok();
    for part in ["/3 files", "B/9 B", "B/s", "ETA", "3 files pushed"] {
        assert!(
            tty.stdout.contains(part),
            "{part:?} missing in {:?}",
            tty.stdout
        );
    }

    // Not on a terminal: the summary alone, nothing on stderr.
    let _plain_remote = empty_remote(&s, "plain");
    let plain = s.lode(&["push", "-r", "plain"]).ok();
    assert_eq!(plain.stdout, "3 files pushed\n");
    assert_eq!(plain.stderr, "");

    // Quiet on a terminal: no bar, no summary.
    let _quiet_remote = empty_remote(&s, "quiet");
    let quiet = lode_on_terminal(&s, &["push", "-q", "-r", "quiet"]).ok();
    assert_eq!(quiet.stdout, "");

    // Verbose: one line per object.
    let _verbose_remote = empty_remote(&s, "verbose");
    let verbose = s.lode(&["push", "-v", "-r", "verbose"]).ok();
    assert_eq!(
        verbose
            .stderr
            .lines()
            .filter(|l| l.starts_with("pushed "))
            .count(),
        3,
        "{}",
        verbose.stderr
    );
}
