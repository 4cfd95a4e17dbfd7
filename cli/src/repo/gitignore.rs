//! The `.gitignore` entries `add` writes next to each output (docs/dvc-formats.md §6).
//!
//! An output `dir/name` is ignored by the line `/name` (gitignore specials escaped) in
//! `dir/.gitignore`, as DVC writes it: appended, after a newline if the file does not end with
//! one, only if the line is not already there, and not at all when Git already ignores the path.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::git::{Git, GitError};
use crate::repo::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum GitignoreError {
    #[error("'{}' is outside of git repository '{}'", .path.display(), .root.display())]
    Outside { path: PathBuf, root: PathBuf },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Escapes gitignore specials (`\ [ ] ! * # ?`) with a backslash, as pathspec's `escape`.
pub fn escape(entry: &str) -> String {
    let mut out = String::with_capacity(entry.len());
    for c in entry.chars() {
        if "\\[]!*#?".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The unescaped entry (`/name`) and the `.gitignore` that holds it, for an absolute output path.
fn entry_for(git: &Git, output: &Path) -> Result<(String, PathBuf), GitignoreError> {
    let name = output
        .file_name()
        .ok_or_else(|| GitignoreError::Outside {
            path: output.to_path_buf(),
            root: git.root.clone(),
        })?
        .to_string_lossy()
        .into_owned();
    let dir = output.parent().unwrap_or(Path::new("/"));
    let gitignore = dir.join(".gitignore");
    let real_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let real_root = std::fs::canonicalize(&git.root).unwrap_or_else(|_| git.root.clone());
    if !real_dir.starts_with(&real_root) {
        return Err(GitignoreError::Outside {
            path: output.to_path_buf(),
            root: git.root.clone(),
        });
    }
    Ok((format!("/{name}"), gitignore))
}

/// Makes Git ignore `output` (an absolute path inside the work tree). Returns the `.gitignore`
/// that now covers it, or `None` when Git already ignored it (nothing is written then).
pub fn add_entry_with(git: &Git, output: &Path) -> Result<Option<PathBuf>, GitignoreError> {
    match plan_entry_with(git, output)? {
        Some(plan) => plan.apply().map(Some),
        None => Ok(None),
    }
}

/// The line [`add_entry_with`] would add for `output`, and where; `None` when Git already
/// ignores it. Asking Git is the slow part, so callers can do it while other work goes on and
/// [`EntryPlan::apply`] it afterwards.
pub fn plan_entry_with(git: &Git, output: &Path) -> Result<Option<EntryPlan>, GitignoreError> {
    let (entry, gitignore) = entry_for(git, output)?;
    if git.check_ignore(output)? {
        return Ok(None);
    }
    Ok(Some(EntryPlan {
        line: escape(&entry),
        gitignore,
    }))
}

/// A `.gitignore` line to add (see [`plan_entry_with`]).
#[derive(Debug)]
pub struct EntryPlan {
    line: String,
    gitignore: PathBuf,
}

impl EntryPlan {
    /// Appends the line unless the file already has it; returns the `.gitignore`.
    pub fn apply(self) -> Result<PathBuf, GitignoreError> {
        let EntryPlan { line, gitignore } = self;
        let io = |source| GitignoreError::Io {
            path: gitignore.clone(),
            source,
        };
        let existing = match std::fs::read(&gitignore) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let text = String::from_utf8_lossy(&existing);
        if text.lines().any(|l| l.trim_end_matches('\r') == line) {
            return Ok(gitignore);
        }
        let mut new = String::new();
        if !existing.is_empty() && existing.last() != Some(&b'\n') {
            new.push('\n');
        }
        new.push_str(&line);
        new.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&gitignore)
            .map_err(io)?;
        f.write_all(new.as_bytes()).map_err(io)?;
        Ok(gitignore)
    }
}

/// The Git work tree DVC would use for the repository at `repo_root`: none when the repository
/// was set up with `core.no_scm = true`, even inside a Git work tree.
pub fn scm_for(repo_root: &Path) -> Result<Option<Git>, GitignoreError> {
    let dvc_dir = repo_root.join(".dvc");
    if let Ok(config) = Config::load_unvalidated(Some(&dvc_dir)) {
        if config.get_bool("core", "no_scm") == Some(true) {
            return Ok(None);
        }
    }
    Ok(Git::discover(repo_root)?)
}

/// [`add_entry_with`] for the Git work tree around `repo_root`; `None` outside Git or with
/// `core.no_scm`.
pub fn add_entry(repo_root: &Path, output: &Path) -> Result<Option<PathBuf>, GitignoreError> {
    match plan_entry(repo_root, output)? {
        Some(plan) => plan.apply().map(Some),
        None => Ok(None),
    }
}

/// [`plan_entry_with`] for the Git work tree around `repo_root`; `None` outside Git or with
/// `core.no_scm`.
pub fn plan_entry(repo_root: &Path, output: &Path) -> Result<Option<EntryPlan>, GitignoreError> {
    match scm_for(repo_root)? {
        Some(git) => plan_entry_with(&git, output),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git_repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = Command::new("git")
            .args(["init", "-q"])
            .current_dir(dir.path())
            .status()
            .expect("git init");
        assert!(st.success());
        dir
    }

    #[test]
    fn escapes_specials_only() {
        assert_eq!(escape("/we[ir]d #name!.txt"), "/we\\[ir\\]d \\#name\\!.txt");
        assert_eq!(escape("/a b *?\\"), "/a b \\*\\?\\\\");
    }

    #[test]
    fn adds_once_in_the_outputs_folder() {
        let dir = git_repo();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/deep")).expect("mkdir");
        let out = root.join("sub/deep/x y.txt");
        let gi = add_entry(root, &out).expect("add").expect("written");
        assert_eq!(gi, root.join("sub/deep/.gitignore"));
        assert_eq!(std::fs::read_to_string(&gi).expect("read"), "/x y.txt\n");
        // Already ignored now: nothing more is written.
        add_entry(root, &out).expect("add again");
        assert_eq!(std::fs::read_to_string(&gi).expect("read"), "/x y.txt\n");

        std::fs::write(root.join(".gitignore"), "/keep").expect("write");
        add_entry(root, &root.join("data.csv")).expect("add");
        add_entry(root, &root.join("images")).expect("add");
        assert_eq!(
            std::fs::read_to_string(root.join(".gitignore")).expect("read"),
            "/keep\n/data.csv\n/images\n"
        );
    }

    #[test]
    fn nothing_when_git_already_ignores() {
        let dir = git_repo();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "*.csv\n").expect("write");
        assert_eq!(add_entry(root, &root.join("d.csv")).expect("add"), None);
        assert_eq!(
            std::fs::read_to_string(root.join(".gitignore")).expect("read"),
            "*.csv\n"
        );
    }

    #[test]
    fn no_scm_repository_inside_git_does_nothing() {
        let dir = git_repo();
        let root = dir.path();
        std::fs::create_dir_all(root.join(".dvc")).expect("mkdir");
        std::fs::write(root.join(".dvc/config"), "[core]\n    no_scm = True\n").expect("write");
        assert_eq!(add_entry(root, &root.join("d.csv")).expect("add"), None);
        assert!(!root.join(".gitignore").exists());
    }

    #[test]
    fn outside_git_does_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            add_entry(dir.path(), &dir.path().join("x")).expect("add"),
            None
        );
    }
}
