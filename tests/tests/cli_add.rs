//! `lode add` and `lode commit` on real files: what they write (`.dvc` files, cache objects and
//! their modes, `.gitignore`), what they print, and how they fail.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use lode_e2e::digest::md5_hex;
use lode_e2e::repo::{assert_no_temp_files, Scratch};

fn repo() -> Scratch {
    let s = Scratch::git();
    s.lode(&["init"]).ok();
    s
}

fn object(s: &Scratch, hex: &str) -> std::path::PathBuf {
    s.join(&format!(".dvc/cache/files/md5/{}/{}", &hex[..2], &hex[2..]))
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
}

#[test]
fn add_file_writes_dvc_file_cache_object_and_gitignore() {
    let s = repo();
    s.write("data.csv", b"a,b\r\n1,2\r\n");
    let run = s.lode(&["add", "data.csv"]).ok();
    assert_eq!(
        run.stdout,
        "\nTo track the changes with git, run:\n\n\tgit add data.csv.dvc .gitignore\n\nTo enable auto staging, run:\n\n\tdvc config core.autostage true\n"
    );
    assert_eq!(
        s.read_string("data.csv.dvc"),
        "outs:\n- md5: b202f333fba4fd38d4b8e5e693077aab\n  size: 10\n  hash: md5\n  path: data.csv\n"
    );
    let obj = object(&s, "b202f333fba4fd38d4b8e5e693077aab");
    assert_eq!(std::fs::read(&obj).expect("object"), b"a,b\r\n1,2\r\n");
    assert_eq!(mode(&obj), 0o444);
    assert_eq!(s.read_string(".gitignore"), "/data.csv\n");
    // The workspace copy stays a normal writable file.
    assert_eq!(mode(&s.join("data.csv")) & 0o200, 0o200);
    let run = s.lode(&["status"]).ok();
    assert_eq!(run.stdout, "Data and pipelines are up to date.\n");
}

