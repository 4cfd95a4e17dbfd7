//! Command-line grammar, mirroring DVC's where DVC has the command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::printer::Verbosity;
use crate::repo::config::Level;

#[derive(Debug, Parser)]
#[command(
    name = "lode",
    version,
    about = "Version large files next to Git, compatible with DVC"
)]
pub struct Cli {
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// How much to print: `-q` wins over `-v`, as in DVC.
    pub fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create `.dvc/` in the current Git repository.
    Init(InitArgs),
    /// Track files or directories: hash them, store them in the cache, write `.dvc` files.
    #[command(after_help = "Examples:
  lode add data/images           Track a folder; writes data/images.dvc
  lode add model.pt data.csv     Track several files at once
  git add data/images.dvc .gitignore && git commit -m 'Track images'")]
    Add(AddArgs),
    /// Show what changed between the workspace, the `.dvc` files and the cache.
    Status(StatusArgs),
    /// Record workspace changes of tracked outputs in their `.dvc` files and the cache.
    Commit(CommitArgs),
    /// Make the workspace match the `.dvc` files, from the cache.
    Checkout(CheckoutArgs),
    /// Read or write `.dvc/config` options.
    Config(ConfigArgs),
    /// Manage remotes.
    Remote(RemoteArgs),
    /// Manage the cache.
    Cache(CacheArgs),
    /// Remove unused objects from the cache.
    Gc(GcArgs),
    /// Upload tracked data to a remote.
    #[command(after_help = "Examples:
  lode push                      Upload the data of every .dvc file to the default remote
  lode push -r backup data.dvc   Upload one output's data to the remote named backup
  lode push --all-commits -j 8   Upload the data of every commit, 8 transfers at a time")]
    Push(TransferArgs),
    /// Download tracked data from a remote into the cache.
    Fetch(TransferArgs),
    /// Download tracked data from a remote and check it out into the workspace.
    #[command(after_help = "Examples:
  lode pull                      Download and check out everything the .dvc files track
  lode pull data/images.dvc      Only one output
  lode pull -r backup --force    From the remote named backup, overwriting local changes")]
    Pull(PullArgs),
    /// List the files of a repository, Git-tracked and DVC-tracked.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Download a file or folder tracked by a repository, without tracking it here.
    Get(GetArgs),
    /// Download a file or folder of another repository and track where it came from.
    Import(ImportArgs),
    /// Move imports to the latest (or another) revision of their source.
    Update(UpdateArgs),
    /// Reproduce pipelines: left to `dvc repro`.
    #[command(disable_help_flag = true)]
    Repro(DvcOnlyArgs),
    /// Experiments: left to `dvc exp`.
    #[command(disable_help_flag = true, alias = "experiments")]
    Exp(DvcOnlyArgs),
    /// The experiments queue: left to `dvc queue`.
    #[command(disable_help_flag = true)]
    Queue(DvcOnlyArgs),
    /// Pipeline stages: left to `dvc stage`.
    #[command(disable_help_flag = true)]
    Stage(DvcOnlyArgs),
    /// The pipeline graph: left to `dvc dag`.
    #[command(disable_help_flag = true)]
    Dag(DvcOnlyArgs),
    /// Parameters: left to `dvc params`.
    #[command(disable_help_flag = true)]
    Params(DvcOnlyArgs),
    /// Metrics: left to `dvc metrics`.
    #[command(disable_help_flag = true)]
    Metrics(DvcOnlyArgs),
    /// Plots: left to `dvc plots`.
    #[command(disable_help_flag = true)]
    Plots(DvcOnlyArgs),
}

