//! `lode gc` against real `dvc gc`: identical copies of one repository, collected by each tool,
//! must keep exactly the same cache objects and print the same summary.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lode_e2e::dvc;
use lode_e2e::repo::{Run, Scratch};

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let rel = entry.path().strip_prefix(from).expect("relative");
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// A copy of `s` in a new scratch folder.
fn clone(s: &Scratch) -> Scratch {
    let c = Scratch::new();
    copy_tree(s.path(), c.path());
    c
}

/// Every object file in the cache, relative to `.dvc/cache`, sorted.
fn cache_objects(s: &Scratch) -> Vec<String> {
    let cache = s.join(".dvc/cache");
    if !cache.exists() {
        return Vec::new();
    }
    let mut out: Vec<String> = walkdir::WalkDir::new(&cache)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(&cache)
                .expect("relative")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

fn with_stdin(s: &Scratch, program: &Path, args: &[&str], input: &str) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(s.path())
        .env("DVC_NO_ANALYTICS", "1")
        .env("DVC_NO_UPDATER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait").into()
}

struct History {
    repo: Scratch,
    dvc: PathBuf,
}

fn write_and_add(s: &Scratch, dvc: &Path, rel: &str, content: &str) {
    s.write(rel, content);
    s.run(dvc, &["add", "-q", rel]).ok();
}

fn commit(s: &Scratch, msg: &str) {
    s.run("git", &["add", "-A"]).ok();
    s.run("git", &["commit", "-qm", msg]).ok();
}

/// main: c1 (data v1, images with 2 files; tag v1) → c2 (data v2, images + 1 file) → c3 (data
/// v2b); branch `feature` from c1 with data v3; workspace: data v4 not committed; an `orphan`
/// added and then untracked.
fn history() -> Option<History> {
    let dvc = dvc::require()?;
    let s = Scratch::git();
    s.run(&dvc, &["init", "-q"]).ok();
    write_and_add(&s, &dvc, "orphan.txt", "orphan\n");
    std::fs::remove_file(s.join("orphan.txt.dvc")).expect("untrack orphan");
    std::fs::remove_file(s.join("orphan.txt")).expect("rm orphan");
    s.write("images/a.txt", "a\n");
    s.write("images/sub/b.txt", "b\n");
    s.run(&dvc, &["add", "-q", "images"]).ok();
    write_and_add(&s, &dvc, "data.txt", "v1\n");
    commit(&s, "c1");
    s.run("git", &["tag", "-a", "v1", "-m", "v1"]).ok();
    s.write("images/c.txt", "c\n");
    s.run(&dvc, &["add", "-q", "images"]).ok();
    write_and_add(&s, &dvc, "data.txt", "v2\n");
    commit(&s, "c2");
    write_and_add(&s, &dvc, "data.txt", "v2b\n");
    commit(&s, "c3");
    s.run("git", &["checkout", "-q", "-b", "feature", "v1"])
        .ok();
    s.run(&dvc, &["checkout", "-q"]).ok();
    write_and_add(&s, &dvc, "data.txt", "v3\n");
    commit(&s, "feature");
    s.run("git", &["checkout", "-q", "main"]).ok();
    s.run(&dvc, &["checkout", "-q", "--force"]).ok();
    write_and_add(&s, &dvc, "data.txt", "v4\n");
    Some(History { repo: s, dvc })
}

/// Runs `gc` with `args` on two copies, one with each tool; checks they agree and returns what
/// is left in the cache.
fn gc_both(h: &History, args: &[&str]) -> (Vec<String>, Run) {
    let d = clone(&h.repo);
    let l = clone(&h.repo);
    let before = cache_objects(&l);
    let dr = d.run(&h.dvc, args);
    let lr = l.lode(args);
    assert_eq!(
        (lr.code, lr.stdout.as_str(), lr.stderr.trim_end()),
        (dr.code, dr.stdout.as_str(), dr.stderr.trim_end()),
        "gc {args:?}"
    );
    let left = cache_objects(&l);
    assert_eq!(left, cache_objects(&d), "objects kept by gc {args:?}");
    assert!(left.len() <= before.len());
    (left, lr)
}

fn md5_of(content: &str) -> String {
    let out = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("stdin")
                .write_all(content.as_bytes())?;
            c.wait_with_output()
        })
        .expect("md5sum");
    String::from_utf8_lossy(&out.stdout)[..32].to_string()
}

fn key(content: &str) -> String {
    let h = md5_of(content);
    format!("files/md5/{}/{}", &h[..2], &h[2..])
}

