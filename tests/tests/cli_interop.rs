//! lode and real DVC 3 on the same repositories: what `lode add` writes is what `dvc add` writes
//! (byte for byte: `.dvc` files, `.dir` objects, `.gitignore`, cache paths and modes), and each
//! tool calls the other's work clean and checks it out.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lode_e2e::repo::Scratch;

/// Outputs of the sample workspace, as given to `add`.
const OUTPUTS: &[&str] = &[
    "data.csv",
    "images",
    "run.sh",
    "sub/deep/x y.txt",
    "\u{e9}t\u{e9}.txt",
    "a: b.txt",
    "123",
    "empty-dir",
];

fn write_sample(s: &Scratch) {
    s.write("data.csv", b"a,b\r\n1,2\r\n");
    s.write("images/Z upper.txt", b"Z\n");
    s.write("images/a.txt", b"hello\n");
    s.write("images/c.bin", [0u8, 1, 2, 255]);
    s.write("images/sub dir/b.txt", b"b\r\n");
    s.write("images/\u{e9}.txt", b"e\n");
    s.write("images/\u{65e5}\u{672c}.txt", b"jp\n");
    s.write("images/deep/er/x.bin", b"x");
    s.write("images/deep/empty-file", b"");
    s.write("images/tool.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(
        s.join("images/tool.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    std::fs::create_dir_all(s.join("images/empty")).expect("mkdir");
    s.write("run.sh", b"#!/bin/sh\necho run\n");
    std::fs::set_permissions(s.join("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    s.write("sub/deep/x y.txt", b"xy\n");
    s.write("\u{e9}t\u{e9}.txt", b"summer\n");
    s.write("a: b.txt", b"colon\n");
    s.write("123", b"number\n");
    std::fs::create_dir_all(s.join("empty-dir")).expect("mkdir");
}

/// Every file under `dir` except Git's and the tools' private state: relative path, mode, bytes.
fn snapshot(dir: &Path, skip: &[&str]) -> Vec<(String, u32, Vec<u8>)> {
    let mut out: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(dir).expect("rel");
            !skip.iter().any(|s| rel.starts_with(s))
        })
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .expect("rel")
                .to_string_lossy()
                .into_owned();
            let mode = e.metadata().expect("stat").permissions().mode() & 0o7777;
            (rel, mode, std::fs::read(e.path()).expect("read"))
        })
        .collect();
    out.sort();
    out
}

const PRIVATE: &[&str] = &[
    ".git",
    ".dvc/tmp",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
];

fn dvc_repo(dvc: &Path) -> Scratch {
    let s = Scratch::git();
    s.run(dvc, &["init", "-q"]).ok();
    s
}

fn lode_repo() -> Scratch {
    let s = Scratch::git();
    s.lode(&["init"]).ok();
    s
}

fn remove_outputs(s: &Scratch) {
    for out in OUTPUTS {
        let p = s.join(out);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("rm dir");
        } else {
            std::fs::remove_file(&p).expect("rm file");
        }
    }
}

fn add_args() -> Vec<&'static str> {
    let mut v = vec!["add"];
    v.extend_from_slice(OUTPUTS);
    v
}

#[test]
fn lode_add_writes_exactly_what_dvc_add_writes() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let d = dvc_repo(&dvc);
    let l = lode_repo();
    write_sample(&d);
    write_sample(&l);
    d.run(&dvc, &add_args()).ok();
    l.lode(&add_args()).ok();
    let (ds, ls) = (snapshot(d.path(), PRIVATE), snapshot(l.path(), PRIVATE));
    let names = |v: &[(String, u32, Vec<u8>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ls), names(&ds));
    for (a, b) in ls.iter().zip(&ds) {
        assert_eq!(a, b, "{} differs", a.0);
    }
    // DVC agrees that lode's repository is clean, and checks it out.
    let run = l.run(&dvc, &["status"]).ok();
    assert_eq!(run.stdout, "Data and pipelines are up to date.\n");
    let before = snapshot(l.path(), &[".git", ".dvc"]);
    remove_outputs(&l);
    l.run(&dvc, &["checkout"]).ok();
    let after = snapshot(l.path(), &[".git", ".dvc"]);
    let strip = |v: Vec<(String, u32, Vec<u8>)>| {
        v.into_iter()
            .filter(|x| !x.0.starts_with("images/tool.sh"))
            .map(|x| (x.0, x.2))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(after), strip(before));
}