/// The arguments of a pipeline command lode leaves to DVC, whatever they are.
#[derive(Debug, Args)]
pub struct DvcOnlyArgs {
    /// Arguments of the DVC command; lode does not run it.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// What `push` and `fetch` transfer, and how.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// `.dvc` files or outputs (all of the workspace's when none).
    pub targets: Vec<PathBuf>,
    /// The remote (default: `core.remote`).
    #[arg(short, long)]
    pub remote: Option<String>,
    /// Parallel transfers.
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Also the data of every branch tip.
    #[arg(short, long)]
    pub all_branches: bool,
    /// Also the data of every tag.
    #[arg(short = 'T', long)]
    pub all_tags: bool,
    /// Also the data of every commit.
    #[arg(short = 'A', long)]
    pub all_commits: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Overwrite workspace changes without asking.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Initialise outside a Git repository.
    #[arg(long)]
    pub no_scm: bool,
    /// Overwrite an existing `.dvc/`.
    #[arg(short, long)]
    pub force: bool,
    /// Initialise in a subdirectory of a Git repository.
    #[arg(long)]
    pub subdir: bool,
    /// Folder to initialise (default: the current one).
    pub directory: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Input files/directories to add.
    #[arg(required = true)]
    pub targets: Vec<PathBuf>,
    /// Hashing threads.
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Limit command scope to these tracked files/directories or `.dvc` files.
    pub targets: Vec<PathBuf>,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
    /// Compare the cache with a remote.
    #[arg(short, long)]
    pub cloud: bool,
    /// The remote to compare with.
    #[arg(short, long)]
    pub remote: Option<String>,
    /// Number of jobs to run simultaneously.
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Limit command scope to these tracked files/directories or `.dvc` files.
    pub targets: Vec<PathBuf>,
    /// Commit without asking.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CheckoutArgs {
    /// Limit command scope to these tracked files/directories or `.dvc` files.
    pub targets: Vec<PathBuf>,
    /// Overwrite workspace changes without asking.
    #[arg(short, long)]
    pub force: bool,
    /// Recreate links even where the content already matches.
    #[arg(long)]
    pub relink: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// `section.option`.
    #[arg(value_parser = crate::commands::config::parse_name)]
    pub name: Option<String>,
    /// Option value.
    #[arg(allow_hyphen_values = true)]
    pub value: Option<String>,
    /// Unset option.
    #[arg(short, long)]
    pub unset: bool,
    /// List all defined config values.
    #[arg(short, long)]
    pub list: bool,
    #[command(flatten)]
    pub level: LevelArgs,
    /// Show the file each value comes from.
    #[arg(long)]
    pub show_origin: bool,
}

/// Which config file a change goes to (DVC's `--local/--project/--global/--system`).
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct LevelArgs {
    /// Use local config (.dvc/config.local).
    #[arg(long, conflicts_with_all = ["global", "system", "project"])]
    pub local: bool,
    /// Use project config (.dvc/config).
    #[arg(long)]
    pub project: bool,
    /// Use global config.
    #[arg(long)]
    pub global: bool,
    /// Use system config.
    #[arg(long)]
    pub system: bool,
}

impl LevelArgs {
    /// The level chosen, if any; the most local flag wins.
    pub fn level(&self) -> Option<Level> {
        if self.local {
            Some(Level::Local)
        } else if self.project {
            Some(Level::Repo)
        } else if self.global {
            Some(Level::Global)
        } else if self.system {
            Some(Level::System)
        } else {
            None
        }
    }
}

#[derive(Debug, Args)]
pub struct RemoteArgs {
    #[command(subcommand)]
    pub command: RemoteCommand,
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a new data remote.
    #[command(after_help = "Examples:
  # A lode-server project, as the default remote
  lode remote add -d storage https://lode.example.com/ml
  # A local folder as a second remote
  lode remote add backup /mnt/backup/dvcstore
  # Replace the URL of storage in .dvc/config.local only
  lode remote add --local -f storage http://127.0.0.1:8080/ml")]
    Add(RemoteAddArgs),
    /// Modify the configuration of a data remote.
    Modify(RemoteModifyArgs),
    /// List all available data remotes.
    List(RemoteListArgs),
    /// Set/unset the default data remote.
    Default(RemoteDefaultArgs),
    /// Remove a data remote.
    Remove(RemoteRemoveArgs),
    /// Rename a data remote.
    Rename(RemoteRenameArgs),
}

#[derive(Debug, Args)]
pub struct RemoteAddArgs {
    /// Name of the remote.
    pub name: String,
    /// Remote location: a URL or a local path.
    pub url: String,
    /// Set as default remote.
    #[arg(short, long)]
    pub default: bool,
    /// Force overwriting existing configs.
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub level: LevelArgs,
}

