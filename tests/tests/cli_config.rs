//! `lode config`, `lode remote` and `lode cache dir` against real DVC: the same command sequence
//! in two repositories must leave byte-identical config files, print the same output and exit
//! with the same codes.

use std::path::{Path, PathBuf};
use std::process::Command;

use lode_e2e::dvc;
use lode_e2e::repo::{Run, Scratch};

/// Two fresh repositories, one set up and driven by `dvc`, one by `lode`, each with its own
/// empty global and system config folders.
struct Pair {
    dvc: PathBuf,
    d: Scratch,
    l: Scratch,
    d_home: Scratch,
    l_home: Scratch,
}

impl Pair {
    fn new() -> Option<Pair> {
        let dvc = dvc::require()?;
        let p = Pair {
            dvc,
            d: Scratch::git(),
            l: Scratch::git(),
            d_home: Scratch::new(),
            l_home: Scratch::new(),
        };
        p.d_run(".", &["init", "-q"]).ok();
        p.l_run(".", &["init", "-q"]).ok();
        std::fs::create_dir_all(p.d.join("sub")).expect("mkdir");
        std::fs::create_dir_all(p.l.join("sub")).expect("mkdir");
        Some(p)
    }

    fn cmd(program: &Path, dir: &Path, home: &Scratch, args: &[&str]) -> Run {
        Command::new(program)
            .args(args)
            .current_dir(dir)
            .env("DVC_NO_ANALYTICS", "1")
            .env("DVC_NO_UPDATER", "1")
            .env("DVC_GLOBAL_CONFIG_DIR", home.join("global"))
            .env("DVC_SYSTEM_CONFIG_DIR", home.join("system"))
            .output()
            .expect("spawn")
            .into()
    }

    fn d_run(&self, rel: &str, args: &[&str]) -> Run {
        Self::cmd(&self.dvc, &self.d.join(rel), &self.d_home, args)
    }

    fn l_run(&self, rel: &str, args: &[&str]) -> Run {
        Self::cmd(
            &lode_e2e::bins::lode(),
            &self.l.join(rel),
            &self.l_home,
            args,
        )
    }

    fn normalise(&self, s: &str, root: &Path, home: &Path) -> String {
        s.replace(&home.display().to_string(), "<HOME>")
            .replace(&root.display().to_string(), "<ROOT>")
    }

    /// Runs the command in both repositories (from `rel`) and checks exit code and output match.
    #[track_caller]
    fn same_in(&self, rel: &str, args: &[&str]) -> Run {
        // The two repositories are independent: run both tools at once.
        let (d, l) = std::thread::scope(|scope| {
            let d = scope.spawn(|| self.d_run(rel, args));
            let l = self.l_run(rel, args);
            (d.join().expect("dvc run"), l)
        });
        let (dout, lout) = (
            self.normalise(&d.stdout, self.d.path(), self.d_home.path()),
            self.normalise(&l.stdout, self.l.path(), self.l_home.path()),
        );
        let (derr, lerr) = (
            self.normalise(d.stderr.trim_end(), self.d.path(), self.d_home.path()),
            self.normalise(l.stderr.trim_end(), self.l.path(), self.l_home.path()),
        );
        assert_eq!(
            (l.code, &lout, &lerr),
            (d.code, &dout, &derr),
            "lode vs dvc for {args:?}"
        );
        self.same_files();
        l
    }

    #[track_caller]
    fn same(&self, args: &[&str]) -> Run {
        self.same_in(".", args)
    }

    /// Both repositories' config files (and the global ones) are byte-identical.
    #[track_caller]
    fn same_files(&self) {
        for (rel, d, l) in [
            (
                ".dvc/config",
                self.d.join(".dvc/config"),
                self.l.join(".dvc/config"),
            ),
            (
                ".dvc/config.local",
                self.d.join(".dvc/config.local"),
                self.l.join(".dvc/config.local"),
            ),
            (
                "global config",
                self.d_home.join("global/config"),
                self.l_home.join("global/config"),
            ),
        ] {
            let (d, l) = (std::fs::read(d).ok(), std::fs::read(l).ok());
            assert_eq!(
                l.as_deref().map(String::from_utf8_lossy),
                d.as_deref().map(String::from_utf8_lossy),
                "{rel} differs"
            );
        }
    }

    fn write_both(&self, rel: &str, text: &str) {
        self.d.write(rel, text);
        self.l.write(rel, text);
    }
}