#[test]
fn workspace_keeps_only_what_the_workspace_uses() {
    let Some(h) = history() else { return };
    let (left, run) = gc_both(&h, &["gc", "-w", "-f"]);
    assert!(run.stdout.starts_with("Removed "), "{}", run.stdout);
    assert!(run
        .stdout
        .ends_with("No unused 'legacy' cache to remove.\n"));
    assert_eq!(
        run.stderr.trim_end(),
        "WARNING: This will remove all cache except items used in the workspace of the current repo."
    );
    assert!(left.contains(&key("v4\n")));
    for gone in ["v1\n", "v2\n", "v2b\n", "v3\n", "orphan\n"] {
        assert!(!left.contains(&key(gone)), "{gone:?} should be collected");
    }
    // Every entry of the workspace's images/ manifest is kept.
    for kept in ["a\n", "b\n", "c\n"] {
        assert!(left.contains(&key(kept)));
    }
    // Running again finds nothing more.
    let again = Scratch::new();
    copy_tree(h.repo.path(), again.path());
    again.lode(&["gc", "-w", "-f"]).ok();
    let r = again.lode(&["gc", "-w", "-f"]).ok();
    assert_eq!(
        r.stdout,
        "No unused 'repo' cache to remove.\nNo unused 'legacy' cache to remove.\n"
    );
}

#[test]
fn history_scopes_match_dvc() {
    let Some(h) = history() else { return };
    let (left, _) = gc_both(&h, &["gc", "-a", "-f"]);
    for (content, kept) in [
        ("v4\n", true),
        ("v2b\n", true),
        ("v3\n", true),
        ("v1\n", false),
        ("v2\n", false),
    ] {
        assert_eq!(left.contains(&key(content)), kept, "-a: {content:?}");
    }
    let (left, _) = gc_both(&h, &["gc", "-T", "-f"]);
    for (content, kept) in [
        ("v4\n", true),
        ("v1\n", true),
        ("v2b\n", false),
        ("v3\n", false),
    ] {
        assert_eq!(left.contains(&key(content)), kept, "-T: {content:?}");
    }
    let (left, _) = gc_both(&h, &["gc", "-A", "-f"]);
    for content in ["v1\n", "v2\n", "v2b\n", "v3\n", "v4\n", "a\n", "b\n", "c\n"] {
        assert!(left.contains(&key(content)), "-A: {content:?}");
    }
    assert!(!left.contains(&key("orphan\n")));
    let (left, _) = gc_both(&h, &["gc", "--rev", "main", "-n", "2", "-f"]);
    for (content, kept) in [
        ("v4\n", true),
        ("v2b\n", true),
        ("v2\n", true),
        ("v1\n", false),
        ("v3\n", false),
    ] {
        assert_eq!(
            left.contains(&key(content)),
            kept,
            "--rev main -n 2: {content:?}"
        );
    }
    gc_both(&h, &["gc", "--rev", "v1", "-f"]);
    gc_both(&h, &["gc", "-a", "-n", "2", "-f"]);
    gc_both(&h, &["gc", "-a", "-T", "-n", "3", "-f"]);
    gc_both(&h, &["gc", "-w", "-n", "2", "-f"]);
    gc_both(&h, &["gc", "-a", "-T", "-f"]);
    gc_both(&h, &["gc", "-w", "--all-commits", "-f"]);
}

#[test]
fn dry_run_removes_nothing() {
    let Some(h) = history() else { return };
    let l = clone(&h.repo);
    let before = cache_objects(&l);
    let r = l.lode(&["gc", "-w", "--dry"]).ok();
    assert!(r.stdout.contains("Removing "));
    assert_eq!(cache_objects(&l), before);
}

