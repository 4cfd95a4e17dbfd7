//! `lode status`: DVC's report format, JSON and quiet modes, and that an unchanged tree is judged
//! from the hash cache without reading file contents.

use lode_e2e::repo::Scratch;

fn repo() -> Scratch {
    let s = Scratch::git();
    s.lode(&["init"]).ok();
    s
}

const CLEAN: &str = "Data and pipelines are up to date.\n";

#[test]
fn status_with_nothing_tracked() {
    let s = repo();
    let run = s.lode(&["status"]).ok();
    assert_eq!(
        run.stdout,
        "There are no data or pipelines tracked in this project yet.\nSee <https://dvc.org/doc/start> to get started!\n"
    );
    assert_eq!(s.lode(&["status", "--json"]).ok().stdout, "{}\n");
}

#[test]
fn status_reports_modified_deleted_and_not_in_cache() {
    let s = repo();
    s.write("data.csv", b"1\n");
    s.write("images/a.txt", b"a\n");
    s.write("run.sh", b"r\n");
    s.lode(&["add", "data.csv", "images", "run.sh"]).ok();
    assert_eq!(s.lode(&["status"]).ok().stdout, CLEAN);
    assert_eq!(s.lode(&["status", "-q"]).code, 0);

    s.write("images/new.txt", b"n\n");
    std::fs::remove_file(s.join("data.csv")).expect("rm");
    // run.sh's object: md5("r\n") by the system's md5sum.
    let hex = {
        let out = std::process::Command::new("sh")
            .args(["-c", "printf 'r\\n' | md5sum"])
            .output()
            .expect("md5sum");
        String::from_utf8(out.stdout).expect("utf-8")[..32].to_string()
    };
    let run_obj = s.join(&format!(".dvc/cache/files/md5/{}/{}", &hex[..2], &hex[2..]));
    std::fs::remove_file(&run_obj).expect("rm object");

    let run = s.lode(&["status"]).ok();
    assert_eq!(
        run.stdout,
        "data.csv.dvc:\n\tchanged outs:\n\t\tdeleted:            data.csv\n\
         images.dvc:\n\tchanged outs:\n\t\tmodified:           images\n\
         run.sh.dvc:\n\tchanged outs:\n\t\tnot in cache:       run.sh\n"
    );
    let run = s.lode(&["status", "--json"]).ok();
    assert_eq!(
        run.stdout,
        "{\"data.csv.dvc\": [{\"changed outs\": {\"data.csv\": \"deleted\"}}], \"images.dvc\": [{\"changed outs\": {\"images\": \"modified\"}}], \"run.sh.dvc\": [{\"changed outs\": {\"run.sh\": \"not in cache\"}}]}\n"
    );
    let run = s.lode(&["status", "-q"]);
    assert_eq!((run.code, run.stdout.as_str()), (1, ""));
    // Targets narrow the report; a path inside a tracked folder names that folder's .dvc file.
    let run = s.lode(&["status", "images/a.txt"]).ok();
    assert_eq!(
        run.stdout,
        "images.dvc:\n\tchanged outs:\n\t\tmodified:           images\n"
    );
    let run = s.lode(&["status", "data.csv.dvc"]).ok();
    assert!(run.stdout.starts_with("data.csv.dvc:\n"));
}

#[test]
fn status_paths_are_relative_to_the_working_directory() {
    let s = repo();
    s.write("dd/b", b"b\n");
    s.write("a", b"a\n");
    s.lode(&["add", "a", "dd"]).ok();
    s.write("dd/c", b"c\n");
    std::fs::remove_file(s.join("a")).expect("rm");
    let run = s.run_in("dd", lode_e2e::bins::lode(), &["status"]).ok();
    assert_eq!(
        run.stdout,
        "../a.dvc:\n\tchanged outs:\n\t\tdeleted:            ../a\n\
         ../dd.dvc:\n\tchanged outs:\n\t\tmodified:           .\n"
    );
}

