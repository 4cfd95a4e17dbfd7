//! A repository written by real DVC 2.58.2 (`tests/fixtures/dvc2-legacy`, made by
//! `tests/fixtures/make-dvc2-legacy.sh`): md5-dos2unix hashes, the legacy cache layout, CRLF text,
//! unicode and space-containing names, nested directories, an empty file and an executable.
//! lode must call it clean, restore it byte for byte, and migrate a changed file as DVC 3 does.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lode_e2e::digest::md5_hex;
use lode_e2e::repo::Scratch;

const OUTPUTS: &[&str] = &["data.csv", "run.sh", "bin ary.dat", "images"];

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/dvc2-legacy")
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk fixture");
        let rel = entry.path().strip_prefix(from).expect("relative");
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// Every regular file under `dir`, relative path → bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .expect("relative")
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(e.path()).expect("read"))
        })
        .collect();
    out.sort();
    out
}

/// A Git repository holding the fixture as DVC 2 left it, cache files read-only as DVC makes them.
fn legacy_repo() -> Scratch {
    let s = Scratch::git();
    copy_tree(&fixture(), s.path());
    std::fs::create_dir_all(s.join("images/empty")).expect("empty dir");
    std::fs::set_permissions(s.join("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    for entry in walkdir::WalkDir::new(s.join(".dvc/cache")) {
        let entry = entry.expect("walk cache");
        if entry.file_type().is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o444))
                .expect("chmod");
        }
    }
    s.run("git", &["add", "-A"]).ok();
    s.run("git", &["commit", "-qm", "dvc2 fixture"]).ok();
    s
}

fn dvc_files(s: &Scratch) -> Vec<(String, String)> {
    [
        "data.csv.dvc",
        "run.sh.dvc",
        "bin ary.dat.dvc",
        "images.dvc",
    ]
    .iter()
    .map(|f| (f.to_string(), s.read_string(f)))
    .collect()
}

#[test]
fn legacy_repository_is_clean_for_lode() {
    let s = legacy_repo();
    let before = dvc_files(&s);
    let run = s.lode(&["status"]).ok();
    assert_eq!(
        run.stdout.trim(),
        "Data and pipelines are up to date.",
        "{run:?}"
    );
    assert_eq!(
        dvc_files(&s),
        before,
        "status must not rewrite legacy .dvc files"
    );
}

#[test]
fn lode_checkout_restores_legacy_outputs_byte_for_byte() {
    let s = legacy_repo();
    let before = dvc_files(&s);
    for out in OUTPUTS {
        let p = s.join(out);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("remove dir");
        } else {
            std::fs::remove_file(&p).expect("remove file");
        }
    }
    let run = s.lode(&["checkout"]).ok();
    for out in OUTPUTS {
        assert!(
            run.stdout.contains(out),
            "checkout should report {out}: {run:?}"
        );
    }
    for out in ["data.csv", "run.sh", "bin ary.dat"] {
        assert_eq!(
            s.read(out),
            std::fs::read(fixture().join(out)).expect("fixture"),
            "{out}"
        );
    }
    assert_eq!(
        files_under(&s.join("images")),
        files_under(&fixture().join("images"))
    );
    let mode = std::fs::metadata(s.join("run.sh"))
        .expect("stat")
        .permissions()
        .mode();
    assert_ne!(
        mode & 0o100,
        0,
        "isexec output must come back executable, mode {mode:o}"
    );
    // CRLF bytes survive: the legacy object keeps raw bytes under its dos2unix name.
    assert_eq!(s.read("data.csv"), b"a,b\r\n1,2\r\n");
    assert_eq!(dvc_files(&s), before);
    let run = s.lode(&["status"]).ok();
    assert_eq!(run.stdout.trim(), "Data and pipelines are up to date.");
}

#[test]
fn changed_legacy_file_is_migrated_like_dvc3() {
    let s = legacy_repo();
    std::fs::remove_file(s.join("data.csv")).expect("unlink");
    s.write("data.csv", b"a,b\r\n1,2\r\n3,4\r\n");
    s.lode(&["add", "data.csv"]).ok();
    // DVC 3 keeps the entry's layout and appends the new key at the end of the mapping.
    let hex = md5_hex(b"a,b\r\n1,2\r\n3,4\r\n");
    assert_eq!(
        s.read_string("data.csv.dvc"),
        format!("outs:\n- md5: {hex}\n  size: 15\n  path: data.csv\n  hash: md5\n")
    );
    let obj = s.join(&format!(".dvc/cache/files/md5/{}/{}", &hex[..2], &hex[2..]));
    assert_eq!(
        std::fs::read(&obj).expect("DVC 3 cache object"),
        b"a,b\r\n1,2\r\n3,4\r\n"
    );
    // The other legacy entries are untouched.
    assert_eq!(
        s.read_string("run.sh.dvc"),
        std::fs::read_to_string(fixture().join("run.sh.dvc")).expect("fixture")
    );
    let run = s.lode(&["status"]).ok();
    assert_eq!(run.stdout.trim(), "Data and pipelines are up to date.");
}

#[test]
fn dvc3_agrees_with_lode_on_the_legacy_repository() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let s = legacy_repo();
    for out in OUTPUTS {
        let p = s.join(out);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("remove dir");
        } else {
            std::fs::remove_file(&p).expect("remove file");
        }
    }
    s.lode(&["checkout"]).ok();
    let run = s.run(&dvc, &["status"]).ok();
    assert!(
        run.stdout.contains("up to date"),
        "dvc status after lode checkout: {run:?}"
    );
    std::fs::remove_file(s.join("data.csv")).expect("unlink");
    s.write("data.csv", b"x,y\r\n");
    s.lode(&["add", "data.csv"]).ok();
    let run = s.run(&dvc, &["status"]).ok();
    assert!(
        run.stdout.contains("up to date"),
        "dvc status after lode migrated data.csv: {run:?}"
    );
}
