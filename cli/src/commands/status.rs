//! `lode status`: which tracked outputs differ from their `.dvc` files or stages' `dvc.lock`
//! entries or miss from the cache, and which stage dependencies changed, printed as
//! `dvc status` does (docs/dvc-formats.md §8).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::cache::outputs::{Found, Outputs};
use crate::cli::StatusArgs;
use crate::commands::Ui;
use crate::hash::manifest::push_json_string;
use crate::hash::walk::relative_to;
use crate::repo::dvcfile::Out;
use crate::repo::pipeline::owner::Owner;
use crate::repo::pipeline::yaml::Node;
use crate::repo::pipeline::{params, resolve, Stage};
use crate::repo::Repo;
use crate::{ExitCode, LodeError};

/// How one path differs: a state, or (for a parameters file) the state of each parameter.
enum Change {
    State(&'static str),
    Params(Vec<(String, &'static str)>),
}

/// One item of a declaration's status, in DVC's order.
enum Entry {
    /// `changed deps` or `changed outs`, with each changed path.
    Changed(&'static str, Vec<(String, Change)>),
    /// `always changed`, `changed command`.
    Flag(&'static str),
}

/// How an output differs, in DVC's words.
fn out_state(outputs: &Outputs, out: &Out, path: &Path) -> Result<Option<&'static str>, LodeError> {
    if out.cache {
        if let Some(oid) = out.oid {
            if !outputs.in_cache(&oid, out.kind) {
                return Ok(Some("not in cache"));
            }
        }
    }
    let found = outputs.hash(path, out.kind)?;
    Ok(match (&found, out.oid) {
        (Found::Missing, _) => Some("deleted"),
        (f, Some(oid)) if f.oid() == Some(oid) => None,
        _ => Some("modified"),
    })
}

/// Parameters files read once per run, as loaded values (`None`: missing or unreadable).
type ParamsFiles = Mutex<HashMap<PathBuf, Option<Node>>>;

fn read_params(cache: &ParamsFiles, path: &Path) -> Option<Node> {
    if let Some(v) = cache.lock().ok().and_then(|m| m.get(path).cloned()) {
        return v;
    }
    let v = std::fs::read(path)
        .ok()
        .and_then(|b| params::parse_file(path, &b).ok());
    if let Ok(mut m) = cache.lock() {
        m.insert(path.to_path_buf(), v.clone());
    }
    v
}

fn deps_changes(
    outputs: &Outputs,
    stage: &Stage,
    cwd: &Path,
    files: &ParamsFiles,
) -> Result<Vec<(String, Change)>, LodeError> {
    let mut changes = Vec::new();
    for d in &stage.deps {
        if d.path.contains("://") {
            // Remote dependencies are checked by DVC against their remote; lode does not.
            continue;
        }
        let path = resolve(&stage.wdir, &d.path);
        let kind = d
            .locked
            .as_ref()
            .map_or(lode_proto::HashKind::Md5, |l| l.kind);
        let found = outputs.hash(&path, kind)?;
        let state = match (&found, d.locked.as_ref().and_then(|l| l.oid)) {
            (Found::Missing, _) => Some("deleted"),
            (f, Some(oid)) if f.oid() == Some(oid) => None,
            _ => Some("modified"),
        };
        if let Some(st) = state {
            changes.push((show(&path, cwd, &outputs.root), Change::State(st)));
        }
    }
    for p in &stage.params {
        let path = resolve(&stage.wdir, &p.path);
        let name = show(&path, cwd, &outputs.root);
        if !path.is_file() {
            changes.push((name, Change::State("deleted")));
            continue;
        }
        let Some(locked) = &p.locked else {
            changes.push((name, Change::State("new")));
            continue;
        };
        let actual = read_params(files, &path)
            .map(|root| params::pick(&root, &p.keys))
            .unwrap_or_default();
        let diff = params::changes(&p.keys, &actual, locked);
        if !diff.is_empty() {
            changes.push((name, Change::Params(diff)));
        }
    }
    Ok(changes)
}

fn owner_status(
    outputs: &Outputs,
    owner: &Owner,
    outs: &[usize],
    cwd: &Path,
    files: &ParamsFiles,
) -> Result<Vec<Entry>, LodeError> {
    let mut entries = Vec::new();
    if let Some(stage) = owner.stage() {
        if !stage.frozen {
            let deps = deps_changes(outputs, stage, cwd, files)?;
            if !deps.is_empty() {
                entries.push(Entry::Changed("changed deps", deps));
            }
        }
    }
    let mut changed = Vec::new();
    for &i in outs {
        let path = owner.out_path(i);
        if let Some(state) = out_state(outputs, &owner.outs()[i], &path)? {
            changed.push((show(&path, cwd, &outputs.root), Change::State(state)));
        }
    }
    if !changed.is_empty() {
        entries.push(Entry::Changed("changed outs", changed));
    }
    if let Some(stage) = owner.stage() {
        if stage.always_runs() {
            entries.push(Entry::Flag("always changed"));
        }
        if stage.cmd_changed() {
            entries.push(Entry::Flag("changed command"));
        }
    }
    Ok(entries)
}

pub fn run(args: StatusArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    if args.cloud || args.remote.is_some() {
        return super::status_cloud::run(&args, ui);
    }
    if let Some(j) = args.jobs {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(j.max(1))
            .build_global();
    }
    let cwd = &ui.cwd;
    let repo = Repo::discover(cwd)?;
    let outputs = Outputs::open(&repo, ui.out)?;
    let tracked = outputs.tracked(&args.targets, cwd, ExitCode::Failed)?;
    for t in &tracked {
        if let Some(s) = t.owner.stage().filter(|s| s.frozen) {
            ui.out.warn(format_args!(
                "stage: '{}' is frozen. Its dependencies are not going to be shown in the status output.",
                s.addressing(cwd)
            ));
        }
    }
    let files = ParamsFiles::default();
    let results: Vec<Result<Vec<Entry>, LodeError>> = tracked
        .par_iter()
        .map(|t| owner_status(&outputs, &t.owner, &t.outs, cwd, &files))
        .collect();
    outputs.flush();
    let mut report: Vec<(String, Vec<Entry>)> = Vec::new();
    for (t, r) in tracked.iter().zip(results) {
        let entries = r?;
        if !entries.is_empty() {
            report.push((t.owner.addressing(cwd), entries));
        }
    }
    if ui.out.is_quiet() {
        return Ok(if report.is_empty() {
            ExitCode::Ok
        } else {
            ExitCode::Failed
        });
    }
    if args.json {
        ui.out.line(json(&report))?;
        return Ok(ExitCode::Ok);
    }
    if tracked.is_empty() && args.targets.is_empty() {
        ui.out.line("There are no data or pipelines tracked in this project yet.\nSee <https://dvc.org/doc/start> to get started!")?;
        return Ok(ExitCode::Ok);
    }
    if report.is_empty() {
        ui.out.line("Data and pipelines are up to date.")?;
        return Ok(ExitCode::Ok);
    }
    ui.out.text(&text(&report))?;
    Ok(ExitCode::Ok)
}

/// `{"name": [{"changed deps": {...}}, {"changed outs": {...}}, "always changed"]}`, spaced as
/// Python's `json.dumps`.
fn json(report: &[(String, Vec<Entry>)]) -> String {
    let mut s = String::from("{");
    for (n, (name, entries)) in report.iter().enumerate() {
        if n > 0 {
            s.push_str(", ");
        }
        push_json_string(&mut s, name);
        s.push_str(": [");
        for (m, e) in entries.iter().enumerate() {
            if m > 0 {
                s.push_str(", ");
            }
            match e {
                Entry::Flag(f) => push_json_string(&mut s, f),
                Entry::Changed(what, changes) => {
                    s.push('{');
                    push_json_string(&mut s, what);
                    s.push_str(": {");
                    for (k, (path, change)) in changes.iter().enumerate() {
                        if k > 0 {
                            s.push_str(", ");
                        }
                        push_json_string(&mut s, path);
                        s.push_str(": ");
                        match change {
                            Change::State(st) => push_json_string(&mut s, st),
                            Change::Params(ps) => {
                                s.push('{');
                                for (j, (p, st)) in ps.iter().enumerate() {
                                    if j > 0 {
                                        s.push_str(", ");
                                    }
                                    push_json_string(&mut s, p);
                                    s.push_str(": ");
                                    push_json_string(&mut s, st);
                                }
                                s.push('}');
                            }
                        }
                    }
                    s.push_str("}}");
                }
            }
        }
        s.push(']');
    }
    s.push('}');
    s
}

/// The indented listing `dvc status` prints.
fn text(report: &[(String, Vec<Entry>)]) -> String {
    let state = |st: &str| format!("{:<20}", format!("{st}:"));
    let mut s = String::new();
    for (name, entries) in report {
        s.push_str(&format!("{name}:\n"));
        for e in entries {
            match e {
                Entry::Flag(f) => s.push_str(&format!("\t{f}\n")),
                Entry::Changed(what, changes) => {
                    s.push_str(&format!("\t{what}:\n"));
                    for (path, change) in changes {
                        match change {
                            Change::State(st) => s.push_str(&format!("\t\t{}{path}\n", state(st))),
                            Change::Params(ps) => {
                                s.push_str(&format!("\t\t{path}:\n"));
                                for (p, st) in ps {
                                    s.push_str(&format!("\t\t\t{}{p}\n", state(st)));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    s
}

/// A path as DVC shows it: relative to the current folder, or absolute outside the repository.
fn show(p: &Path, cwd: &Path, root: &Path) -> String {
    if p.starts_with(root) {
        relative_to(p, cwd).to_string_lossy().into_owned()
    } else {
        p.to_string_lossy().into_owned()
    }
}