#[test]
fn status_rejects_an_invalid_dvc_file() {
    let s = repo();
    s.write("x", b"x");
    s.lode(&["add", "x"]).ok();
    let bad = "outs:\n- md5: 9dd4e461268c8034f5c8564e155c67a6\n  size: 1\n  hash: md5\n  path: x\n  files:\n  - relpath: x\n    bar: 2\nfoo: 1\n";
    s.write("x.dvc", bad);
    let run = s.lode(&["status"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        "'./x.dvc' validation failed: 2 errors.\n\n\
         extra keys not allowed, in outs -> 0 -> files -> 0 -> bar, line 7, column 5\n\n\
         extra keys not allowed, in foo\n"
    );
    s.write("x.dvc", "outs:\n- md5: a\n  size: [10\n");
    let run = s.lode(&["status"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("'./x.dvc' is invalid.\n\n"),
        "{run:?}"
    );
    assert_eq!(s.read_string("x.dvc"), "outs:\n- md5: a\n  size: [10\n");
}

/// Rewrites a file's bytes in place, keeping its inode, size and mtime: only a tool that reads
/// contents can notice.
fn rewrite_keeping_stat(path: &std::path::Path, bytes: &[u8]) {
    let meta = std::fs::metadata(path).expect("stat");
    let mtime = meta.modified().expect("mtime");
    let mut perms = meta.permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).expect("chmod");
    std::fs::write(path, bytes).expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(mtime).expect("set mtime");
}

#[test]
fn unchanged_files_are_not_read_again() {
    let s = repo();
    s.write("big.bin", b"original content");
    s.write("tree/a.txt", b"aaaa");
    s.write("tree/sub/b.txt", b"bbbb");
    // Files modified moments ago are re-read anyway (their mtime can't vouch for them yet).
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
    for f in ["big.bin", "tree/a.txt", "tree/sub/b.txt"] {
        let h = std::fs::File::options()
            .write(true)
            .open(s.join(f))
            .expect("open");
        h.set_modified(past).expect("set mtime");
    }
    s.lode(&["add", "big.bin", "tree"]).ok();
    rewrite_keeping_stat(&s.join("big.bin"), b"ORIGINAL CONTENT");
    rewrite_keeping_stat(&s.join("tree/sub/b.txt"), b"BBBB");
    // Same inode, size and mtime: the hash cache answers, as it does for DVC.
    assert_eq!(s.lode(&["status"]).ok().stdout, CLEAN);
    // A changed mtime makes lode read the file and notice.
    let f = std::fs::File::options()
        .write(true)
        .open(s.join("tree/sub/b.txt"))
        .expect("open");
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .expect("mtime");
    let run = s.lode(&["status"]).ok();
    assert_eq!(
        run.stdout,
        "tree.dvc:\n\tchanged outs:\n\t\tmodified:           tree\n"
    );
}

#[test]
fn a_damaged_hash_cache_is_rebuilt() {
    let s = repo();
    s.write("f", b"f\n");
    s.lode(&["add", "f"]).ok();
    let hc = s.join(".dvc/tmp/lode-hashes");
    assert!(hc.is_dir());
    for e in std::fs::read_dir(&hc).expect("ls") {
        let p = e.expect("entry").path();
        if p.is_file() {
            std::fs::write(&p, b"garbage").expect("clobber");
        }
    }
    let run = s.lode(&["status"]).ok();
    assert_eq!(run.stdout, CLEAN);
    assert_eq!(s.lode(&["status"]).ok().stdout, CLEAN);
}

#[test]
fn a_remembered_complete_directory_notices_a_removed_object() {
    let s = repo();
    s.write("images/a.txt", b"a\n");
    s.write("images/b.txt", b"b\n");
    s.lode(&["add", "images"]).ok();
    // Past the racy window the cache folders' times can vouch for the verdict, which is kept.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.lode(&["status"]).ok().stdout, CLEAN);
    assert_eq!(s.lode(&["status"]).ok().stdout, CLEAN);

    let hex = lode_e2e::digest::md5_hex(b"a\n");
    let obj = s.join(&format!(".dvc/cache/files/md5/{}/{}", &hex[..2], &hex[2..]));
    std::fs::remove_file(&obj).expect("rm object");
    let not_in_cache = "images.dvc:\n\tchanged outs:\n\t\tnot in cache:       images\n";
    assert_eq!(s.lode(&["status"]).ok().stdout, not_in_cache);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.lode(&["status"]).ok().stdout, not_in_cache);

    // Storing the object again makes the directory complete again.
    s.lode(&["commit", "-f", "images"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.lode(&["status"]).ok().stdout, CLEAN);
    assert_eq!(s.lode(&["status"]).ok().stdout, CLEAN);
}
