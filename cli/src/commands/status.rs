//! `lode status`.

use crate::cli::StatusArgs;
use crate::commands::Ui;
use crate::LodeError;

pub fn run(_args: StatusArgs, _ui: Ui) -> Result<u8, LodeError> {
    Err(LodeError::Other("'status' is not implemented yet".into()))
}
