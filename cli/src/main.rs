//! `lode`: clap parsing only; every command lives in `lode::commands`.

use std::process::ExitCode;

use clap::Parser;
use lode::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let is_help = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            let _ = e.print();
            // DVC exits 254 on argument errors.
            return ExitCode::from(if is_help { 0 } else { 254 });
        }
    };
    match lode::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if e.prefixed() {
                eprintln!("ERROR: {e}");
            } else {
                eprintln!("{e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
