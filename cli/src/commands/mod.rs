//! One module per command. Commands don't call each other; shared logic lives in
//! `repo`, `hash`, `cache` and `git`.

pub mod add;
pub mod cache;
pub mod checkout;
pub mod commit;
pub mod config;
pub mod fetch;
pub mod gc;
pub mod init;
pub mod pull;
pub mod push;
pub mod remote;
pub mod status;
pub mod status_cloud;

use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::printer::Printer;
use crate::repo::RepoError;
use crate::{ExitCode, LodeError};

/// What every command is given: the folder it was started in, and where it writes.
pub struct Ui {
    pub cwd: PathBuf,
    pub out: Printer,
}

/// Runs one command; `Ok(code)` is the exit code of a command that ran to its end.
pub fn run(cli: Cli, out: Printer) -> Result<ExitCode, LodeError> {
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
    pushing: bool,
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
        pushing,
    };
    crate::remote::session::Session::open(repo, &ui.cwd, &request, ui.out, action)
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
