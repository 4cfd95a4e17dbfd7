//! `lode status`: which tracked outputs differ from their `.dvc` files or miss from the cache,
//! printed as `dvc status` does (spec §8).

use std::path::Path;

use rayon::prelude::*;

use crate::cache::outputs::{Found, Outputs};
use crate::cli::StatusArgs;
use crate::commands::Ui;
use crate::hash::manifest::push_json_string;
use crate::hash::walk::relative_to;
use crate::repo::Repo;
use crate::{ExitCode, LodeError};

/// How an output differs, in DVC's words.
fn out_state(
    outputs: &Outputs,
    file: &crate::repo::dvcfile::DvcFile,
    i: usize,
) -> Result<Option<&'static str>, LodeError> {
    let out = &file.outs[i];
    let path = file.out_path(i);
    if out.cache {
        match out.oid {
            Some(oid) if outputs.in_cache(&oid, out.kind) => {}
            _ => return Ok(Some("not in cache")),
        }
    }
    let found = outputs.hash(&path, out.kind)?;
    Ok(match (&found, out.oid) {
        (Found::Missing, _) => Some("deleted"),
        (f, Some(oid)) if f.oid() == Some(oid) => None,
        _ => Some("modified"),
    })
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
    let results: Vec<Result<Vec<(String, &'static str)>, LodeError>> = tracked
        .par_iter()
        .map(|t| {
            let mut changes = Vec::new();
            for &i in &t.outs {
                if let Some(state) = out_state(&outputs, &t.file, i)? {
                    changes.push((rel(&t.file.out_path(i), cwd), state));
                }
            }
            Ok(changes)
        })
        .collect();
    outputs.flush();
    let mut report: Vec<(String, Vec<(String, &'static str)>)> = Vec::new();
    for (t, r) in tracked.iter().zip(results) {
        let changes = r?;
        if !changes.is_empty() {
            report.push((rel(&t.file.path, cwd), changes));
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
        let mut s = String::from("{");
        for (n, (dvc, changes)) in report.iter().enumerate() {
            if n > 0 {
                s.push_str(", ");
            }
            push_json_string(&mut s, dvc);
            s.push_str(": [{\"changed outs\": {");
            for (m, (path, state)) in changes.iter().enumerate() {
                if m > 0 {
                    s.push_str(", ");
                }
                push_json_string(&mut s, path);
                s.push_str(": ");
                push_json_string(&mut s, state);
            }
            s.push_str("}}]");
        }
        s.push('}');
        ui.out.line(s)?;
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
    let mut s = String::new();
    for (dvc, changes) in &report {
        s.push_str(&format!("{dvc}:\n\tchanged outs:\n"));
        for (path, state) in changes {
            s.push_str(&format!("\t\t{:<20}{path}\n", format!("{state}:")));
        }
    }
    ui.out.text(&s)?;
    Ok(ExitCode::Ok)
}

fn rel(p: &Path, cwd: &Path) -> String {
    relative_to(p, cwd).to_string_lossy().into_owned()
}
