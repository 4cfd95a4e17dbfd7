//! `lode status -c`: which objects of tracked outputs are only in the cache (`new`), only on
//! the remote (`deleted`) or in neither (`missing`), as `dvc status -c` prints them
//! (docs/dvc-formats.md §8).

use crate::cache::outputs::Outputs;
use crate::cache::Cache;
use crate::cli::StatusArgs;
use crate::commands::Ui;
use crate::hash::manifest::push_json_string;
use crate::remote::session::Transfer;
use crate::remote::sync;
use crate::remote::used::{self, Direction};
use crate::remote::{self as remote_mod};
use crate::repo::Repo;
use crate::{ExitCode, LodeError};

const ACTION: &str = "failed to compare with the cloud";

pub fn run(args: &StatusArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let cwd = &ui.cwd;
    let repo = Repo::discover(cwd)?;
    let outputs = Outputs::open(&repo, ui.out)?;
    let purpose = used::Purpose {
        code: ExitCode::Failed,
        direction: Direction::Push,
        unversioned: Some(ui.out),
    };
    let used = used::collect(&outputs, &args.targets, cwd, &Default::default(), purpose)?;
    let conf =
        remote_mod::resolve(&repo, args.remote.as_deref()).map_err(|e| e.into_lode(ACTION))?;
    let transfer = Transfer::open(Cache::for_repo(&repo)?, &conf, args.jobs)
        .map_err(|e| e.into_lode(ACTION))?;
    let (remote, cache) = (&transfer.remote, &transfer.cache);
    let states = sync::status(remote, cache, &used).map_err(|e| e.into_lode(ACTION))?;
    if ui.out.is_quiet() {
        return Ok(if states.is_empty() {
            ExitCode::Ok
        } else {
            ExitCode::Failed
        });
    }
    if args.json {
        let mut s = String::from("{");
        for (i, st) in states.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            push_json_string(&mut s, &st.name);
            s.push_str(": ");
            push_json_string(&mut s, st.state);
        }
        s.push('}');
        ui.out.line(s)?;
        return Ok(ExitCode::Ok);
    }
    if states.is_empty() {
        ui.out.line(format_args!(
            "Cache and remote '{}' are in sync.",
            remote.name
        ))?;
        return Ok(ExitCode::Ok);
    }
    let mut out = String::new();
    for st in &states {
        out.push_str(&format!("\t{:<20}{}\n", format!("{}:", st.state), st.name));
    }
    ui.out.text(&out)?;
    Ok(ExitCode::Ok)
}