#[test]
fn remote_sequence_matches_dvc() {
    let Some(p) = Pair::new() else { return };
    let r = p.same(&[
        "remote",
        "add",
        "-d",
        "storage",
        "http://127.0.0.1:8765/dvcstore",
    ]);
    assert_eq!(r.stdout, "Setting 'storage' as a default remote.\n");
    for (opt, val) in [
        ("method", "PUT"),
        ("auth", "basic"),
        ("user", "alice"),
        ("read_timeout", "30"),
        ("ssl_verify", "false"),
    ] {
        p.same(&["remote", "modify", "storage", opt, val]);
    }
    p.same(&[
        "remote", "modify", "--local", "storage", "password", "s3cret",
    ]);
    assert_eq!(
        p.l.read_string(".dvc/config"),
        "[core]\n    remote = storage\n['remote \"storage\"']\n    url = http://127.0.0.1:8765/dvcstore\n    method = PUT\n    auth = basic\n    user = alice\n    read_timeout = 30\n    ssl_verify = false\n"
    );
    assert_eq!(
        p.l.read_string(".dvc/config.local"),
        "['remote \"storage\"']\n    password = s3cret\n"
    );
    p.same(&["remote", "add", "backup", "s3://bucket/path"]);
    p.same(&["remote", "add", "Other", "/abs/store"]);
    p.same(&["remote", "list"]);
    p.same(&["remote", "list", "--project"]);
    p.same(&["remote", "default"]);
    p.same(&["remote", "default", "--local"]);
    p.same(&["config", "-l"]);
    p.same(&["config", "-l", "--show-origin"]);
    p.same(&["config", "--local", "-l"]);
    p.same(&["config", "remote.storage.user"]);
    p.same(&["config", "--show-origin", "remote.storage.password"]);
    p.same(&["remote", "modify", "storage", "--unset", "read_timeout"]);
    p.same(&["remote", "modify", "storage", "--unset", "read_timeout"]);
    p.same(&["remote", "add", "-f", "backup", "s3://bucket/other"]);
    p.same(&["remote", "modify", "backup", "region", "eu-west-1"]);
    p.same(&["remote", "default", "backup"]);
    p.same(&["remote", "rename", "backup", "archive"]);
    p.same(&["remote", "default", "--local", "storage"]);
    p.same(&["remote", "list"]);
    p.same(&["remote", "remove", "storage"]);
    p.same(&["remote", "remove", "--local", "storage"]);
    p.same(&["remote", "list"]);
    p.same(&["remote", "default", "--unset"]);
    p.same(&["remote", "default"]);
    p.same(&["remote", "remove", "archive"]);
    p.same(&["remote", "remove", "other"]);
    // DVC rewrites an emptied file as a single newline.
    assert_eq!(p.l.read_string(".dvc/config"), "\n");
}

#[test]
fn relative_paths_are_stored_relative_to_the_config_file() {
    let Some(p) = Pair::new() else { return };
    p.same(&["remote", "add", "rel", "../relstore"]);
    assert!(p
        .l
        .read_string(".dvc/config")
        .contains("url = ../../relstore\n"));
    p.same_in("sub", &["remote", "add", "fromsub", "store"]);
    p.same_in("sub", &["remote", "add", "--local", "loc", "../x"]);
    p.same(&["remote", "modify", "rel", "url", "./a/../b"]);
    p.same(&["remote", "list"]);
    p.same_in("sub", &["remote", "list"]);
    p.same(&["cache", "dir"]);
    p.same(&["cache", "dir", "../cachedir"]);
    assert!(p
        .l
        .read_string(".dvc/config")
        .contains("dir = ../../cachedir\n"));
    p.same(&["cache", "dir"]);
    p.same_in("sub", &["cache", "dir", "--local", "c"]);
    p.same(&["cache", "dir"]);
    p.same(&["cache", "dir", "--local"]);
    p.same(&["cache", "dir", "--unset", "--local"]);
    p.same(&["cache", "dir", "--unset", "--local"]);
    p.same(&["config", "cache.dir"]);
    p.same(&["cache", "dir", "/abs/cache"]);
    p.same(&["config", "cache.dir", "x"]);
    p.same(&["config", "-l"]);
    p.same(&["cache", "dir", "--unset"]);
    p.same(&["cache", "dir"]);
}

