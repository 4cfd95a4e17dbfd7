//! Scratch Git repositories and running commands in them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// A temporary folder, optionally a Git repository, removed when dropped.
pub struct Scratch {
    dir: TempDir,
}

/// What a command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with the whole output unless the command exited 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Scratch {
    /// An empty temporary folder.
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("lode-e2e-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// A temporary Git repository with a committer identity set.
    pub fn git() -> Scratch {
        let s = Scratch::new();
        s.run("git", &["init", "-q", "-b", "main"]).ok();
        s.run("git", &["config", "user.email", "test@example.com"])
            .ok();
        s.run("git", &["config", "user.name", "Test"]).ok();
        s
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file, creating parent folders.
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, bytes).expect("write file");
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn read_string(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).expect("utf-8")
    }

    /// Runs `program args...` in this folder.
    pub fn run(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Run {
        self.run_in(".", program, args)
    }

    /// Runs `program args...` in a subfolder.
    pub fn run_in(&self, rel: &str, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Run {
        let out = Command::new(program.as_ref())
            .args(args)
            .current_dir(self.join(rel))
            .env("DVC_NO_ANALYTICS", "1")
            .env("DVC_NO_UPDATER", "1")
            .output()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", program.as_ref()));
        out.into()
    }

    /// A new scratch folder holding a `git clone` of this repository in `w/`.
    pub fn clone_to_w(&self) -> Scratch {
        let c = Scratch::new();
        let out = Command::new("git")
            .args(["clone", "-q"])
            .arg(self.path())
            .arg(c.path().join("w"))
            .output()
            .expect("git clone");
        assert!(out.status.success(), "git clone failed");
        c
    }

    /// Runs the real `lode` binary here.
    pub fn lode(&self, args: &[&str]) -> Run {
        self.run(crate::bins::lode(), args)
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// Every file under `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// Fails when a `*.tmp` file (an object not yet committed) is left anywhere under dir.
pub fn assert_no_temp_files(dir: &Path) {
    let stray: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .map(|e| e.path().display().to_string())
        .collect();
    assert!(stray.is_empty(), "temp files left behind: {stray:?}");
}
