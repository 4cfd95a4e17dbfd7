//! `lode init` against real `dvc init`: the same files, output and exit codes.

use lode_e2e::dvc;
use lode_e2e::repo::{Run, Scratch};

fn dvc_run(s: &Scratch, dvc: &std::path::Path, args: &[&str]) -> Run {
    s.run(dvc, args)
}

/// Files `init` writes, with their bytes (`None` when missing).
fn snapshot(s: &Scratch) -> Vec<(&'static str, Option<Vec<u8>>)> {
    [
        ".dvc/config",
        ".dvc/.gitignore",
        ".dvcignore",
        ".dvc/config.local",
    ]
    .into_iter()
    .map(|p| (p, std::fs::read(s.join(p)).ok()))
    .collect()
}

fn git_status(s: &Scratch) -> String {
    s.run("git", &["status", "--porcelain", "--untracked-files=all"])
        .ok()
        .stdout
}

#[test]
fn init_in_git_matches_dvc() {
    let Some(dvc) = dvc::require() else { return };
    let a = Scratch::git();
    let b = Scratch::git();
    let d = dvc_run(&a, &dvc, &["init"]).ok();
    let l = b.lode(&["init"]).ok();
    assert_eq!(l.stdout, d.stdout);
    assert_eq!(snapshot(&b), snapshot(&a));
    assert_eq!(
        b.read_string(".dvc/.gitignore"),
        "/config.local\n/tmp\n/cache\n"
    );
    assert_eq!(b.read(".dvc/config"), b"");
    assert_eq!(git_status(&b), git_status(&a));
    assert!(b.join(".dvc/tmp").is_dir());
    // DVC accepts the result.
    dvc_run(&b, &dvc, &["status"]).ok();
}

#[test]
fn init_no_scm_matches_dvc() {
    let Some(dvc) = dvc::require() else { return };
    let a = Scratch::new();
    let b = Scratch::new();
    let d = dvc_run(&a, &dvc, &["init", "--no-scm"]).ok();
    let l = b.lode(&["init", "--no-scm"]).ok();
    assert_eq!(l.stdout, d.stdout);
    assert_eq!(snapshot(&b), snapshot(&a));
    assert_eq!(b.read_string(".dvc/config"), "[core]\n    no_scm = True\n");
    assert!(!b.join(".dvc/.gitignore").exists());
}

#[test]
fn init_errors_match_dvc() {
    let Some(dvc) = dvc::require() else { return };
    // Outside Git without --no-scm.
    let a = Scratch::new();
    let b = Scratch::new();
    let d = dvc_run(&a, &dvc, &["init"]);
    let l = b.lode(&["init"]);
    assert_eq!(d.code, 1);
    assert_eq!(l.code, 1);
    let expected = format!(
        "ERROR: failed to initiate DVC - {} is not tracked by any supported SCM tool (e.g. Git). \
         Use `--no-scm` if you don't want to use any SCM or `--subdir` if initializing inside a \
         subdirectory of a parent SCM repository.",
        b.path().display()
    );
    assert_eq!(l.stderr.trim_end(), expected);
    assert!(!b.join(".dvc").exists());

    // `.dvc` already there.
    let a = Scratch::git();
    let b = Scratch::git();
    dvc_run(&a, &dvc, &["init"]).ok();
    b.lode(&["init"]).ok();
    let d = dvc_run(&a, &dvc, &["init"]);
    let l = b.lode(&["init"]);
    assert_eq!((l.code, d.code), (1, 1));
    assert_eq!(l.stderr.trim_end(), d.stderr.trim_end());
    assert_eq!(
        l.stderr.trim_end(),
        "ERROR: failed to initiate DVC - '.dvc' exists. Use `-f` to force."
    );

    // --no-scm with --subdir is an argument error, exit 255.
    let c = Scratch::git();
    let l = c.lode(&["init", "--no-scm", "--subdir"]);
    let d = dvc_run(&c, &dvc, &["init", "--no-scm", "--subdir"]);
    assert_eq!((l.code, d.code), (255, 255));
    assert_eq!(l.stderr.trim_end(), d.stderr.trim_end());
}

#[test]
fn init_force_recreates_dvc_dir() {
    let s = Scratch::git();
    s.lode(&["init"]).ok();
    s.write(".dvc/config.local", "[core]\n    remote = x\n");
    s.write(".dvc/config", "[core]\n    autostage = true\n");
    s.write(".dvcignore", "*.tmp\n");
    s.lode(&["init", "-f"]).ok();
    assert!(!s.join(".dvc/config.local").exists());
    assert_eq!(s.read(".dvc/config"), b"");
    // An existing .dvcignore is kept, as DVC keeps it.
    assert_eq!(s.read_string(".dvcignore"), "*.tmp\n");
}

#[test]
fn init_subdir_of_git_repo() {
    let Some(dvc) = dvc::require() else { return };
    for (s, is_lode) in [(Scratch::git(), true), (Scratch::git(), false)] {
        s.write("sub/keep", "");
        let r = if is_lode {
            s.run_in("sub", lode_e2e::bins::lode(), &["init"])
        } else {
            s.run_in("sub", &dvc, &["init"])
        };
        assert_eq!(r.code, 1, "{}", r.stderr);
        let r = if is_lode {
            s.run_in("sub", lode_e2e::bins::lode(), &["init", "--subdir"])
        } else {
            s.run_in("sub", &dvc, &["init", "--subdir"])
        };
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            s.read_string("sub/.dvc/.gitignore"),
            "/config.local\n/tmp\n/cache\n"
        );
        assert_eq!(
            git_status(&s),
            "A  sub/.dvc/.gitignore\nA  sub/.dvc/config\nA  sub/.dvcignore\n?? sub/keep\n"
        );
    }
}

#[test]
fn init_quiet_prints_nothing() {
    let s = Scratch::git();
    let r = s.lode(&["init", "-q"]).ok();
    assert_eq!(r.stdout, "");
    assert!(s.join(".dvc/config").is_file());
}

#[test]
fn no_scm_inside_git_leaves_gitignore_alone() {
    let s = Scratch::git();
    let r = s.lode(&["init", "--no-scm"]).ok();
    assert!(!r.stdout.contains("commit the changes to git"));
    assert!(!s.join(".dvc/.gitignore").exists());
    s.write("a.txt", "a\n");
    s.lode(&["add", "-q", "a.txt"]).ok();
    assert!(s.join("a.txt.dvc").is_file());
    assert!(!s.join(".gitignore").exists());
}

#[test]
fn init_refuses_a_git_ignored_dvc_dir_like_dvc() {
    let Some(dvc) = dvc::require() else { return };
    let a = Scratch::git();
    let b = Scratch::git();
    a.write(".gitignore", ".dvc\n");
    b.write(".gitignore", ".dvc\n");
    let d = dvc_run(&a, &dvc, &["init"]);
    let l = b.lode(&["init"]);
    assert_eq!((l.code, d.code), (1, 1));
    assert_eq!(
        l.stderr
            .trim_end()
            .replace(&b.path().display().to_string(), "<ROOT>"),
        d.stderr
            .trim_end()
            .replace(&a.path().display().to_string(), "<ROOT>")
    );
    assert!(!b.join(".dvc").exists());
}
