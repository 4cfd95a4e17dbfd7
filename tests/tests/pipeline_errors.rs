//! Bad pipelines: a malformed `dvc.yaml` or `dvc.lock`, a lock that does not match its
//! `dvc.yaml`, an output declared twice, an output outside the repository, a `${}` that cannot be
//! resolved. lode reports each with DVC's message and exit code, and changes nothing; the
//! pipeline-running commands say they are left to DVC.

use std::path::{Path, PathBuf};

use lode_e2e::dvc;
use lode_e2e::repo::{Run, Scratch};

const GOOD_YAML: &str = "stages:
  prep:
    cmd: cp in.txt out.txt
    deps:
    - in.txt
    outs:
    - out.txt
";

struct Repo {
    dvc: PathBuf,
    s: Scratch,
    _remote: Scratch,
}

impl Repo {
    /// One reproduced stage, pushed to a folder remote.
    fn new(dvc: PathBuf) -> Repo {
        let s = Scratch::git();
        let remote = Scratch::new();
        let r = Repo {
            dvc,
            s,
            _remote: remote,
        };
        r.dvc(&["init", "-q"]).ok();
        let url = r._remote.path().to_str().expect("utf-8").to_string();
        r.dvc(&["remote", "add", "-d", "store", &url]).ok();
        r.s.write("in.txt", "hello\n");
        r.s.write("dvc.yaml", GOOD_YAML);
        r.dvc(&["repro", "-q"]).ok();
        r.dvc(&["push", "-q"]).ok();
        r.s.run("git", &["add", "-A"]).ok();
        r.s.run("git", &["commit", "-qm", "stage"]).ok();
        r
    }

    fn dvc(&self, args: &[&str]) -> Run {
        self.s.run(&self.dvc, args)
    }

    fn lode(&self, args: &[&str]) -> Run {
        self.s.lode(args)
    }
}

/// Every file of the repository except Git's and the tools' scratch state, with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(dir).expect("under");
            !(rel.starts_with(".git") || rel.starts_with(".dvc/tmp"))
        })
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).expect("under");
            (
                rel.to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}