#[test]
fn legacy_cache_is_collected_by_its_own_hashes() {
    let Some(dvc) = dvc::require() else { return };
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/dvc2-legacy");
    let base = Scratch::git();
    copy_tree(&fixture, base.path());
    for entry in walkdir::WalkDir::new(base.join(".dvc/cache")) {
        let entry = entry.expect("walk");
        if entry.file_type().is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o444))
                .expect("chmod");
        }
    }
    // An unused legacy object, and a DVC 3 object whose name matches a used legacy one: the
    // kinds are separate namespaces, so it is unused.
    base.write(".dvc/cache/00/112233445566778899aabbccddeeff", "junk\n");
    let used_legacy = walkdir::WalkDir::new(base.join(".dvc/cache"))
        .into_iter()
        .map(|e| e.expect("walk"))
        .find(|e| e.file_type().is_file() && !e.path().to_string_lossy().contains("/00/"))
        .expect("a legacy object");
    let rel = used_legacy
        .path()
        .strip_prefix(base.join(".dvc/cache"))
        .expect("rel")
        .to_string_lossy()
        .into_owned();
    base.write(
        &format!(".dvc/cache/files/md5/{rel}"),
        "not the same bytes\n",
    );
    base.run("git", &["add", "-A"]).ok();
    base.run("git", &["commit", "-qm", "fixture"]).ok();
    let h = History { repo: base, dvc };
    let (left, run) = gc_both(&h, &["gc", "-w", "-f"]);
    assert_eq!(
        run.stdout,
        "Removed 1 objects from repo cache.\nRemoved 1 objects from legacy cache.\n"
    );
    assert!(left.contains(&rel));
    assert!(!left.iter().any(|p| p.starts_with("files/")));
}

#[test]
fn prompt_and_scope_errors() {
    let Some(h) = history() else { return };
    let lode = lode_e2e::bins::lode();
    for program in [h.dvc.as_path(), lode.as_path()] {
        let s = clone(&h.repo);
        let before = cache_objects(&s);
        let r = with_stdin(&s, program, &["gc", "-w"], "n\n");
        assert_eq!(r.code, 1, "{program:?}: {}", r.stderr);
        assert_eq!(r.stdout, "Are you sure you want to proceed? [y/n]: ");
        assert_eq!(cache_objects(&s), before);

        let r = with_stdin(&s, program, &["gc", "-w"], "maybe\ny\n");
        assert_eq!(r.code, 0, "{program:?}: {}", r.stderr);
        assert!(r.stdout.starts_with(
            "Are you sure you want to proceed? [y/n]: Your response must be one of: ['yes', 'no', 'y', 'n']. Please try again.\nAre you sure you want to proceed? [y/n]: Removed "
        ), "{program:?}: {}", r.stdout);
        assert!(cache_objects(&s).len() < before.len());

        let r = s.run(program, &["gc"]);
        assert_eq!(r.code, 255);
        assert_eq!(
            r.stderr.trim_end(),
            "ERROR: Either of `-w|--workspace`, `-a|--all-branches`, `-T|--all-tags` `--all-experiments`, `--all-commits`, `--date` or `--rev` needs to be set."
        );
        let r = s.run(program, &["gc", "-w", "-c", "-f"]);
        assert_eq!(r.code, 251, "{program:?}");
        assert!(r.stderr.contains("no remote specified in"), "{}", r.stderr);
    }
    // Quiet: no warning and no summary, but the question is still asked.
    let s = clone(&h.repo);
    let r = with_stdin(&s, &lode, &["gc", "-w", "-q"], "y\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Are you sure you want to proceed? [y/n]: ");
    assert_eq!(r.stderr, "");
    let outside = Scratch::new();
    let r = outside.lode(&["gc", "-w", "-f"]);
    assert_eq!(r.code, 253);
}

#[test]
fn cloud_gc_on_a_folder_remote_matches_dvc() {
    let Some(h) = history() else { return };
    h.repo
        .run(&h.dvc, &["remote", "add", "-d", "r", "store"])
        .ok();
    // The remote holds everything the cache holds, garbage included.
    copy_tree(
        &h.repo.join(".dvc/cache/files"),
        &h.repo.join("store/files"),
    );
    let objects = |s: &Scratch| -> Vec<String> {
        let mut v: Vec<String> = walkdir::WalkDir::new(s.join("store"))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                e.path()
                    .strip_prefix(s.path())
                    .expect("rel")
                    .display()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    };
    let before = objects(&h.repo);
    let (d, l) = (clone(&h.repo), clone(&h.repo));
    let dr = d.run(&h.dvc, &["gc", "-w", "-c", "-f"]);
    let lr = l.lode(&["gc", "-w", "-c", "-f"]);
    assert_eq!(lr.code, dr.code, "{}", lr.stderr);
    // The local part of the summary is DVC's; DVC then prints one remote line per layout.
    let local = |out: &str| out.lines().take(2).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(local(&lr.stdout), local(&dr.stdout));
    assert_eq!(objects(&l), objects(&d));
    assert!(objects(&l).len() < before.len());
    assert_eq!(cache_objects(&l), cache_objects(&d));
}

