//! `lode config`.

use crate::cli::ConfigArgs;
use crate::commands::Ui;
use crate::LodeError;

pub fn run(_args: ConfigArgs, _ui: Ui) -> Result<u8, LodeError> {
    Err(LodeError::Other("'config' is not implemented yet".into()))
}