#[test]
fn add_directory_writes_sorted_manifest_and_counts() {
    let s = repo();
    s.write("images/Z upper.txt", b"Z\n");
    s.write("images/a.txt", b"hello\n");
    s.write("images/sub/b.txt", b"bb\n");
    s.write("images/\u{e9}.txt", b"e\n");
    s.write("images/empty-file", b"");
    std::fs::create_dir_all(s.join("images/empty/dir")).expect("mkdir");
    s.lode(&["add", "images"]).ok();
    let entries = [
        ("Z upper.txt", &b"Z\n"[..]),
        ("a.txt", b"hello\n"),
        ("empty-file", b""),
        ("sub/b.txt", b"bb\n"),
        ("\\u00e9.txt", b"e\n"),
    ];
    let json = entries
        .iter()
        .map(|(rel, bytes)| {
            format!(
                "{{\"md5\": \"{}\", \"relpath\": \"{rel}\"}}",
                md5_hex(bytes)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let json = format!("[{json}]");
    let dir_hex = md5_hex(json.as_bytes());
    assert_eq!(
        s.read_string("images.dvc"),
        format!(
            "outs:\n- md5: {dir_hex}.dir\n  size: 13\n  nfiles: 5\n  hash: md5\n  path: images\n"
        )
    );
    let manifest = s.join(&format!(
        ".dvc/cache/files/md5/{}/{}.dir",
        &dir_hex[..2],
        &dir_hex[2..]
    ));
    assert_eq!(std::fs::read_to_string(&manifest).expect("manifest"), json);
    assert_eq!(mode(&manifest), 0o444);
    for (_, bytes) in entries {
        assert!(object(&s, &md5_hex(bytes)).is_file());
    }
    assert_eq!(s.read_string(".gitignore"), "/images\n");
    let run = s.lode(&["status"]).ok();
    assert_eq!(run.stdout, "Data and pipelines are up to date.\n");
}

#[test]
fn add_records_executables_and_subdirectory_outputs() {
    let s = repo();
    s.write("run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(s.join("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    s.write("sub/deep/x y.txt", b"xy\n");
    let run = s.lode(&["add", "run.sh", "sub/deep/x y.txt"]).ok();
    assert!(
        run.stdout
            .contains("git add run.sh.dvc .gitignore 'sub/deep/x y.txt.dvc' sub/deep/.gitignore"),
        "{run:?}"
    );
    let hex = md5_hex(b"#!/bin/sh\necho hi\n");
    assert_eq!(
        s.read_string("run.sh.dvc"),
        format!("outs:\n- md5: {hex}\n  size: 18\n  isexec: true\n  hash: md5\n  path: run.sh\n")
    );
    assert_eq!(mode(&s.join("run.sh")) & 0o100, 0o100);
    assert!(s
        .read_string("sub/deep/x y.txt.dvc")
        .ends_with("  path: x y.txt\n"));
    assert_eq!(s.read_string("sub/deep/.gitignore"), "/x y.txt\n");
}

#[test]
fn add_quotes_paths_only_where_yaml_needs_it() {
    let s = repo();
    let cases = [
        ("a: b.txt", "'a: b.txt'"),
        ("123", "'123'"),
        ("#hash.txt", "'#hash.txt'"),
        ("yes", "yes"),
        ("-dash.txt", "-dash.txt"),
        ("it's.txt", "it's.txt"),
        ("\u{e9}.txt", "\u{e9}.txt"),
    ];
    for (name, _) in cases {
        s.write(name, name.as_bytes());
    }
    let names: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    s.lode(&[&["add", "--"][..], &names].concat()).ok();
    for (name, written) in cases {
        let text = s.read_string(&format!("{name}.dvc"));
        assert!(
            text.ends_with(&format!("  path: {written}\n")),
            "{name}: {text}"
        );
    }
    let gi = s.read_string(".gitignore");
    assert!(gi.contains("/\\#hash.txt\n"), "{gi}");
    let run = s.lode(&["status"]).ok();
    assert_eq!(run.stdout, "Data and pipelines are up to date.\n");
}

#[test]
fn readding_a_changed_file_edits_the_dvc_file_in_place() {
    let s = repo();
    s.write("data.csv", b"1\n");
    s.lode(&["add", "data.csv"]).ok();
    let old = s.read_string("data.csv.dvc");
    let edited = format!(
        "# data we track\n{}  desc: the data  # kept\nmeta:\n  owner: me\n",
        old
    );
    s.write("data.csv.dvc", &edited);
    // Unchanged: nothing is rewritten.
    s.lode(&["add", "data.csv"]).ok();
    assert_eq!(s.read_string("data.csv.dvc"), edited);
    s.write("data.csv", b"22\n");
    s.lode(&["add", "data.csv"]).ok();
    let hex = md5_hex(b"22\n");
    assert_eq!(
        s.read_string("data.csv.dvc"),
        format!("# data we track\nouts:\n- md5: {hex}\n  size: 3\n  hash: md5\n  path: data.csv\n  desc: the data  # kept\nmeta:\n  owner: me\n")
    );
    assert_eq!(s.read_string(".gitignore"), "/data.csv\n");
}

#[test]
fn add_refuses_paths_outside_ignored_or_missing() {
    let s = repo();
    let outside = Scratch::new();
    outside.write("x.txt", b"x");
    let p = outside.join("x.txt");
    let run = s.lode(&["add", p.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.starts_with(&format!(
            "ERROR: Cached output(s) outside of DVC project: {}.",
            p.display()
        )),
        "{run:?}"
    );

    let run = s.lode(&["add", "nope.txt"]);
    assert_eq!(run.code, 1);
    assert!(run
        .stderr
        .starts_with("ERROR: output 'nope.txt' does not exist"));

    s.write(".dvcignore", b"# comment\n*.tmp\n");
    s.write("d/x.tmp", b"t");
    let run = s.lode(&["add", "d/x.tmp"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "ERROR: Path '{}' is ignored by .dvcignore:2:*.tmp\n",
            s.join("d/x.tmp").display()
        )
    );
    assert!(!s.join("d/x.tmp.dvc").exists());

    let run = s.lode(&["add", ".dvc/config"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("is ignored by"), "{run:?}");

    s.write("d/s/a", b"a");
    s.write("d/s/.dvcignore", b"q\n");
    let run = s.lode(&["add", "d"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "ERROR: .dvcignore file should not be in collected dir path: '{}'\n",
            s.join("d/s").display()
        )
    );
    assert!(!s.join("d.dvc").exists());
    assert!(!s.join(".gitignore").exists());
}

#[test]
fn add_refuses_a_directory_holding_a_tracked_output() {
    let s = repo();
    s.write("d/s/a", b"a");
    s.lode(&["add", "d/s/a"]).ok();
    let run = s.lode(&["add", "d"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(
        "Cannot add 'd', because it is overlapping with other DVC tracked output: 'd/s/a'."
    ));
    assert!(!s.join("d.dvc").exists());
}

#[test]
fn add_rejects_an_invalid_dvc_file_and_changes_nothing() {
    let s = repo();
    s.write("data.csv", b"1\n");
    let bad =
        "outs:\n- md5: b202f333fba4fd38d4b8e5e693077aab\n  size: 10\n  path: data.csv\n  foo: 1\n";
    s.write("data.csv.dvc", bad);
    let run = s.lode(&["add", "data.csv"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert_eq!(
        run.stderr,
        "'./data.csv.dvc' validation failed.\n\nextra keys not allowed, in outs -> 0 -> foo, line 2, column 3\n"
    );
    assert_eq!(s.read_string("data.csv.dvc"), bad);
    assert!(!s.join(".dvc/cache/files").exists());
}

#[test]
fn hardlink_cache_type_links_the_workspace_to_read_only_objects() {
    let s = repo();
    s.write(
        ".dvc/config",
        b"[cache]\n    type = hardlink\n    shared = group\n",
    );
    s.write("data/a.txt", b"a\n");
    s.write("data/b/c.txt", b"c\n");
    s.lode(&["add", "data"]).ok();
    let obj = object(&s, &md5_hex(b"a\n"));
    assert_eq!(
        std::fs::metadata(s.join("data/a.txt")).expect("stat").ino(),
        std::fs::metadata(&obj).expect("stat").ino()
    );
    assert_eq!(mode(&obj), 0o444);
    // cache.shared = group: setgid, group-writable folders.
    assert_eq!(mode(obj.parent().expect("parent")), 0o2775);
    let run = s.lode(&["status"]).ok();
    assert_eq!(run.stdout, "Data and pipelines are up to date.\n");
}

#[test]
fn commit_records_changes_only_with_force() {
    let s = repo();
    s.write("data.csv", b"1\n");
    s.write("dir/x", b"x\n");
    s.lode(&["add", "data.csv", "dir"]).ok();
    // Nothing changed: nothing to do.
    let run = s.lode(&["commit"]).ok();
    assert_eq!(run.stdout, "");
    s.write("data.csv", b"2\n");
    let before = s.read_string("data.csv.dvc");
    let run = s.lode(&["commit"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        "ERROR: failed to commit - unable to commit changed stage: 'data.csv.dvc'. Use `-f|--force` to force.\n"
    );
    assert_eq!(s.read_string("data.csv.dvc"), before);
    s.write("dir/y", b"y\n");
    s.lode(&["commit", "-f"]).ok();
    let hex = md5_hex(b"2\n");
    assert_eq!(
        s.read_string("data.csv.dvc"),
        format!("outs:\n- md5: {hex}\n  size: 2\n  hash: md5\n  path: data.csv\n")
    );
    assert!(object(&s, &hex).is_file());
    assert!(s.read_string("dir.dvc").contains("  nfiles: 2\n"));
    let run = s.lode(&["status"]).ok();
    assert_eq!(run.stdout, "Data and pipelines are up to date.\n");
    std::fs::remove_file(s.join("data.csv")).expect("rm");
    let run = s.lode(&["commit", "-f"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "ERROR: failed to commit - output 'data.csv' does not exist\n"
    );
}

#[test]
fn add_leaves_no_temp_files_and_is_repeatable() {
    let s = repo();
    for i in 0..200 {
        s.write(
            &format!("many/{}/{i}.bin", i % 7),
            format!("file {i}\n").repeat(i),
        );
    }
    s.lode(&["add", "many"]).ok();
    let first = s.read_string("many.dvc");
    s.lode(&["add", "many"]).ok();
    assert_eq!(s.read_string("many.dvc"), first);
    assert_no_temp_files(&s.join(".dvc/cache"));
}

#[test]
fn adding_a_path_inside_a_tracked_directory_updates_that_directory() {
    let s = repo();
    s.write("d/s/a", b"a\n");
    s.lode(&["add", "d"]).ok();
    s.write("d/s/a", b"changed\n");
    let run = s.lode(&["add", "d/s/a"]).ok();
    assert!(run.stdout.contains("\tgit add d.dvc\n"), "{run:?}");
    assert!(!s.join("d/s/a.dvc").exists());
    assert_eq!(
        s.lode(&["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
}

#[test]
fn large_files_go_through_the_streaming_path() {
    let s = repo();
    // Larger than what is read into memory whole, and not a multiple of the 1 MiB chunk.
    let data: Vec<u8> = (0..(9 << 20) + 4321)
        .map(|i: u32| (i % 253) as u8)
        .collect();
    s.write("big.bin", &data);
    s.lode(&["add", "big.bin"]).ok();
    let hex = md5_hex(&data);
    assert!(s
        .read_string("big.bin.dvc")
        .contains(&format!("- md5: {hex}\n")));
    assert_eq!(std::fs::read(object(&s, &hex)).expect("object"), data);
    std::fs::remove_file(s.join("big.bin")).expect("rm");
    assert_eq!(s.lode(&["checkout"]).ok().stdout, "A       big.bin\n");
    assert_eq!(s.read("big.bin"), data);
}

#[test]
fn autostage_stages_the_files_instead_of_printing_advice() {
    let s = repo();
    s.write(".dvc/config", b"[core]\n    autostage = true\n");
    s.write("data.csv", b"1\n");
    let run = s.lode(&["add", "data.csv"]).ok();
    assert_eq!(run.stdout, "");
    let staged = s
        .run("git", &["diff", "--cached", "--name-only"])
        .ok()
        .stdout;
    assert!(staged.lines().any(|l| l == "data.csv.dvc"), "{staged}");
    assert!(staged.lines().any(|l| l == ".gitignore"), "{staged}");
}