#[derive(Debug, Args)]
pub struct RemoteModifyArgs {
    /// Name of the remote.
    pub name: String,
    /// Name of the option to modify.
    pub option: String,
    /// Value of the option.
    #[arg(allow_hyphen_values = true)]
    pub value: Option<String>,
    /// Unset option.
    #[arg(short, long)]
    pub unset: bool,
    #[command(flatten)]
    pub level: LevelArgs,
}

#[derive(Debug, Args)]
pub struct RemoteListArgs {
    #[command(flatten)]
    pub level: LevelArgs,
}

#[derive(Debug, Args)]
pub struct RemoteDefaultArgs {
    /// Name of the remote.
    pub name: Option<String>,
    /// Unset default remote.
    #[arg(short, long)]
    pub unset: bool,
    #[command(flatten)]
    pub level: LevelArgs,
}

#[derive(Debug, Args)]
pub struct RemoteRemoveArgs {
    /// Name of the remote to remove.
    pub name: String,
    #[command(flatten)]
    pub level: LevelArgs,
}

#[derive(Debug, Args)]
pub struct RemoteRenameArgs {
    /// Remote to be renamed.
    pub name: String,
    /// New name of the remote.
    pub new: String,
    #[command(flatten)]
    pub level: LevelArgs,
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show or set the cache directory.
    Dir {
        /// Path to the cache directory; relative paths are saved relative to the config file.
        value: Option<String>,
        /// Unset option.
        #[arg(short, long)]
        unset: bool,
        #[command(flatten)]
        level: LevelArgs,
    },
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep what the workspace's `.dvc` files use.
    #[arg(short, long)]
    pub workspace: bool,
    /// Keep what every branch's `.dvc` files use.
    #[arg(short, long)]
    pub all_branches: bool,
    /// Keep what every tag's `.dvc` files use.
    #[arg(short = 'T', long)]
    pub all_tags: bool,
    /// Keep what every commit's `.dvc` files use.
    #[arg(short = 'A', long)]
    pub all_commits: bool,
    /// Keep what this commit's `.dvc` files use.
    #[arg(long, value_name = "COMMIT")]
    pub rev: Option<String>,
    /// With `--rev` or `--all-branches`: keep the last NUM commits of each (default 1).
    #[arg(short = 'n', long)]
    pub num: Option<usize>,
    /// Also collect garbage on the remote.
    #[arg(short, long)]
    pub cloud: bool,
    /// Remote storage to collect garbage in.
    #[arg(short, long)]
    pub remote: Option<String>,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Number of jobs to run simultaneously.
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Report what would be removed without removing it.
    #[arg(long)]
    pub dry: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The repository: anything `git clone` takes.
    pub url: String,
    /// A path inside it (default: its top).
    pub path: Option<String>,
    /// A Git revision of the repository (default: its default branch).
    #[arg(long)]
    pub rev: Option<String>,
    /// List the files of subfolders too.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Only what DVC tracks.
    #[arg(long)]
    pub dvc_only: bool,
    /// Print the entries as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The repository: anything `git clone` takes.
    pub url: String,
    /// The file or folder inside it.
    pub path: String,
    /// Where to write it (default: its name, in the current folder).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// A Git revision of the repository (default: its default branch).
    #[arg(long)]
    pub rev: Option<String>,
    /// Replace what is already at the destination.
    #[arg(short, long)]
    pub force: bool,
    /// Parallel transfers.
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The repository: anything `git clone` takes.
    pub url: String,
    /// The file or folder inside it.
    pub path: String,
    /// Where to put it (default: its name, in the current folder).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// A Git revision of the repository (default: its default branch), recorded as `rev`.
    #[arg(long)]
    pub rev: Option<String>,
    /// Write the `.dvc` file only; `lode pull` or `update` downloads later.
    #[arg(long)]
    pub no_download: bool,
    /// Replace what is already at the destination.
    #[arg(short, long)]
    pub force: bool,
    /// Parallel transfers.
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Import `.dvc` files (or their outputs).
    #[arg(required = true)]
    pub targets: Vec<PathBuf>,
    /// Move to this revision of the source (recorded as `rev`).
    #[arg(long)]
    pub rev: Option<String>,
    /// Update the `.dvc` file only.
    #[arg(long)]
    pub no_download: bool,
    /// Parallel transfers.
    #[arg(short, long)]
    pub jobs: Option<usize>,
}
