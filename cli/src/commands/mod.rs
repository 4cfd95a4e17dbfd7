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
use crate::repo::RepoError;
use crate::LodeError;

/// Output settings every command receives.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub quiet: bool,
    pub verbose: u8,
}

/// Runs one command; `Ok(code)` is the exit code of a command that ran to its end.
pub fn run(cli: Cli) -> Result<u8, LodeError> {
    let ui = Ui {
        quiet: cli.quiet,
        verbose: cli.verbose,
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
    }
}

/// The repository, remote and objects `push`, `pull` and `fetch` work on.
pub(crate) fn transfer_session(
    args: &crate::cli::TransferArgs,
    action: &str,
) -> Result<crate::remote::session::Session, LodeError> {
    let cwd = current_dir()?;
    let repo = crate::repo::Repo::discover(&cwd)?;
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
    };
    crate::remote::session::Session::open(repo, &cwd, &request, action)
}

/// The current directory, as an error DVC-style commands can report.
pub(crate) fn current_dir() -> Result<PathBuf, LodeError> {
    std::env::current_dir().map_err(|source| {
        RepoError::Io {
            path: PathBuf::from("."),
            source,
        }
        .into()
    })
}
