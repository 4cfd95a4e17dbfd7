//! `lode init`: creates `.dvc/` and `.dvcignore` exactly as `dvc init` does.

use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::commands::Ui;
use crate::git::Git;
use crate::repo::config::{ConfigFile, Section, Value};
use crate::repo::dvcignore::DVCIGNORE_FILE;
use crate::repo::gitignore;
use crate::repo::RepoError;
use crate::{ExitCode, LodeError};

const DVCIGNORE_TEMPLATE: &str = "# Add patterns of files dvc should ignore, which could improve\n\
# the performance. Learn more at\n\
# https://dvc.org/doc/user-guide/dvcignore\n";

const WHATS_NEXT: &str = "What's next?\n\
------------\n\
- Check out the documentation: <https://dvc.org/doc>\n\
- Get help and share ideas: <https://dvc.org/chat>\n\
- Star us on GitHub: <https://github.com/treeverse/dvc>";

/// DVC reports its `InitError`s with this prefix and exit code 1.
fn init_error(msg: impl std::fmt::Display) -> LodeError {
    LodeError::Failed(format!("failed to initiate DVC - {msg}"))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LodeError + '_ {
    move |source| {
        RepoError::Io {
            path: path.to_path_buf(),
            source,
        }
        .into()
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let ca = std::fs::canonicalize(a).unwrap_or_else(|_| a.to_path_buf());
    let cb = std::fs::canonicalize(b).unwrap_or_else(|_| b.to_path_buf());
    ca == cb
}

/// `path` relative to `base` when below it, as DVC's `relpath` prints it in messages.
fn rel_display(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(r) if !r.as_os_str().is_empty() => r.display().to_string(),
        _ => path.display().to_string(),
    }
}

pub fn run(args: InitArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    if args.no_scm && args.subdir {
        return Err(LodeError::Other(
            "Cannot initialize repo with `--no-scm` and `--subdir`".into(),
        ));
    }
    let cwd = &ui.cwd;
    let root: PathBuf = match &args.directory {
        Some(d) => std::path::absolute(cwd.join(d)).map_err(io_err(d))?,
        None => cwd.clone(),
    };
    let dvc_dir = root.join(".dvc");

    let git = if args.no_scm {
        None
    } else {
        let found = Git::discover(&root)?;
        match found {
            Some(g) if args.subdir || same_dir(&g.root, &root) => Some(g),
            _ => {
                return Err(init_error(format!(
                    "{} is not tracked by any supported SCM tool (e.g. Git). Use `--no-scm` if \
                     you don't want to use any SCM or `--subdir` if initializing inside a \
                     subdirectory of a parent SCM repository.",
                    root.display()
                )))
            }
        }
    };
    if let Some(g) = &git {
        if g.check_ignore(&dvc_dir)? {
            return Err(init_error(format!(
                "{} is ignored by your SCM tool. \nMake sure that it's tracked, for example, by \
                 adding '!.dvc' to .gitignore.",
                dvc_dir.display()
            )));
        }
    }

    if dvc_dir.is_dir() {
        if !args.force {
            return Err(init_error(format!(
                "'{}' exists. Use `-f` to force.",
                rel_display(&dvc_dir, cwd)
            )));
        }
        std::fs::remove_dir_all(&dvc_dir).map_err(io_err(&dvc_dir))?;
    }
    std::fs::create_dir_all(&dvc_dir).map_err(io_err(&dvc_dir))?;

    let config_path = dvc_dir.join("config");
    let mut config = ConfigFile::empty(config_path.clone());
    if args.no_scm {
        config.set(&Section::plain("core"), "no_scm", Value::Str("True".into()));
        config.save()?;
    } else {
        std::fs::write(&config_path, b"").map_err(io_err(&config_path))?;
    }

    let dvcignore = root.join(DVCIGNORE_FILE);
    if !dvcignore.exists() {
        std::fs::write(&dvcignore, DVCIGNORE_TEMPLATE).map_err(io_err(&dvcignore))?;
    }
    let tmp = dvc_dir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;

    if let Some(g) = &git {
        for name in ["config.local", "tmp", "cache"] {
            gitignore::add_entry_with(g, &dvc_dir.join(name))?;
        }
        let mut staged: Vec<&Path> = vec![&config_path, &dvcignore];
        let dvc_gitignore = dvc_dir.join(".gitignore");
        if dvc_gitignore.exists() {
            staged.push(&dvc_gitignore);
        }
        g.add(&staged)?;
    }

    ui.out.line("Initialized DVC repository.\n")?;
    if git.is_some() {
        ui.out.line("You can now commit the changes to git.\n")?;
    }
    ui.out.line(WHATS_NEXT)?;
    Ok(ExitCode::Ok)
}
