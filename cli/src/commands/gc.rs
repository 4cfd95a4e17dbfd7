//! `lode gc`: removes cache objects that no output in scope uses, as `dvc gc` does.
//!
//! The scope is always the workspace, plus the declarations (`.dvc` files and pipeline stages
//! with their `dvc.lock` hashes) of every branch tip (`-a`), tag (`-T`) or commit (`-A`). An
//! object is kept when a cached output in scope names it, or when it is an entry of a kept `.dir`
//! manifest (read from the cache). The DVC 3 cache (`files/md5/`, "repo") and the legacy DVC 2
//! cache ("legacy") are collected separately, each by its own hash kind. Anything that cannot be
//! read (a malformed `.dvc` file or pipeline, in the workspace or in history) stops gc before
//! anything is removed.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};

use crate::cache::Cache;
use crate::cli::GcArgs;
use crate::commands::Ui;
use crate::printer::Printer;
use crate::remote::gc::GcMode;
use crate::repo::config::ConfigError;
use crate::repo::dvcignore::DvcIgnore;
use crate::repo::revisions::{RevOutputs, Revision, RevisionError, Scope, Walker};
use crate::repo::{Repo, RepoError};
use crate::{ExitCode, LodeError};

const PROMPT: &str = "Are you sure you want to proceed? [y/n]: ";

fn warning_text(args: &GcArgs) -> String {
    let mut msg = String::from("This will remove all cache except items used in the workspace");
    if args.all_commits {
        msg.push_str(" and all git commits");
    } else {
        match (args.all_branches, args.all_tags, args.num) {
            (true, true, Some(n)) => msg.push_str(&format!(
                " and last {n} commits from all git branches and all git tags"
            )),
            (true, true, None) => msg.push_str(" and all git branches and tags"),
            (true, false, Some(n)) => {
                msg.push_str(&format!(" and last {n} commits from all git branches"))
            }
            (true, false, None) => msg.push_str(" and all git branches"),
            (false, true, _) => msg.push_str(" and all git tags"),
            (false, false, _) => {}
        }
        if let Some(rev) = &args.rev {
            msg.push_str(&format!(
                " and last {} commits from {rev}",
                args.num.unwrap_or(1)
            ));
        }
    }
    msg.push_str(" of the current repo.");
    msg
}

/// Asks on stdin as DVC does: only `yes`, `no`, `y` or `n` are accepted; end of input is "no".
fn confirm(out: Printer) -> Result<bool, LodeError> {
    let stdin = std::io::stdin();
    loop {
        out.ask(PROMPT)?;
        let mut line = String::new();
        let n = stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| LodeError::Other(format!("failed to read the answer: {e}")))?;
        if n == 0 {
            out.ask("\n")?;
            return Ok(false);
        }
        match line.trim() {
            "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            _ => out.ask(
                "Your response must be one of: ['yes', 'no', 'y', 'n']. Please try again.\n",
            )?,
        }
    }
}

/// Object ids in use, per hash kind.
#[derive(Default)]
struct Used {
    md5: HashSet<ObjectId>,
    legacy: HashSet<ObjectId>,
}

impl Used {
    fn set(&mut self, kind: HashKind) -> &mut HashSet<ObjectId> {
        match kind {
            HashKind::Md5 => &mut self.md5,
            HashKind::Md5Dos2unix => &mut self.legacy,
        }
    }

    /// Keeps what one revision's cached outputs (of `.dvc` files and pipeline stages) use.
    fn add(&mut self, found: RevOutputs) {
        for d in found.outs {
            if !d.out.cache {
                continue;
            }
            if let Some(oid) = d.out.oid {
                self.set(d.out.kind).insert(oid);
            }
        }
    }

    /// Adds the entries of every used `.dir` manifest found in the cache. A manifest missing
    /// from the cache cannot name its entries (DVC then keeps only the `.dir` id, and so does
    /// Lode); one that is there but unreadable stops gc, as in DVC, so nothing it names is lost.
    fn expand_dirs(&mut self, cache: &Cache) -> Result<(), LodeError> {
        for kind in [HashKind::Md5, HashKind::Md5Dos2unix] {
            let dirs: Vec<ObjectId> = self
                .set(kind)
                .iter()
                .filter(|o| o.is_dir())
                .copied()
                .collect();
            for dir in dirs {
                if !cache.contains(&dir, kind) {
                    continue;
                }
                let manifest = cache.read_manifest(&dir, kind).map_err(|e| {
                    LodeError::Other(format!(
                        "object {dir} is corrupted ({e}); nothing was removed"
                    ))
                })?;
                let set = self.set(kind);
                for e in manifest.entries() {
                    set.insert(e.oid);
                }
            }
        }
        Ok(())
    }
}

