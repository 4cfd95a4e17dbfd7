//! `lode init`.

use crate::cli::InitArgs;
use crate::commands::Ui;
use crate::LodeError;

pub fn run(_args: InitArgs, _ui: Ui) -> Result<u8, LodeError> {
    Err(LodeError::Other("'init' is not implemented yet".into()))
}
