//! `lode add`.

use crate::cli::AddArgs;
use crate::commands::Ui;
use crate::LodeError;

pub fn run(_args: AddArgs, _ui: Ui) -> Result<u8, LodeError> {
    Err(LodeError::Other("'add' is not implemented yet".into()))
}