#[test]
fn lode_reads_and_restores_what_dvc_add_wrote() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let d = dvc_repo(&dvc);
    write_sample(&d);
    d.run(&dvc, &add_args()).ok();
    let run = d.lode(&["status"]).ok();
    assert_eq!(run.stdout, "Data and pipelines are up to date.\n");
    let reference = Scratch::new();
    write_sample(&reference);
    let dvc_files = snapshot(d.path(), &[".git", ".dvc/tmp"])
        .into_iter()
        .filter(|x| x.0.ends_with(".dvc") || x.0.ends_with(".gitignore"))
        .collect::<Vec<_>>();

    remove_outputs(&d);
    let run = d.lode(&["checkout"]).ok();
    for out in ["data.csv", "images/", "run.sh", "sub/deep/x y.txt", "123"] {
        assert!(
            run.stdout.lines().any(|l| l == format!("A       {out}")),
            "{out} in {run:?}"
        );
    }
    // Byte for byte, empty folders of tracked directories aside (DVC does not record them).
    let contents = |s: &Path| {
        snapshot(s, &[".git", ".dvc", ".dvcignore"])
            .into_iter()
            .filter(|x| !x.0.ends_with(".dvc") && !x.0.ends_with(".gitignore"))
            .map(|x| (x.0, x.2))
            .collect::<Vec<_>>()
    };
    assert_eq!(contents(d.path()), contents(reference.path()));
    let mode = |p: &str| {
        std::fs::metadata(d.join(p))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("run.sh") & 0o100, 0o100, "isexec output is executable");
    assert_eq!(
        mode("images/tool.sh") & 0o111,
        0,
        "exec bits inside folders are not recorded"
    );
    assert!(d.join("empty-dir").is_dir());
    // lode changed no .dvc or .gitignore file, and both tools call the result clean.
    let dvc_files_after = snapshot(d.path(), &[".git", ".dvc/tmp"])
        .into_iter()
        .filter(|x| x.0.ends_with(".dvc") || x.0.ends_with(".gitignore"))
        .collect::<Vec<_>>();
    assert_eq!(dvc_files_after, dvc_files);
    assert_eq!(
        d.lode(&["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
    assert_eq!(
        d.run(&dvc, &["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
}

#[test]
fn lode_and_dvc_report_the_same_changes() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let l = lode_repo();
    write_sample(&l);
    l.lode(&add_args()).ok();
    l.write("images/a.txt", b"changed\n");
    let lode = l.lode(&["status"]).ok();
    let real = l.run(&dvc, &["status"]).ok();
    assert_eq!(lode.stdout, real.stdout);
    assert_eq!(
        lode.stdout,
        "images.dvc:\n\tchanged outs:\n\t\tmodified:           images\n"
    );
    // After dvc commits the change, lode agrees the repository is clean again.
    l.run(&dvc, &["commit", "-f", "images.dvc"]).ok();
    assert_eq!(
        l.lode(&["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
    let lode = l.lode(&["status", "--json"]).ok();
    let real = l.run(&dvc, &["status", "--json"]).ok();
    assert_eq!(lode.stdout.trim(), real.stdout.trim());
}

#[test]
fn dvc_accepts_a_directory_lode_checked_out_after_changes() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let l = lode_repo();
    write_sample(&l);
    l.lode(&add_args()).ok();
    l.write("images/new.txt", b"new\n");
    std::fs::remove_file(l.join("images/a.txt")).expect("rm");
    l.lode(&["checkout", "--force"]).ok();
    assert_eq!(
        l.run(&dvc, &["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
    let p: PathBuf = l.join("images/new.txt");
    assert!(!p.exists());
}
