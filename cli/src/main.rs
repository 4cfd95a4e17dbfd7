//! `lode`: clap parsing only; every command lives in `lode::commands`.

use clap::Parser;
use lode::cli::Cli;
use lode::printer::{Printer, Verbosity};
use lode::ExitCode;

fn main() -> std::process::ExitCode {
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
            }
            .into();
        }
    };
    let printer = Printer::new(Verbosity::from_flags(cli.quiet, cli.verbose));
    match lode::commands::run(cli, printer) {
        Ok(code) => code.into(),
        Err(e) => {
            printer.report(&e);
            e.exit_code().into()
        }
    }
}
