//! `lode commit`.

use crate::cli::CommitArgs;
use crate::commands::Ui;
use crate::LodeError;

pub fn run(_args: CommitArgs, _ui: Ui) -> Result<u8, LodeError> {
    Err(LodeError::Other("'commit' is not implemented yet".into()))
}
