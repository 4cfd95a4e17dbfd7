//! `lode`: the command line tool; everything it does lives in the `lode` library.

fn main() -> std::process::ExitCode {
    lode::main().into()
}
