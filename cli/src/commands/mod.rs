//! One module per command, and [`main`], which parses the command line, runs a command and
//! reports how it ended. Commands don't call each other; shared logic lives in `repo`, `hash`,
//! `cache`, `remote` and `git`, and everything they print goes through the [`Printer`] in [`Ui`].

mod add;
mod cache;
mod checkout;
mod commit;
pub(crate) mod config;
mod fetch;
mod gc;
mod get;
mod import;
mod init;
mod list;
mod pull;
mod push;
mod remote;
mod status;
mod status_cloud;
mod update;

use std::path::PathBuf;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::printer::Printer;
use crate::repo::RepoError;
use crate::{ExitCode, LodeError};

/// What every command is given: the folder it was started in, and where it writes.
pub struct Ui {
    pub cwd: PathBuf,
    pub out: Printer,
}

/// What `lode` does: parses the command line, runs the command and reports how it ended.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let is_help = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            let _ = e.print();
            return if is_help {
                ExitCode::Ok
            } else {
                ExitCode::Usage
            };
        }
    };
    let out = Printer::new(cli.verbosity());
    match run(cli, out) {
        Ok(code) => code,
        Err(e) => {
            out.report(&e);
            e.exit_code()
        }
    }
}

/// Runs one command; `Ok(code)` is the exit code of a command that ran to its end.
fn run(cli: Cli, out: Printer) -> Result<ExitCode, LodeError> {
    let ui = &Ui {
        cwd: current_dir()?,
        out,
    };
    match cli.command {
        Command::Init(a) => init::run(a, ui),
        Command::Add(a) => add::run(a, ui),
        Command::Status(a) => status::run(a, ui),
        Command::Commit(a) => commit::run(a, ui),
        Command::Checkout(a) => checkout::run(a, ui),
        Command::Config(a) => config::run(a, ui),
        Command::Remote(a) => remote::run(a, ui),
        Command::Cache(a) => cache::run(a, ui),
        Command::Gc(a) => gc::run(a, ui),
        Command::Push(a) => push::run(a, ui),
        Command::Fetch(a) => fetch::run(a, ui),
        Command::Pull(a) => pull::run(a, ui),
        Command::List(a) => list::run(a, ui),
        Command::Get(a) => get::run(a, ui),
        Command::Import(a) => import::run(a, ui),
        Command::Update(a) => update::run(a, ui),
        Command::Repro(_) => left_to_dvc("repro"),
        Command::Exp(_) => left_to_dvc("exp"),
        Command::Queue(_) => left_to_dvc("queue"),
        Command::Stage(_) => left_to_dvc("stage"),
        Command::Dag(_) => left_to_dvc("dag"),
        Command::Params(_) => left_to_dvc("params"),
        Command::Metrics(_) => left_to_dvc("metrics"),
        Command::Plots(_) => left_to_dvc("plots"),
    }
}

/// Lode moves, checks and deletes the data pipelines produce, but does not run them.
fn left_to_dvc(command: &str) -> Result<ExitCode, LodeError> {
    let msg = if command == "repro" {
        "lode does not run pipelines: `dvc repro` works on the same repository.".to_string()
    } else {
        format!(
            "lode does not run pipelines: `dvc {command}` and `dvc repro` work on the same repository."
        )
    };
    Err(LodeError::Bare {
        msg,
        code: ExitCode::LeftToDvc,
    })
}

/// The repository, remote and objects `push`, `pull` and `fetch` work on.
pub(crate) fn transfer_session(
    args: &crate::cli::TransferArgs,
    ui: &Ui,
    action: &str,
    direction: crate::remote::used::Direction,
) -> Result<crate::remote::session::Session, LodeError> {
    let repo = crate::repo::Repo::discover(&ui.cwd)?;
    let request = crate::remote::session::Request {
        targets: &args.targets,
        scope: crate::repo::revisions::Scope {
            all_branches: args.all_branches,
            all_tags: args.all_tags,
            all_commits: args.all_commits,
            ..Default::default()
        },
        remote: args.remote.as_deref(),
        jobs: args.jobs,
        direction,
    };
    crate::remote::session::Session::open(repo, &ui.cwd, &request, ui.out, action)
}

/// After a command wrote `.dvc` files and `.gitignore` entries (`paths`): `git add`s them with
/// `core.autostage`, else prints DVC's hint with the paths relative to `cwd`.
pub(crate) fn stage_or_hint(
    repo: &crate::repo::Repo,
    paths: &[PathBuf],
    cwd: &std::path::Path,
    ui: &Ui,
) -> Result<(), LodeError> {
    if repo.config.get_bool("core", "autostage") == Some(true) {
        if let Ok(Some(git)) = crate::git::Git::discover(&repo.root) {
            let paths: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
            git.add(&paths)?;
        }
        return Ok(());
    }
    let rel: Vec<String> = paths
        .iter()
        .map(|p| shell_word(&crate::hash::walk::relative_to(p, cwd).to_string_lossy()))
        .collect();
    ui.out.line(format_args!(
        "\nTo track the changes with git, run:\n\n\tgit add {}\n\nTo enable auto staging, run:\n\n\tdvc config core.autostage true",
        rel.join(" ")
    ))
}

/// Quotes a path for the suggested `git add` line only when the shell needs it.
fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_alphanumeric() || "@%+=:,./-_".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// The current directory, as an error DVC-style commands can report.
fn current_dir() -> Result<PathBuf, LodeError> {
    std::env::current_dir().map_err(|source| {
        RepoError::Io {
            path: PathBuf::from("."),
            source,
        }
        .into()
    })
}
