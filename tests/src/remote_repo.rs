//! Repositories that push to and pull from a `lode-server` project the way the README sets them
//! up: `auth = custom` with the token as a bearer credential in `config.local`.

use std::path::Path;

use crate::repo::{Run, Scratch};

/// Which tool a repository is driven with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool<'a> {
    Lode,
    Dvc(&'a Path),
}

/// A Git repository, initialised by `tool`, whose default remote `storage` is `url`.
pub struct RemoteRepo<'a> {
    pub repo: Scratch,
    tool: Tool<'a>,
    /// DVC's site cache (its remote index), kept out of /var/tmp and private to the test.
    _site_cache: Scratch,
}

impl<'a> RemoteRepo<'a> {
    pub fn new(tool: Tool<'a>, url: &str, token: &str) -> RemoteRepo<'a> {
        let r = RemoteRepo {
            repo: Scratch::git(),
            tool,
            _site_cache: Scratch::new(),
        };
        r.run(&["init", "-q"]).ok();
        if let Tool::Dvc(_) = tool {
            let sc = r
                ._site_cache
                .path()
                .to_str()
                .expect("utf-8 path")
                .to_string();
            r.run(&["config", "--local", "core.site_cache_dir", &sc])
                .ok();
        }
        r.run(&["remote", "add", "-d", "storage", url]).ok();
        r.run(&["remote", "modify", "storage", "auth", "custom"])
            .ok();
        r.run(&[
            "remote",
            "modify",
            "storage",
            "custom_auth_header",
            "Authorization",
        ])
        .ok();
        let bearer = format!("Bearer {token}");
        r.run(&[
            "remote", "modify", "--local", "storage", "password", &bearer,
        ])
        .ok();
        r
    }

    /// Runs the tool with `args` in the repository.
    pub fn run(&self, args: &[&str]) -> Run {
        match self.tool {
            Tool::Lode => self.repo.lode(args),
            Tool::Dvc(dvc) => self.repo.run(dvc, args),
        }
    }

    /// Sets a remote option (`remote modify storage KEY VALUE`).
    pub fn remote_option(&self, key: &str, value: &str) {
        self.run(&["remote", "modify", "storage", key, value]).ok();
    }

    /// Writes files, tracks them and commits the `.dvc` files.
    pub fn add_and_commit(&self, files: &[(&str, &[u8])]) {
        for (name, bytes) in files {
            self.repo.write(name, bytes);
            self.run(&["add", "-q", name]).ok();
        }
        self.repo.run("git", &["add", "-A"]).ok();
        self.repo.run("git", &["commit", "-qm", "data"]).ok();
    }

    /// A fresh clone (Git history and `config.local`, no data, no cache), driven by `tool`.
    pub fn clone_with(&self, tool: Tool<'a>) -> RemoteRepo<'a> {
        let c = RemoteRepo {
            repo: Scratch::new(),
            tool,
            _site_cache: Scratch::new(),
        };
        let src = self.repo.path().to_str().expect("utf-8 path");
        c.repo.run("git", &["clone", "-q", src, "."]).ok();
        std::fs::copy(
            self.repo.join(".dvc/config.local"),
            c.repo.join(".dvc/config.local"),
        )
        .expect("copy config.local");
        c
    }
}