/// Outputs of DVC pipelines are recorded in `dvc.lock`, not in `.dvc` files: gc must keep them,
/// in the workspace and in history.
#[test]
fn pipeline_outputs_in_dvc_lock_are_kept() {
    let Some(dvc) = dvc::require() else { return };
    let s = Scratch::git();
    s.run(&dvc, &["init", "-q"]).ok();
    s.run(
        &dvc,
        &[
            "stage",
            "add",
            "-q",
            "-n",
            "make",
            "-o",
            "out.txt",
            "echo one > out.txt",
        ],
    )
    .ok();
    s.run(&dvc, &["repro", "-q"]).ok();
    commit(&s, "pipeline v1");
    s.write(
        "dvc.yaml",
        "stages:\n  make:\n    cmd: echo two > out.txt\n    outs:\n    - out.txt\n",
    );
    s.run(&dvc, &["repro", "-q"]).ok();
    commit(&s, "pipeline v2");
    write_and_add(&s, &dvc, "loose.txt", "loose\n");
    std::fs::remove_file(s.join("loose.txt.dvc")).expect("untrack");
    let h = History { repo: s, dvc };
    let (left, _) = gc_both(&h, &["gc", "-w", "-f"]);
    assert!(left.contains(&key("two\n")));
    assert!(!left.contains(&key("one\n")));
    assert!(!left.contains(&key("loose\n")));
    let (left, _) = gc_both(&h, &["gc", "-A", "-f"]);
    assert!(left.contains(&key("one\n")));
    assert!(left.contains(&key("two\n")));
}

/// Lode takes the same `.dvc/tmp/lock` as DVC: while another process holds it (here `flock`,
/// which locks the file the way zc.lockfile does), both tools refuse with the same error and
/// remove nothing.
#[test]
fn gc_respects_the_repository_lock() {
    let Some(h) = history() else { return };
    let s = clone(&h.repo);
    let before = cache_objects(&s);
    let lode = lode_e2e::bins::lode();
    let mut errors = Vec::new();
    for program in [h.dvc.as_path(), lode.as_path()] {
        let mut args = vec!["-n", ".dvc/tmp/lock"];
        args.push(program.to_str().expect("utf-8 path"));
        args.extend(["gc", "-w", "-f"]);
        let r = s.run("flock", &args);
        assert_eq!(r.code, 255, "{program:?}: {}", r.stderr);
        errors.push(r.stderr);
    }
    assert_eq!(errors[1], errors[0]);
    assert!(errors[1].contains("ERROR: Unable to acquire lock."));
    assert_eq!(cache_objects(&s), before);
    // Once released, gc runs and leaves ` <pid>\n` in the lock file, as DVC does.
    s.lode(&["gc", "-w", "-f"]).ok();
    let content = s.read_string(".dvc/tmp/lock");
    assert!(
        content.starts_with(' ') && content.ends_with('\n'),
        "{content:?}"
    );
    assert!(content.trim().parse::<u32>().is_ok(), "{content:?}");
}

/// A used `.dir` manifest that is missing from the cache can't name its entries, and DVC
/// collects them; one that is there but unreadable stops gc before anything is removed.
#[test]
fn missing_or_corrupt_manifests() {
    let Some(dvc) = dvc::require() else { return };
    let s = Scratch::git();
    s.run(&dvc, &["init", "-q"]).ok();
    s.write("d/a", "a\n");
    s.write("d/b", "b\n");
    s.run(&dvc, &["add", "-q", "d"]).ok();
    write_and_add(&s, &dvc, "junk.txt", "junk\n");
    std::fs::remove_file(s.join("junk.txt.dvc")).expect("untrack");
    let manifest = walkdir::WalkDir::new(s.join(".dvc/cache"))
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.path().to_string_lossy().ends_with(".dir"))
        .expect("a .dir object")
        .into_path();

    let corrupt = clone(&s);
    let dir_obj = corrupt.join(
        &manifest
            .strip_prefix(s.path())
            .expect("rel")
            .to_string_lossy(),
    );
    std::fs::set_permissions(&dir_obj, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(&dir_obj, "not json").expect("corrupt");
    let before = cache_objects(&corrupt);
    let r = corrupt.lode(&["gc", "-w", "-f"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("is corrupted"), "{}", r.stderr);
    assert_eq!(cache_objects(&corrupt), before);

    std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::remove_file(&manifest).expect("remove manifest");
    let h = History { repo: s, dvc };
    let (left, _) = gc_both(&h, &["gc", "-w", "-f"]);
    assert!(left.is_empty(), "{left:?}");
}
