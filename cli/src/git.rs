//! The Git repository around a DVC repository: detection, `check-ignore`, staging, and reading
//! `.dvc` files from history. Everything goes through the `git` program.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("failed to run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("git {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("unexpected output from git {args}: {detail}")]
    Output { args: String, detail: String },
}

/// A Git work tree, found from a folder inside it.
#[derive(Debug, Clone)]
pub struct Git {
    /// The top of the work tree.
    pub root: PathBuf,
}

/// A `.dvc` file read from a commit.
#[derive(Debug, Clone)]
pub struct RevFile {
    /// Path relative to the Git work tree's top, `/`-separated.
    pub path: String,
    pub bytes: Vec<u8>,
}

fn git_in(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir);
    // Paths with non-ASCII bytes come back verbatim rather than C-quoted.
    c.args(["-c", "core.quotepath=off"]);
    c
}

fn run(dir: &Path, args: &[&str]) -> Result<std::process::Output, GitError> {
    git_in(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(GitError::Spawn)
}

fn run_ok(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = run(dir, args)?;
    if !out.status.success() {
        return Err(GitError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// One entry of a commit's tree, as `git ls-tree -r -t -l` lists it.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// Path from the top of the tree, `/`-separated.
    pub path: String,
    pub is_tree: bool,
    /// `100755` blobs.
    pub executable: bool,
    pub oid: String,
    /// A blob's size; `None` for trees (see [`Git::object_sizes`]).
    pub size: Option<u64>,
}

impl Git {
    /// The work tree containing `dir`, or `None` when `dir` is not inside one (or `git` is
    /// missing, which amounts to the same for a DVC repository).
    pub fn discover(dir: &Path) -> Result<Option<Git>, GitError> {
        let out = match git_in(dir)
            .args(["rev-parse", "--show-toplevel"])
            .stdin(Stdio::null())
            .output()
        {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(GitError::Spawn(e)),
        };
        if !out.status.success() {
            return Ok(None);
        }
        let top = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        if top.is_empty() {
            // Inside `.git` itself there is no work tree.
            return Ok(None);
        }
        Ok(Some(Git {
            root: PathBuf::from(top),
        }))
    }

    /// Whether Git ignores `path` (absolute, or relative to the work tree's top) by its ignore
    /// rules, whether or not the path is tracked.
    pub fn check_ignore(&self, path: &Path) -> Result<bool, GitError> {
        let p = path.to_string_lossy();
        let out = run(&self.root, &["check-ignore", "-q", "--no-index", "--", &p])?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(GitError::Failed {
                args: format!("check-ignore {p}"),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }),
        }
    }

    /// `git add` of the given paths (used by `init` and by auto-staging).
    pub fn add(&self, paths: &[&Path]) -> Result<(), GitError> {
        if paths.is_empty() {
            return Ok(());
        }
        let mut c = git_in(&self.root);
        c.args(["add", "--"]);
        for p in paths {
            c.arg(p);
        }
        let out = c.stdin(Stdio::null()).output().map_err(GitError::Spawn)?;
        if !out.status.success() {
            return Err(GitError::Failed {
                args: "add".into(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// The commit `HEAD` points at, or `None` in a repository without commits.
    pub fn head(&self) -> Result<Option<String>, GitError> {
        let out = run(
            &self.root,
            &["rev-parse", "--verify", "-q", "HEAD^{commit}"],
        )?;
        if out.status.success() {
            Ok(lines(&out.stdout).into_iter().next())
        } else {
            Ok(None)
        }
    }

    /// The commits at the tips of all local branches, sorted by branch name.
    pub fn branch_commits(&self) -> Result<Vec<String>, GitError> {
        self.ref_commits("refs/heads/")
    }

    /// The commits all tags point at (annotated tags peeled), sorted by tag name.
    pub fn tag_commits(&self) -> Result<Vec<String>, GitError> {
        self.ref_commits("refs/tags/")
    }

    fn ref_commits(&self, prefix: &str) -> Result<Vec<String>, GitError> {
        let out = run_ok(
            &self.root,
            &[
                "for-each-ref",
                "--sort=refname",
                "--format=%(objecttype) %(objectname) %(*objecttype) %(*objectname)",
                prefix,
            ],
        )?;
        let mut commits = Vec::new();
        for line in lines(&out) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["commit", oid, ..] => commits.push(oid.to_string()),
                ["tag", _, "commit", oid] => commits.push(oid.to_string()),
                // Tags of trees or blobs hold no `.dvc` files of a commit.
                _ => {}
            }
        }
        Ok(commits)
    }

    /// `rev` and the commits before it along first parents, `num` in all (`rev`, `rev~1`, ...).
    pub fn first_parent_commits(&self, rev: &str, num: usize) -> Result<Vec<String>, GitError> {
        if num == 0 {
            return Ok(Vec::new());
        }
        let verify = run(
            &self.root,
            &["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")],
        )?;
        if !verify.status.success() {
            return Err(GitError::Failed {
                args: format!("rev-parse {rev}"),
                stderr: format!("unknown Git revision '{rev}'"),
            });
        }
        let max = format!("--max-count={num}");
        Ok(lines(&run_ok(
            &self.root,
            &["rev-list", "--first-parent", &max, rev, "--"],
        )?))
    }

    /// Every commit reachable from `HEAD`, local branches, remote-tracking branches and tags,
    /// which is what DVC's `--all-commits` walks.
    pub fn all_commits(&self) -> Result<Vec<String>, GitError> {
        if self.head()?.is_none() && self.branch_commits()?.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["rev-list", "--branches", "--tags", "--remotes"];
        if self.head()?.is_some() {
            args.push("HEAD");
        }
        Ok(lines(&run_ok(&self.root, &args)?))
    }

    /// A repository without a work tree (a bare clone) at `dir`.
    pub fn bare(dir: &Path) -> Git {
        Git {
            root: dir.to_path_buf(),
        }
    }

    /// The full id of the commit `rev` names, `None` when it names none here.
    pub fn commit_of(&self, rev: &str) -> Result<Option<String>, GitError> {
        let out = run(
            &self.root,
            &[
                "rev-parse",
                "--verify",
                "-q",
                "--end-of-options",
                &format!("{rev}^{{commit}}"),
            ],
        )?;
        Ok(if out.status.success() {
            lines(&out.stdout).into_iter().next()
        } else {
            None
        })
    }

    /// Every blob and tree of commit `rev`, recursively.
    pub fn tree(&self, rev: &str) -> Result<Vec<TreeEntry>, GitError> {
        let listing = run_ok(
            &self.root,
            &["ls-tree", "-r", "-t", "-l", "-z", "--full-tree", rev],
        )?;
        let mut entries = Vec::new();
        for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            // "<mode> <type> <oid> <size>\t<path>", the size padded with spaces.
            let bad = || GitError::Output {
                args: format!("ls-tree {rev}"),
                detail: entry.to_string(),
            };
            let (meta, path) = entry.split_once('\t').ok_or_else(bad)?;
            let meta: Vec<&str> = meta.split_whitespace().collect();
            let [mode, kind, oid, size] = meta.as_slice() else {
                return Err(bad());
            };
            if *kind != "blob" && *kind != "tree" {
                // Submodules (commits) hold nothing of this repository.
                continue;
            }
            entries.push(TreeEntry {
                path: path.to_string(),
                is_tree: *kind == "tree",
                executable: *mode == "100755",
                oid: oid.to_string(),
                size: size.parse().ok(),
            });
        }
        Ok(entries)
    }

    /// The sizes of objects (tree objects included), in the order given.
    pub fn object_sizes(&self, oids: &[&str]) -> Result<Vec<u64>, GitError> {
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        let mut child = git_in(&self.root)
            .args(["cat-file", "--batch-check=%(objectsize)"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(GitError::Spawn)?;
        let input: String = oids.iter().map(|o| format!("{o}\n")).collect();
        let mut stdin = child.stdin.take().ok_or_else(|| GitError::Output {
            args: "cat-file --batch-check".into(),
            detail: "no stdin".into(),
        })?;
        let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().map_err(GitError::Spawn)?;
        let _ = feeder.join();
        let sizes: Vec<u64> = lines(&out.stdout)
            .iter()
            .filter_map(|l| l.parse().ok())
            .collect();
        if sizes.len() != oids.len() {
            return Err(GitError::Output {
                args: "cat-file --batch-check".into(),
                detail: format!("{} sizes for {} objects", sizes.len(), oids.len()),
            });
        }
        Ok(sizes)
    }

    /// The content of the file at `path` (relative to the work tree's top, `/`-separated) in
    /// commit `rev`, `None` when the commit has no such file.
    pub fn blob_at(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let spec = format!("{rev}:{path}");
        let out = run(&self.root, &["cat-file", "blob", &spec])?;
        Ok(out.status.success().then_some(out.stdout))
    }

    /// Blobs of a commit's tree under `subdir` (relative to the work tree's top, empty for
    /// all) whose file name `want` accepts, with their contents. One `ls-tree` plus one
    /// `cat-file --batch` process.
    pub fn files_at(
        &self,
        rev: &str,
        subdir: &str,
        want: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<RevFile>, GitError> {
        let listing = run_ok(&self.root, &["ls-tree", "-r", "-z", "--full-tree", rev])?;
        let mut wanted: Vec<(String, String)> = Vec::new();
        for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            // "<mode> <type> <oid>\t<path>"
            let Some((meta, path)) = entry.split_once('\t') else {
                return Err(GitError::Output {
                    args: format!("ls-tree {rev}"),
                    detail: entry.into_owned(),
                });
            };
            let meta: Vec<&str> = meta.split(' ').collect();
            if meta.len() != 3 || meta[1] != "blob" {
                continue;
            }
            let name = path.rsplit('/').next().unwrap_or(path);
            if !want(name) {
                continue;
            }
            let in_subdir = subdir.is_empty()
                || (path.starts_with(subdir) && path[subdir.len()..].starts_with('/'));
            if !in_subdir {
                continue;
            }
            wanted.push((meta[2].to_string(), path.to_string()));
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut child = git_in(&self.root)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(GitError::Spawn)?;
        let mut stdin = child.stdin.take().ok_or_else(|| GitError::Output {
            args: "cat-file --batch".into(),
            detail: "no stdin".into(),
        })?;
        let oids: Vec<String> = wanted.iter().map(|(o, _)| o.clone()).collect();
        // Feed the ids from another thread so a full stdout pipe cannot deadlock us.
        let feeder = std::thread::spawn(move || -> std::io::Result<()> {
            for oid in oids {
                stdin.write_all(oid.as_bytes())?;
                stdin.write_all(b"\n")?;
            }
            Ok(())
        });
        let stdout = child.stdout.take().ok_or_else(|| GitError::Output {
            args: "cat-file --batch".into(),
            detail: "no stdout".into(),
        })?;
        let mut reader = BufReader::new(stdout);
        let mut files = Vec::with_capacity(wanted.len());
        let bad = |detail: String| GitError::Output {
            args: "cat-file --batch".into(),
            detail,
        };
        for (oid, path) in wanted {
            let mut header = String::new();
            reader.read_line(&mut header).map_err(GitError::Spawn)?;
            let parts: Vec<&str> = header.split_whitespace().collect();
            let size: usize = match parts.as_slice() {
                [o, "blob", size] if *o == oid => size
                    .parse()
                    .map_err(|_| bad(format!("bad header {header:?}")))?,
                _ => return Err(bad(format!("bad header {header:?} for {oid}"))),
            };
            let mut bytes = vec![0u8; size];
            reader.read_exact(&mut bytes).map_err(GitError::Spawn)?;
            let mut nl = [0u8; 1];
            reader.read_exact(&mut nl).map_err(GitError::Spawn)?;
            files.push(RevFile { path, bytes });
        }
        let _ = feeder.join();
        let _ = child.wait();
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let st = Command::new("git")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("git");
        assert!(st.success(), "git {args:?}");
    }

    #[test]
    fn reads_dvc_files_from_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        git(root, &["init", "-q", "-b", "main"]);
        git(root, &["config", "user.email", "t@example.com"]);
        git(root, &["config", "user.name", "T"]);
        let g = Git::discover(root).expect("discover").expect("in git");
        assert!(g.head().expect("head").is_none());
        assert!(g.all_commits().expect("commits").is_empty());
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("a.dvc"), "one\n").expect("write");
        std::fs::write(root.join("sub/b c.dvc"), "two\n").expect("write");
        std::fs::write(root.join("other.txt"), "x").expect("write");
        git(root, &["add", "."]);
        git(root, &["commit", "-q", "-m", "first"]);
        git(root, &["tag", "-a", "v1", "-m", "v1"]);
        std::fs::write(root.join("a.dvc"), "three\n").expect("write");
        git(root, &["commit", "-q", "-am", "second"]);
        let commits = g.all_commits().expect("commits");
        assert_eq!(commits.len(), 2);
        let tags = g.tag_commits().expect("tags");
        assert_eq!(tags.len(), 1);
        let dvc_files = |name: &str| name.ends_with(".dvc") && name != ".dvc";
        let with_locks = |name: &str| dvc_files(name) || name == "dvc.lock";
        let mut files = g.files_at(&tags[0], "", &dvc_files).expect("files");
        files.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, "a.dvc");
        assert_eq!(files[0].bytes, b"one\n");
        assert_eq!(files[1].path, "sub/b c.dvc");
        let head = g.files_at("HEAD", "sub", &dvc_files).expect("files");
        assert_eq!(head.len(), 1);
        std::fs::write(root.join("sub/dvc.lock"), "schema: '2.0'\n").expect("write");
        git(root, &["add", "."]);
        git(root, &["commit", "-q", "-m", "lock"]);
        assert_eq!(g.files_at("HEAD", "", &dvc_files).expect("files").len(), 2);
        let with_locks = g.files_at("HEAD", "sub", &with_locks).expect("files");
        assert_eq!(with_locks.len(), 2);
        assert!(with_locks.iter().any(|f| f.path == "sub/dvc.lock"));
        assert_eq!(g.branch_commits().expect("branches").len(), 1);
        std::fs::write(root.join(".gitignore"), "*.tmp\n").expect("write");
        assert!(g.check_ignore(&root.join("x.tmp")).expect("check"));
        assert!(!g.check_ignore(&root.join("x.txt")).expect("check"));
        assert!(Git::discover(&root.join(".git"))
            .expect("discover")
            .is_none());
    }
}
