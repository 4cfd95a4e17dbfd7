//! `lode checkout`: restoring outputs from the cache, DVC's change lines, refusing to lose unsaved
//! work, exact directory contents, missing cache objects and link types.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use lode_e2e::repo::Scratch;

fn repo() -> Scratch {
    let s = Scratch::git();
    s.lode(&["init"]).ok();
    s
}

fn tree(s: &Scratch, rel: &str) -> Vec<(String, Vec<u8>)> {
    let root = s.join(rel);
    let mut out: Vec<_> = walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.path() != root)
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(&root)
                .expect("rel")
                .to_string_lossy()
                .into_owned();
            let bytes = if e.file_type().is_file() {
                std::fs::read(e.path()).expect("read")
            } else {
                b"<dir>".to_vec()
            };
            (rel, bytes)
        })
        .collect();
    out.sort();
    out
}

fn sample(s: &Scratch) {
    s.write("data.csv", b"a,b\r\n1,2\r\n");
    s.write("images/a.txt", b"a\n");
    s.write("images/sub/b.txt", b"b\n");
    s.write("images/\u{65e5}\u{672c} x.txt", b"jp\n");
    s.write("run.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(s.join("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    s.lode(&["add", "data.csv", "images", "run.sh"]).ok();
}

#[test]
fn checkout_restores_deleted_outputs() {
    let s = repo();
    sample(&s);
    let images = tree(&s, "images");
    std::fs::remove_file(s.join("data.csv")).expect("rm");
    std::fs::remove_file(s.join("run.sh")).expect("rm");
    std::fs::remove_dir_all(s.join("images")).expect("rm");
    let run = s.lode(&["checkout"]).ok();
    assert_eq!(
        run.stdout,
        "A       data.csv\nA       images/\nA       run.sh\n"
    );
    assert_eq!(s.read("data.csv"), b"a,b\r\n1,2\r\n");
    assert_eq!(tree(&s, "images"), images);
    let m = |p: &str| std::fs::metadata(s.join(p)).expect("stat").mode() & 0o777;
    let umask_default = m("data.csv");
    assert_eq!(
        umask_default & 0o200,
        0o200,
        "workspace copies are writable"
    );
    assert_eq!(
        m("run.sh"),
        umask_default | 0o100,
        "isexec adds the owner x bit"
    );
    assert_eq!(m("images/a.txt"), umask_default);
    // Nothing to do now, and status agrees.
    assert_eq!(s.lode(&["checkout"]).ok().stdout, "");
    assert_eq!(
        s.lode(&["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
}

#[test]
fn checkout_needs_force_to_drop_unsaved_changes() {
    let s = repo();
    sample(&s);
    let images = tree(&s, "images");
    s.write("data.csv", b"changed\n");
    s.write("images/a.txt", b"zz\n");
    s.write("images/new.txt", b"new\n");
    std::fs::create_dir_all(s.join("images/extra/deeper")).expect("mkdir");
    let run = s.lode(&["checkout"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "ERROR: Can't remove the following unsaved files without confirmation. Use `--force` to force.\n{}\n{}\n{}\n",
            s.join("data.csv").display(),
            s.join("images/a.txt").display(),
            s.join("images/new.txt").display()
        )
    );
    assert_eq!(s.read("data.csv"), b"changed\n");
    assert_eq!(s.read("images/new.txt"), b"new\n");

    let run = s.lode(&["checkout", "--force"]).ok();
    assert_eq!(run.stdout, "M       data.csv\nM       images/\n");
    assert_eq!(s.read("data.csv"), b"a,b\r\n1,2\r\n");
    // The folder matches its manifest exactly: extra files and empty folders are gone.
    assert_eq!(tree(&s, "images"), images);
}

#[test]
fn content_already_in_the_cache_is_replaced_without_force() {
    let s = repo();
    s.write("a.txt", b"one\n");
    s.lode(&["add", "a.txt"]).ok();
    let v1 = s.read_string("a.txt.dvc");
    s.write("a.txt", b"two\n");
    s.lode(&["add", "a.txt"]).ok();
    // Going back to v1: the workspace's v2 is saved in the cache, so nothing is lost.
    s.write("a.txt.dvc", &v1);
    let run = s.lode(&["checkout", "a.txt"]).ok();
    assert_eq!(run.stdout, "M       a.txt\n");
    assert_eq!(s.read("a.txt"), b"one\n");
}

#[test]
fn missing_cache_objects_fail_only_their_outputs() {
    let s = repo();
    sample(&s);
    // Remove the object of data.csv (b202...) from the cache and all three outputs from the workspace.
    let obj = s.join(".dvc/cache/files/md5/b2/02f333fba4fd38d4b8e5e693077aab");
    std::fs::remove_file(&obj).expect("rm object");
    std::fs::remove_file(s.join("data.csv")).expect("rm");
    std::fs::remove_file(s.join("run.sh")).expect("rm");
    std::fs::remove_dir_all(s.join("images")).expect("rm");
    let run = s.lode(&["checkout"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert_eq!(run.stdout, "A       images/\nA       run.sh\n");
    assert_eq!(
        run.stderr,
        "ERROR: Checkout failed for following targets:\ndata.csv\nIs your cache up to date?\n<https://error.dvc.org/missing-files>\n"
    );
    assert!(s.join("run.sh").is_file());
    assert!(!s.join("data.csv").exists());
}

#[test]
fn checkout_rejects_an_invalid_dvc_file_and_unknown_targets() {
    let s = repo();
    sample(&s);
    std::fs::remove_file(s.join("data.csv")).expect("rm");
    let bad = "outs:\n- md5: b202f333fba4fd38d4b8e5e693077aab\n  size: 10\n  hash: md5\n  path: data.csv\n  foo: 1\n";
    s.write("data.csv.dvc", bad);
    let run = s.lode(&["checkout"]);
    assert_eq!(run.code, 255);
    assert_eq!(
        run.stderr,
        "'./data.csv.dvc' validation failed.\n\nextra keys not allowed, in outs -> 0 -> foo, line 2, column 3\n"
    );
    assert!(!s.join("data.csv").exists());
    let run = s.lode(&["checkout", "nonexist"]);
    assert_eq!(run.code, 255);
}

#[test]
fn checkout_of_one_target_leaves_the_rest() {
    let s = repo();
    sample(&s);
    std::fs::remove_file(s.join("data.csv")).expect("rm");
    std::fs::remove_file(s.join("run.sh")).expect("rm");
    let run = s.lode(&["checkout", "run.sh"]).ok();
    assert_eq!(run.stdout, "A       run.sh\n");
    assert!(!s.join("data.csv").exists());
}

#[test]
fn relink_switches_to_the_configured_link_type() {
    let s = repo();
    sample(&s);
    s.write(".dvc/config", b"[cache]\n    type = symlink\n");
    std::fs::remove_file(s.join("run.sh")).expect("rm");
    // As DVC: change lines only for real changes, then a summary line.
    let run = s.lode(&["checkout", "--relink"]).ok();
    assert_eq!(run.stdout, "A       run.sh\nRelinked successfully\n");
    let link = std::fs::read_link(s.join("images/a.txt")).expect("symlink");
    assert!(link.starts_with(s.join(".dvc/cache/files/md5")), "{link:?}");
    assert_eq!(s.read("images/a.txt"), b"a\n");
    assert_eq!(
        s.lode(&["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
}
