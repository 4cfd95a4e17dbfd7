//! `lode checkout`.

use crate::cli::CheckoutArgs;
use crate::commands::Ui;
use crate::LodeError;

pub fn run(_args: CheckoutArgs, _ui: Ui) -> Result<u8, LodeError> {
    Err(LodeError::Other("'checkout' is not implemented yet".into()))
}