#[test]
fn remote_errors_match_dvc() {
    let Some(p) = Pair::new() else { return };
    p.same(&["remote", "add", "myremote", "http://h/x"]);
    let r = p.same(&["remote", "add", "myremote", "http://h/y"]);
    assert_eq!(r.code, 251);
    assert_eq!(
        r.stderr.trim_end(),
        "ERROR: configuration error - config file error: remote 'myremote' already exists. Use `-f|--force` to overwrite it."
    );
    let r = p.same(&["remote", "modify", "nosuch", "url", "x"]);
    assert_eq!(r.code, 251);
    let r = p.same(&["remote", "modify", "myremote", "badopt", "1"]);
    assert_eq!(r.code, 251);
    assert!(r
        .stderr
        .contains("extra keys not allowed @ data['remote']['myremote']['badopt']"));
    p.same(&["remote", "modify", "myremote", "auth", "bogus"]);
    p.same(&["remote", "modify", "myremote", "connect_timeout", "-3"]);
    p.same(&["remote", "modify", "myremote", "ask_password", "maybe"]);
    p.same(&["remote", "add", "s3r", "s3://b/p"]);
    p.same(&[
        "remote",
        "modify",
        "s3r",
        "endpointurl",
        "http://minio:9000",
    ]);
    p.same(&["remote", "modify", "s3r", "auth", "basic"]);
    p.same(&["remote", "add", "loc", "/some/folder"]);
    p.same(&["remote", "modify", "loc", "type", "hardlink,symlink"]);
    p.same(&["remote", "modify", "loc", "type", "hardlink,bogus"]);
    p.same(&["remote", "modify", "loc", "password", "x"]);
    p.same(&["remote", "add", "ftp", "ftp://h/x"]);
    p.same(&["remote", "remove", "nosuch"]);
    p.same(&["remote", "rename", "nosuch", "x"]);
    p.same(&["remote", "rename", "myremote", "s3r"]);
    p.same(&["remote", "default", "nosuch"]);
    p.same(&["remote", "modify", "--local", "myremote", "password", "p"]);
    // DVC crashes listing a level whose remote has no url; Lode lists the name alone.
    let r = p.l_run(".", &["remote", "list", "--local"]).ok();
    assert_eq!(r.stdout, "myremote\n");
}

#[test]
fn config_get_set_unset_match_dvc() {
    let Some(p) = Pair::new() else { return };
    p.same(&["config", "core.autostage", "true"]);
    p.same(&["config", "core.autostage"]);
    p.same(&["config", "core.nosuch"]);
    p.same(&["config", "--project", "core.nosuch"]);
    p.same(&["config", "--project", "nosection.opt"]);
    p.same(&["config", "--local", "core.autostage"]);
    p.same(&["config", "core.autostage", "maybe"]);
    p.same(&["config", "cache.type", "hardlink,symlink"]);
    assert!(p
        .l
        .read_string(".dvc/config")
        .contains("type = \"hardlink,symlink\"\n"));
    p.same(&["config", "cache.type"]);
    p.same(&["config", "cache.type", "reflink,bogus"]);
    p.same(&["config", "cache.shared", "group"]);
    p.same(&["config", "cache.shared", "everyone"]);
    p.same(&["config", "core.checksum_jobs", "0"]);
    p.same(&["config", "foo.bar", "1"]);
    p.same(&["config", "remote.newr.url", "../x"]);
    p.same(&["config", "remote.newr.jobs", "4"]);
    p.same(&["config", "remote.nor.jobs", "4"]);
    p.same(&["config", "--unset", "core.autostage"]);
    p.same(&["config", "--unset", "core.autostage"]);
    p.same(&["config", "--unset", "remote.newr.jobs"]);
    p.same(&["config", "--local", "core.remote", "newr"]);
    p.same(&["config", "-l"]);
    p.same(&["config", "-l", "--show-origin"]);
    p.same(&["config", "-l", "core.remote"]);
    p.same(&["config", "--show-origin", "core.remote", "x"]);
    p.same(&["config"]);
    p.same(&["config", "--global", "core.check_update", "false"]);
    p.same(&["config", "--global", "-l", "--show-origin"]);
    p.same(&["config", "core.check_update"]);
    p.same(&["remote", "add", "--global", "g", "/g/store"]);
    p.same(&["remote", "list"]);
    // -q silences everything but errors and the exit code.
    p.same(&["remote", "list", "-q"]);
    p.same(&["config", "-l", "-q"]);
    p.same(&["remote", "default", "-q"]);
    p.same(&["remote", "add", "-q", "-d", "quiet", "/q"]);
    p.same(&["cache", "dir", "-q"]);
    p.same(&["config", "core.remote", "-q"]);
    // A malformed name is an argument error in both (exit 254); the texts differ.
    let d = p.d_run(".", &["config", "nodots"]);
    let l = p.l_run(".", &["config", "nodots"]);
    assert_eq!((l.code, d.code), (254, 254));
    assert!(l.stderr.contains("name argument should look like"));
}

