//! `lode remote`.

use crate::cli::RemoteArgs;
use crate::commands::Ui;
use crate::LodeError;

pub fn run(_args: RemoteArgs, _ui: Ui) -> Result<u8, LodeError> {
    Err(LodeError::Other("'remote' is not implemented yet".into()))
}
