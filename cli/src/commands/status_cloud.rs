//! `lode status -c`: which objects of tracked outputs are only in the cache (`new`), only on
//! the remote (`deleted`) or in neither (`missing`), as `dvc status -c` prints them (spec §8).

use super::current_dir;
use crate::cache::outputs::Outputs;
use crate::cache::Cache;
use crate::cli::StatusArgs;
use crate::commands::Ui;
use crate::hash::manifest::push_json_string;
use crate::remote::session::Transfer;
use crate::remote::sync;
use crate::remote::used;
use crate::remote::{self as remote_mod};
use crate::repo::Repo;
use crate::LodeError;

const ACTION: &str = "failed to compare with the cloud";

pub fn run(args: &StatusArgs, ui: Ui) -> Result<u8, LodeError> {
    let cwd = current_dir()?;
    let repo = Repo::discover(&cwd)?;
    let outputs = Outputs::open(&repo)?;
    let used = used::collect(&outputs, &args.targets, &cwd, &Default::default(), 1)?;
    let conf =
        remote_mod::resolve(&repo, args.remote.as_deref()).map_err(|e| e.into_lode(ACTION))?;
    let transfer = Transfer::open(Cache::for_repo(&repo)?, &conf, args.jobs)
        .map_err(|e| e.into_lode(ACTION))?;
    let (remote, cache) = (&transfer.remote, &transfer.cache);
    let states = sync::status(remote, cache, &used).map_err(|e| e.into_lode(ACTION))?;
    if ui.quiet {
        return Ok(if states.is_empty() { 0 } else { 1 });
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
        println!("{s}");
        return Ok(0);
    }
    if states.is_empty() {
        println!("Cache and remote '{}' are in sync.", remote.name);
        return Ok(0);
    }
    let mut out = String::new();
    for st in &states {
        out.push_str(&format!("\t{:<20}{}\n", format!("{}:", st.state), st.name));
    }
    print!("{out}");
    Ok(0)
}