#[test]
fn rewrites_hand_written_files_as_dvc_does() {
    let Some(p) = Pair::new() else { return };
    let text = "# my settings\n[Core]\nRemote = Main   # inline\n\n[remote \"Main\"]\nurl = http://h/x\nUser = bob\n[cache]\ntype = reflink, copy\n[state]\n[ remote \"b\" ]\n  url = \"http://h/a,b\"\n  ssl_verify = 'x#y'\n";
    p.write_both(".dvc/config", text);
    p.same(&["config", "-l"]);
    p.same(&["remote", "list"]);
    p.same(&["remote", "modify", "main", "read_timeout", "5"]);
    assert_eq!(
        p.l.read_string(".dvc/config"),
        "[core]\n    remote = Main\n[cache]\n    type = reflink, copy\n['remote \"main\"']\n    url = http://h/x\n    user = bob\n    read_timeout = 5\n['remote \"b\"']\n    url = \"http://h/a,b\"\n    ssl_verify = \"x#y\"\n"
    );
    p.same(&["config", "cache.type"]);
}

#[test]
fn dvc_reads_what_lode_writes() {
    let Some(p) = Pair::new() else { return };
    for args in [
        &["remote", "add", "-d", "s", "http://h/x"][..],
        &["remote", "modify", "s", "password", "a#b,c"],
        &["remote", "modify", "s", "custom_auth_header", " X-Key"],
        &["config", "cache.type", "hardlink,copy"],
        &["cache", "dir", "../c d"],
    ] {
        p.l_run(".", args).ok();
    }
    let l = p.l_run(".", &["config", "-l"]).ok();
    let d = Pair::cmd(&p.dvc, p.l.path(), &p.l_home, &["config", "-l"]).ok();
    assert_eq!(l.stdout, d.stdout);
    let d = Pair::cmd(&p.dvc, p.l.path(), &p.l_home, &["remote", "list"]).ok();
    assert_eq!(d.stdout, "s       http://h/x      (default)\n");
    Pair::cmd(&p.dvc, p.l.path(), &p.l_home, &["status"]).ok();
}

#[test]
fn malformed_config_is_a_clear_error() {
    let Some(p) = Pair::new() else { return };
    p.write_both(".dvc/config", "[core]\nremote = x\ngarbage line\n");
    let d = p.d_run(".", &["config", "-l"]);
    let l = p.l_run(".", &["config", "-l"]);
    assert_eq!((l.code, d.code), (251, 251));
    assert_eq!(
        l.stderr.trim_end(),
        format!(
            "ERROR: configuration error - config file error: {}: Invalid line ('garbage line') \
             (matched as neither section nor keyword) at line 3.",
            p.l.join(".dvc/config").display()
        )
    );
    let l = p.l_run(".", &["remote", "add", "x", "/y"]);
    assert_eq!(l.code, 251);
    assert_eq!(
        p.l.read_string(".dvc/config"),
        "[core]\nremote = x\ngarbage line\n"
    );
    // Commands that open the repository validate the merged config, as DVC's do.
    p.write_both(".dvc/config", "[core]\nfoo = 1\n");
    let l = p.l_run(".", &["gc", "-w", "-f"]);
    let d = p.d_run(".", &["gc", "-w", "-f"]);
    assert_eq!((l.code, d.code), (251, 251));
    assert_eq!(l.stderr.trim_end(), d.stderr.trim_end());
}

#[test]
fn outside_a_repository() {
    let Some(dvc) = dvc::require() else { return };
    let s = Scratch::new();
    let home = Scratch::new();
    for program in [dvc.as_path(), lode_e2e::bins::lode().as_path()] {
        let r = Pair::cmd(program, s.path(), &home, &["remote", "add", "x", "/y"]);
        assert_eq!(r.code, 251, "{program:?}");
        assert_eq!(
            r.stderr.trim_end(),
            "ERROR: configuration error - config file error: Not inside a DVC repo"
        );
        let r = Pair::cmd(
            program,
            s.path(),
            &home,
            &["config", "--local", "core.remote"],
        );
        assert_eq!(r.code, 251);
    }
    let r = Pair::cmd(
        &lode_e2e::bins::lode(),
        s.path(),
        &home,
        &["remote", "add", "--global", "g", "/y"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        home.read_string("global/config"),
        "['remote \"g\"']\n    url = /y\n"
    );
    let r = Pair::cmd(&dvc, s.path(), &home, &["remote", "list", "--global"]).ok();
    assert_eq!(r.stdout, "g       /y\n");
}
