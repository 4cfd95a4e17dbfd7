//! `lode cache`.

use crate::cli::CacheArgs;
use crate::commands::Ui;
use crate::LodeError;

pub fn run(_args: CacheArgs, _ui: Ui) -> Result<u8, LodeError> {
    Err(LodeError::Other("'cache' is not implemented yet".into()))
}
