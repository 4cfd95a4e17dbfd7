//! `lode-server backup` next to a running server taking uploads: the copy passes `fsck`, shares
//! blobs by hard links, and a server started on it serves every object acknowledged before the
//! backup began; destinations that are not new or empty folders are refused untouched.

use lode_e2e::repo::Scratch;
use lode_e2e::server::{sqlite_only, Server};
use lode_e2e::uploads::{assert_served, eventually, Uploads};
use reqwest::blocking::Client;
use std::os::unix::fs::MetadataExt;

fn small_or_large(i: u64) -> usize {
    if i.is_multiple_of(8) {
        1 << 20
    } else {
        16 << 10
    }
}

#[test]
fn a_backup_taken_during_uploads_serves_what_was_acknowledged_before_it() {
    if sqlite_only("backup copies a SQLite index (PostgreSQL's is copied with pg_dump)") {
        return;
    }
    let s = Server::start();
    let token = s.project_with_token("ml", "write");
    let url = s.project_url("ml");
    let uploads = Uploads::start(&url, &token, 4, small_or_large);
    eventually("uploads are acknowledged", || {
        uploads.acknowledged().len() >= 20
    });

    let before = uploads.acknowledged();
    let out = Scratch::new();
    let dest = out.join("backup");
    let run = s.cli(&["backup", dest.to_str().expect("utf-8")]).ok();
    uploads.stop();
    assert!(run.stdout.contains("linked"), "{run:?}");

    // Same filesystem: the blobs are the data folder's own files, linked.
    let (oid, _) = &before[0];
    let rel = format!("blobs/md5/{}/{}", &oid[..2], &oid[2..]);
    let live = std::fs::metadata(s.data_dir().join(&rel)).expect("live blob");
    let copy = std::fs::metadata(dest.join(&rel)).expect("backed-up blob");
    assert_eq!(live.ino(), copy.ino(), "{rel} was not hard-linked");

    let fsck = Server::cli_on(&dest, &["fsck"]);
    assert_eq!(fsck.code, 0, "{fsck:?}");
    assert!(fsck.stdout.contains("no problems found"), "{fsck:?}");

    // Tokens keep working: the signing secret is part of the backup.
    let restored = Server::start_in(Some(&dest), &[]);
    assert_served(&Client::new(), &restored.project_url("ml"), &token, &before);
}

#[test]
fn destinations_that_are_not_new_empty_folders_are_refused_untouched() {
    if sqlite_only("backup copies a SQLite index (PostgreSQL's is copied with pg_dump)") {
        return;
    }
    let s = Server::start();
    s.project_with_token("ml", "write");
    let out = Scratch::new();

    out.write("full/keep.txt", "mine");
    let r = Server::cli_on(
        s.data_dir(),
        &["backup", out.join("full").to_str().unwrap()],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is not empty"), "{r:?}");
    let left: Vec<_> = std::fs::read_dir(out.join("full")).unwrap().collect();
    assert_eq!(left.len(), 1, "the refused destination was written to");
    assert_eq!(out.read_string("full/keep.txt"), "mine");

    out.write("a-file", "x");
    let r = s.cli(&["backup", out.join("a-file").to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is not a folder"), "{r:?}");

    let r = s.cli(&["backup", out.join("no/such/parent").to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("does not exist"), "{r:?}");
    assert!(!out.join("no").exists());

    let inside = s.data_dir().join("backups");
    let r = s.cli(&["backup", inside.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("inside the data folder"), "{r:?}");
    assert!(!inside.exists());

    // An empty folder is fine, and so is a new one.
    std::fs::create_dir(out.join("empty")).unwrap();
    s.cli(&["backup", out.join("empty").to_str().unwrap()]).ok();
    s.cli(&["backup", out.join("new").to_str().unwrap()]).ok();
}

#[test]
fn a_missing_data_folder_is_not_backed_up() {
    let out = Scratch::new();
    let r = Server::cli_on(
        &out.join("nothing-here"),
        &["backup", out.join("b").to_str().unwrap()],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nothing to back up"), "{r:?}");
    assert!(!out.join("b").exists() && !out.join("nothing-here").exists());
}
