//! Where commands write: results on standard output, warnings, errors and detail on standard
//! error, as much as the user asked for (`-q`, normal, `-v`). Library code reports through a
//! [`Printer`] it is given and never prints on its own.

use std::fmt::Display;
use std::io::Write;

use crate::LodeError;

/// How much a command prints, from `-q` and `-v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    Normal,
    /// Also per-object detail and the causes of an error.
    Verbose,
}

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    verbosity: Verbosity,
}

impl Printer {
    pub fn new(verbosity: Verbosity) -> Printer {
        Printer { verbosity }
    }

    pub fn is_quiet(&self) -> bool {
        self.verbosity == Verbosity::Quiet
    }

    pub fn is_verbose(&self) -> bool {
        self.verbosity == Verbosity::Verbose
    }

    /// One line of a command's result on standard output (not with `-q`). A closed standard
    /// output ends the command with [`LodeError::BrokenPipe`].
    pub fn line(&self, text: impl Display) -> Result<(), LodeError> {
        if self.is_quiet() {
            return Ok(());
        }
        write_out(format_args!("{text}\n"))
    }

    /// Text of a command's result on standard output as it is, without a newline added.
    pub fn text(&self, text: &str) -> Result<(), LodeError> {
        if self.is_quiet() {
            return Ok(());
        }
        write_out(format_args!("{text}"))
    }

    /// A question or its follow-up on standard output, shown even with `-q` since the command
    /// waits for the answer.
    pub fn ask(&self, text: &str) -> Result<(), LodeError> {
        write_out(format_args!("{text}"))
    }

    /// `WARNING: ...` on standard error (not with `-q`).
    pub fn warn(&self, text: impl Display) {
        if !self.is_quiet() {
            write_err(format_args!("WARNING: {text}\n"));
        }
    }

    /// Advice on standard error (not with `-q`).
    pub fn note(&self, text: impl Display) {
        if !self.is_quiet() {
            write_err(format_args!("{text}\n"));
        }
    }

    /// `ERROR: ...` on standard error for a failure the command reports and goes on after.
    pub fn error(&self, text: impl Display) {
        write_err(format_args!("ERROR: {text}\n"));
    }

    /// Detail on standard error, only with `-v`.
    pub fn detail(&self, text: impl Display) {
        if self.is_verbose() {
            write_err(format_args!("{text}\n"));
        }
    }

    /// The error a command ended with, on standard error; with `-v` also each error that
    /// caused it. Nothing for a closed standard output: there is no one left to tell.
    pub fn report(&self, e: &LodeError) {
        if matches!(e, LodeError::BrokenPipe) {
            return;
        }
        let mut text = if e.prefixed() {
            format!("ERROR: {e}\n")
        } else {
            format!("{e}\n")
        };
        if self.is_verbose() {
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                text.push_str(&format!("  caused by: {c}\n"));
                cause = c.source();
            }
        }
        write_err(format_args!("{text}"));
    }
}

fn write_out(args: std::fmt::Arguments<'_>) -> Result<(), LodeError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(LodeError::from_output)
}

/// Standard error that cannot be written to leaves nowhere to report it: ignored.
fn write_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}