/// An error text as paragraphs, each on one line: DVC's terminal writer folds long lines at 80
/// columns and quotes the source lines under each problem; neither is part of the message.
fn paragraphs(stderr: &str) -> Vec<String> {
    let kept: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(l.starts_with(' ')
                && t.split(' ')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok()))
        })
        .map(str::trim_end)
        .collect();
    kept.join("\n")
        .split("\n\n")
        .map(|p| {
            p.split('\n')
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
                .to_string()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// Runs each command with both tools: same exit code, same message (DVC's quoted source lines
/// aside), and lode changes nothing.
fn same_failure(r: &Repo, commands: &[&[&str]]) {
    for args in commands {
        let before = snapshot(r.s.path());
        let ours = r.lode(args);
        assert_eq!(
            snapshot(r.s.path()),
            before,
            "lode {args:?} changed the repository"
        );
        let theirs = r.dvc(args);
        assert_eq!(
            ours.code, theirs.code,
            "exit code of {args:?}: {ours:?} / {theirs:?}"
        );
        assert_ne!(ours.code, 0, "{args:?} must fail");
        assert_eq!(
            paragraphs(&ours.stderr),
            paragraphs(&theirs.stderr),
            "message of {args:?}"
        );
    }
}

#[test]
fn malformed_dvc_yaml_is_rejected_like_dvc() {
    let Some(dvc) = dvc::require() else { return };
    let r = Repo::new(dvc);
    for bad in [
        "stages:\n  prep:\n    cmd: x\n    outz:\n    - a\n",
        "stages:\n  prep:\n    outs:\n    - a\n",
        "stages:\n  prep:\n    cmd: x\n    outs:\n    - a:\n        cache: 1\n",
        "stages:\n  prep:\n    cmd: x\n    outs: [a, b]\n    bad: 1\n    worse: 2\n",
        "stages: 3\n",
    ] {
        r.s.write("dvc.yaml", bad);
        same_failure(&r, &[&["status"], &["checkout"], &["commit"]]);
    }
    // Syntax errors: DVC's parser words the detail differently; the file, the verdict and the
    // exit code are the same.
    r.s.write("dvc.yaml", "stages:\n  prep:\n    cmd: [x\n");
    for args in [&["status"][..], &["checkout"], &["push"]] {
        let before = snapshot(r.s.path());
        let ours = r.lode(args);
        assert_eq!(snapshot(r.s.path()), before);
        let theirs = r.dvc(args);
        assert_eq!(ours.code, theirs.code, "{args:?}");
        let first = |s: &str| {
            s.lines()
                .find(|l| l.contains("is invalid"))
                .map(str::to_string)
        };
        assert_eq!(first(&ours.stderr), first(&theirs.stderr), "{args:?}");
        assert_eq!(
            first(&ours.stderr).as_deref(),
            Some("'./dvc.yaml' is invalid.")
        );
    }
}

#[test]
fn unresolvable_interpolation_is_rejected_like_dvc() {
    let Some(dvc) = dvc::require() else { return };
    let r = Repo::new(dvc);
    r.s.write(
        "dvc.yaml",
        "stages:\n  prep:\n    cmd: x\n    outs:\n    - ${nope}\n",
    );
    same_failure(&r, &[&["status"], &["checkout"]]);
    r.s.write(
        "dvc.yaml",
        "vars:\n- a: 1\n- a: 2\nstages:\n  prep:\n    cmd: x\n",
    );
    same_failure(&r, &[&["status"]]);
    r.s.write(
        "dvc.yaml",
        "vars:\n- nope.yaml\nstages:\n  prep:\n    cmd: x\n",
    );
    same_failure(&r, &[&["status"]]);
}

#[test]
fn malformed_dvc_lock_is_rejected_like_dvc() {
    let Some(dvc) = dvc::require() else { return };
    let r = Repo::new(dvc);
    r.s.write("dvc.lock", "schema: 2.0\nstages:\n  prep:\n    cmd: x\n");
    same_failure(&r, &[&["status"], &["checkout"], &["commit"]]);
    r.s.write(
        "dvc.lock",
        "schema: '2.0'\nstages:\n  prep:\n    outs:\n    - md5: abc\n",
    );
    same_failure(&r, &[&["status"], &["checkout"]]);
}

/// A lock whose entry does not name the stage's output: the output has no recorded hash.
#[test]
fn lock_not_matching_dvc_yaml_is_reported_like_dvc() {
    let Some(dvc) = dvc::require() else { return };
    let r = Repo::new(dvc);
    let lock =
        r.s.read_string("dvc.lock")
            .replace("path: out.txt", "path: other.txt");
    r.s.write("dvc.lock", &lock);
    let ours = r.lode(&["status", "--json"]).ok();
    assert_eq!(ours.stdout, r.dvc(&["status", "--json"]).ok().stdout);
    assert_eq!(
        ours.stdout,
        "{\"prep\": [{\"changed outs\": {\"out.txt\": \"modified\"}}]}\n"
    );
    // Nothing can be pushed for it; `status -c` says why, as DVC's does.
    let ours = r.lode(&["status", "-c"]).ok();
    let theirs = r.dvc(&["status", "-c"]).ok();
    assert_eq!(ours.stderr, theirs.stderr);
    assert!(
        ours.stderr.contains("is missing version info"),
        "{}",
        ours.stderr
    );
    assert_eq!(r.lode(&["push"]).ok().stdout, r.dvc(&["push"]).ok().stdout);
    // Checking it out would delete the file: refused, nothing changed.
    same_failure(&r, &[&["checkout"]]);
    std::fs::remove_file(r.s.join("out.txt")).expect("rm");
    let before = snapshot(r.s.path());
    let ours = r.lode(&["checkout"]);
    assert_eq!(snapshot(r.s.path()), before);
    let theirs = r.dvc(&["checkout"]);
    assert_eq!(ours.code, theirs.code);
    assert_eq!(ours.stderr, theirs.stderr);
    assert!(
        ours.stderr
            .starts_with("WARNING: No file hash info found for '"),
        "{}",
        ours.stderr
    );
}

#[test]
fn an_output_declared_twice_is_rejected() {
    let Some(dvc) = dvc::require() else { return };
    let r = Repo::new(dvc);
    r.s.write(
        "out.txt.dvc",
        "outs:\n- md5: b1946ac92492d2347c6235b4d2611184\n  size: 6\n  hash: md5\n  path: out.txt\n",
    );
    for args in [
        &["status", "out.txt"][..],
        &["checkout", "out.txt"],
        &["push", "out.txt"],
    ] {
        let before = snapshot(r.s.path());
        let ours = r.lode(args);
        assert_eq!(snapshot(r.s.path()), before);
        let theirs = r.dvc(args);
        assert_eq!(ours.code, theirs.code, "{args:?}");
        // DVC lists the declarations in no fixed order.
        let sorted = |s: &str| {
            let mut l: Vec<String> = s.lines().map(str::to_string).collect();
            l.sort();
            l
        };
        let theirs_err = theirs
            .stderr
            .replace("WARNING: failed to collect 'workspace', skipping\n", "");
        let theirs_err = theirs_err.replace("failed to push data to the cloud - ", "");
        assert_eq!(sorted(&ours.stderr), sorted(&theirs_err), "{args:?}");
        assert!(ours
            .stderr
            .starts_with("ERROR: output 'out.txt' is specified in:\n"));
    }
}

#[test]
fn an_output_outside_the_repository() {
    let Some(dvc) = dvc::require() else { return };
    let r = Repo::new(dvc);
    r.s.write(
        "dvc.yaml",
        GOOD_YAML.replace("    - out.txt", "    - ../outside.txt"),
    );
    let ours = r.lode(&["status", "--json"]).ok();
    assert_eq!(ours.stdout, r.dvc(&["status", "--json"]).ok().stdout);
    assert!(
        ours.stdout.contains("outside.txt\": \"deleted\""),
        "{}",
        ours.stdout
    );
    let outside = r.s.path().parent().expect("parent").join("outside.txt");
    std::fs::write(&outside, "out there\n").expect("write");
    same_failure(&r, &[&["commit", "-f"]]);
    let _ = std::fs::remove_file(&outside);
}

#[test]
fn pipeline_commands_are_left_to_dvc() {
    let r = Scratch::new();
    for args in [
        &["repro"][..],
        &["repro", "-f", "prep"],
        &["exp", "run", "--set-param", "lr=0.1"],
        &["experiments", "show"],
        &["metrics", "show"],
        &["params", "diff"],
        &["plots", "show"],
        &["dag"],
        &["stage", "add", "-n", "x", "cmd"],
        &["queue", "status"],
    ] {
        let run = r.lode(args);
        assert_eq!(run.code, 2, "{args:?}");
        assert_eq!(run.stdout, "");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.starts_with("lode does not run pipelines: `dvc "),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("`dvc repro`"), "{}", run.stderr);
    }
}

/// `add` of a stage's output would declare it twice: refused with DVC's message.
#[test]
fn adding_a_stage_output_is_refused() {
    let Some(dvc) = dvc::require() else { return };
    let r = Repo::new(dvc);
    same_failure(&r, &[&["add", "out.txt"]]);
}
