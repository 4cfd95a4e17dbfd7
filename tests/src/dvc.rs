//! Finding real `dvc` for interop tests.
//!
//! The test script installs DVC into `.venv` and sets `LODE_REQUIRE_DVC=1`, under which a missing
//! `dvc` fails the test. A plain `cargo test` without DVC skips those tests, saying so.

use std::path::PathBuf;

/// The `dvc` executable: `$LODE_DVC`, else `.venv/bin/dvc` at the workspace root, else `dvc` on PATH.
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LODE_DVC") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/dvc");
    if venv.is_file() {
        return Some(venv);
    }
    let out = std::process::Command::new("dvc")
        .arg("--version")
        .output()
        .ok()?;
    out.status.success().then(|| PathBuf::from("dvc"))
}

/// The `dvc` executable, or `None` after printing why the test is skipped. Panics when the test
/// script demanded DVC (`LODE_REQUIRE_DVC=1`) and it is missing.
pub fn require() -> Option<PathBuf> {
    match find() {
        Some(p) => Some(p),
        None if std::env::var("LODE_REQUIRE_DVC").as_deref() == Ok("1") => {
            panic!("dvc is required (LODE_REQUIRE_DVC=1) but was not found")
        }
        None => {
            eprintln!("SKIPPED: dvc is not installed; run the README test command to install it");
            None
        }
    }
}
