//! A data registry as another team keeps it: a repository whose data is pushed to its default
//! remote (a folder or a `lode-server` project), published as a bare Git repository on disk,
//! with two tagged revisions. `list`, `get` and `import` read from it by the bare repository's
//! path, and [`Env`] runs `lode` and `dvc` with private cache and config folders.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::remote_repo::{RemoteRepo, Tool};
use crate::repo::{Run, Scratch};

/// The files of the first revision (`v1`).
pub const V1: &[(&str, &[u8])] = &[
    ("data/a.txt", b"alpha\n"),
    ("data/sub/b.txt", b"bravo bravo\n"),
    ("data/sub/c.bin", b"\x00\x01\x02charlie"),
    ("model.csv", b"x,y\n1,2\n"),
];

/// What the second revision (`v2`) changes: one file of `data/` edited, one added.
pub const V2: &[(&str, &[u8])] = &[
    ("data/a.txt", b"alpha, second edition\n"),
    ("data/new.txt", b"new in v2\n"),
];

/// Where `lode` and `dvc` keep per-user state in a test: the clone cache (`XDG_CACHE_HOME`),
/// DVC's global config (`DVC_GLOBAL_CONFIG_DIR`, read by both tools) and DVC's site cache.
pub struct Env {
    home: Scratch,
    pub dvc: Option<PathBuf>,
    /// `LODE_TOKEN` for the commands run (none when `None`).
    pub token: Option<String>,
}

impl Env {
    pub fn new(dvc: Option<PathBuf>) -> Env {
        let home = Scratch::new();
        for d in ["cache", "config", "site"] {
            std::fs::create_dir_all(home.join(d)).expect("mkdir");
        }
        Env {
            home,
            dvc,
            token: None,
        }
    }

    /// The user cache folder lode clones into.
    pub fn cache_home(&self) -> PathBuf {
        self.home.join("cache")
    }

    /// Defines a remote in the global config both tools read: how a reader of the registry
    /// gives the token that the registry's committed config does not hold (a whole remote,
    /// so that the config of a repository the reader works in stays valid).
    pub fn global_remote(&self, name: &str, options: &[(&str, &str)]) {
        let mut text = format!("['remote \"{name}\"']\n");
        for (k, v) in options {
            text.push_str(&format!("    {k} = {v}\n"));
        }
        std::fs::write(self.home.join("config/config"), text).expect("write global config");
    }

    fn command(&self, program: &Path, dir: &Path, args: &[&str]) -> Run {
        let mut c = Command::new(program);
        match &self.token {
            Some(t) => c.env("LODE_TOKEN", t),
            None => c.env_remove("LODE_TOKEN"),
        };
        c.args(args)
            .current_dir(dir)
            .env("XDG_CACHE_HOME", self.home.join("cache"))
            .env("DVC_GLOBAL_CONFIG_DIR", self.home.join("config"))
            .env("DVC_SITE_CACHE_DIR", self.home.join("site"))
            .env("DVC_NO_ANALYTICS", "1")
            .env("DVC_NO_UPDATER", "1")
            .output()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()))
            .into()
    }

    /// Runs `lode args...` in `dir`.
    pub fn lode(&self, dir: &Path, args: &[&str]) -> Run {
        self.command(&crate::bins::lode(), dir, args)
    }

    /// Runs `dvc args...` in `dir`; panics when the environment has no `dvc`.
    pub fn dvc(&self, dir: &Path, args: &[&str]) -> Run {
        let dvc = self.dvc.as_ref().expect("dvc");
        self.command(dvc, dir, args)
    }
}

/// The registry: its working repository and the bare repository others clone.
pub struct Registry {
    pub work: Scratch,
    bare: Scratch,
}

impl Registry {
    /// A registry whose default remote `storage` is `remote_url`; with a `token`, set up as
    /// [`RemoteRepo`] does (the token in `config.local`, never committed).
    /// The `v1` and `v2` revisions are pushed with `lode`, using `token` when given.
    pub fn new(remote_url: &str, token: Option<&str>) -> Registry {
        let work = match token {
            Some(token) => RemoteRepo::new(Tool::Lode, remote_url, token).repo,
            None => {
                let work = Scratch::git();
                work.lode(&["init", "-q"]).ok();
                work.lode(&["remote", "add", "-d", "storage", remote_url])
                    .ok();
                work
            }
        };
        work.write("README.md", "The team's datasets.\n");
        work.write("src/prepare.py", "print('prepare')\n");
        std::fs::set_permissions(
            work.join("src/prepare.py"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let bare = Scratch::new();
        let r = Registry { work, bare };
        r.revision(V1, "v1");
        r.revision(V2, "v2");
        r
    }

    /// Writes `files`, tracks `data/` and `model.csv`, commits, tags, pushes the data and
    /// publishes the commit to the bare repository.
    pub fn revision(&self, files: &[(&str, &[u8])], tag: &str) {
        for (name, bytes) in files {
            self.work.write(name, bytes);
        }
        self.work.lode(&["add", "-q", "data", "model.csv"]).ok();
        self.work.run("git", &["add", "-A"]).ok();
        self.work.run("git", &["commit", "-qm", tag]).ok();
        self.work.run("git", &["tag", tag]).ok();
        self.work.lode(&["push", "-q"]).ok();
        self.publish();
    }

    /// Makes the bare repository match the working one (created on first use).
    pub fn publish(&self) {
        let bare = self.bare.join("registry.git");
        if !bare.exists() {
            let out = Command::new("git")
                .args(["clone", "-q", "--bare"])
                .arg(self.work.path())
                .arg(&bare)
                .output()
                .expect("git clone --bare");
            assert!(out.status.success(), "git clone --bare failed");
            return;
        }
        let b = bare.to_str().expect("utf-8");
        self.work
            .run("git", &["push", "-q", "--tags", b, "main"])
            .ok();
    }

    /// The bare repository's path: the URL `list`, `get` and `import` take.
    pub fn url(&self) -> String {
        self.bare
            .join("registry.git")
            .to_str()
            .expect("utf-8 path")
            .to_string()
    }

    /// The commit a revision of the registry names.
    pub fn commit(&self, rev: &str) -> String {
        self.work
            .run("git", &["rev-parse", &format!("{rev}^{{commit}}")])
            .ok()
            .stdout
            .trim()
            .to_string()
    }
}
