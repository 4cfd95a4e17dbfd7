//! Paths of the workspace's binaries, built by `cargo build --workspace` before the tests run.

use std::path::PathBuf;

/// The folder holding this test's executable's sibling binaries (`target/<profile>/`).
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    let path = target_profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first (the test script does)",
        path.display()
    );
    path
}

/// The `lode` binary.
pub fn lode() -> PathBuf {
    binary("lode")
}

/// The `lode-server` binary.
pub fn lode_server() -> PathBuf {
    binary("lode-server")
}
