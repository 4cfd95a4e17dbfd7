//! `lode gc`.

use crate::cli::GcArgs;
use crate::commands::Ui;
use crate::LodeError;

pub fn run(_args: GcArgs, _ui: Ui) -> Result<u8, LodeError> {
    Err(LodeError::Other("'gc' is not implemented yet".into()))
}