fn collect_used(repo: &Repo, args: &GcArgs, cache: &Cache, cwd: &Path) -> Result<Used, LodeError> {
    let mut used = Used::default();
    let ignore = DvcIgnore::new(&repo.root);
    let walker = Walker::new(&repo.root, &ignore);
    let scope = Scope {
        all_branches: args.all_branches,
        all_tags: args.all_tags,
        all_commits: args.all_commits,
        rev: args.rev.clone(),
        num: args.num,
    };
    let failed = |e: RevisionError| e.into_lode(ExitCode::Error, cwd);
    used.add(walker.outputs_at(&Revision::Workspace).map_err(failed)?);
    for rev in walker.commits(&scope).map_err(failed)? {
        used.add(walker.outputs_at(&rev).map_err(failed)?);
    }
    used.expand_dirs(cache)?;
    Ok(used)
}

/// Objects stored under `dir` as `<2 hex>/<30 hex>[.dir]`; other files are left alone.
fn list_objects(dir: &Path) -> Result<Vec<(ObjectId, PathBuf)>, LodeError> {
    let mut found = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(source) => {
            return Err(RepoError::Io {
                path: dir.to_path_buf(),
                source,
            }
            .into())
        }
    };
    for prefix in rd.flatten() {
        let pname = prefix.file_name().to_string_lossy().into_owned();
        if pname.len() != 2 || !prefix.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(inner) = std::fs::read_dir(prefix.path()) else {
            continue;
        };
        for obj in inner.flatten() {
            if !obj.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let name = obj.file_name().to_string_lossy().into_owned();
            if let Ok(oid) = ObjectId::from_key_parts(&pname, &name) {
                found.push((oid, obj.path()));
            }
        }
    }
    Ok(found)
}

/// Removes unused objects from one cache layout; `.dir` manifests go first, as in DVC.
fn collect_garbage(
    dir: &Path,
    used: &HashSet<ObjectId>,
    mode: GcMode,
    out: Printer,
) -> Result<usize, LodeError> {
    let mut unused: Vec<(ObjectId, PathBuf)> = list_objects(dir)?
        .into_iter()
        .filter(|(oid, _)| !used.contains(oid))
        .collect();
    unused.sort_by_key(|(oid, path)| (!oid.is_dir(), path.clone()));
    for (_, path) in &unused {
        if mode == GcMode::DryRun {
            out.line(format_args!("Removing {}", path.display()))?;
            continue;
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RepoError::Io {
                    path: path.clone(),
                    source,
                }
                .into())
            }
        }
    }
    Ok(unused.len())
}

pub fn run(args: GcArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let cwd = &ui.cwd;
    let repo = Repo::discover(cwd)?;
    if !(args.workspace
        || args.all_branches
        || args.all_tags
        || args.all_commits
        || args.rev.is_some())
    {
        return Err(LodeError::Other(
            "Either of `-w|--workspace`, `-a|--all-branches`, `-T|--all-tags` \
             `--all-experiments`, `--all-commits`, `--date` or `--rev` needs to be set."
                .into(),
        ));
    }
    if args.num.is_some() && !(args.rev.is_some() || args.all_branches) {
        return Err(LodeError::Other(
            "`--num` can only be used alongside `--rev` or `--all-branches`".into(),
        ));
    }
    let force = args.force || args.dry;
    ui.out.warn(warning_text(&args));
    if !force && !confirm(ui.out)? {
        return Ok(ExitCode::Failed);
    }
    let _lock = repo.lock()?;
    let cloud = match (
        args.cloud,
        args.remote.clone().or_else(|| repo.config.core_remote()),
    ) {
        (false, _) => None,
        (true, None) => {
            let msg = format!(
                "no remote specified in {}. Create a default remote with\n    \
                 dvc remote add -d <remote name> <remote url>",
                repo.root.display()
            );
            return Err(ConfigError::Invalid(msg).into());
        }
        (true, Some(n)) => match repo.config.remote(&n) {
            None => {
                let msg = format!("remote '{n}' doesn't exist.");
                return Err(ConfigError::Invalid(msg).into());
            }
            Some(conf) => Some(conf),
        },
    };
    let cache = Cache::for_repo(&repo)?;
    let mode = if args.dry {
        GcMode::DryRun
    } else {
        GcMode::Delete
    };
    let used = collect_used(&repo, &args, &cache, cwd)?;
    for (scheme, dir, set) in [
        ("repo", cache.root().join("files/md5"), &used.md5),
        ("legacy", cache.root().to_path_buf(), &used.legacy),
    ] {
        let removed = collect_garbage(&dir, set, mode, ui.out)?;
        if removed > 0 {
            ui.out.line(format_args!(
                "Removed {removed} objects from {scheme} cache."
            ))?;
        } else {
            ui.out
                .line(format_args!("No unused '{scheme}' cache to remove."))?;
        }
    }
    if let Some(conf) = cloud {
        let failed =
            |e: crate::remote::RemoteError| e.into_lode("failed to collect garbage on the remote");
        let remote = crate::remote::Remote::open(&conf, args.jobs).map_err(failed)?;
        let lines = crate::remote::gc::collect(&remote, &cache, &used.md5, &used.legacy, mode)
            .map_err(failed)?;
        for l in lines {
            ui.out.line(l)?;
        }
    }
    Ok(ExitCode::Ok)
}
