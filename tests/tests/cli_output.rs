//! How `lode` ends: a closed standard output stops it quietly (exit 141, as DVC), each kind of
//! failure exits with DVC's code for it, and `-v` prints the causes of an error.

use std::io::Read;
use std::process::{Command, Stdio};

use lode_e2e::repo::{Run, Scratch};
use lode_e2e::{bins, dvc};

/// A repository whose `status` prints far more than a pipe holds (about 200 KB).
fn repo_with_long_status() -> Scratch {
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    for i in 0..3000 {
        s.write(
            &format!("d{i:04}.dvc"),
            format!(
                "outs:\n- md5: {:032x}\n  size: 1\n  hash: md5\n  path: d{i:04}\n",
                i + 1
            ),
        );
    }
    s
}

/// Runs `lode args` with standard output going to a pipe whose reading end is closed after
/// `keep` bytes were read; returns the exit code and what went to standard error.
fn with_closed_stdout(s: &Scratch, args: &[&str], keep: usize) -> (i32, String) {
    let mut child = Command::new(bins::lode())
        .args(args)
        .current_dir(s.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lode");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = vec![0u8; keep];
    stdout.read_exact(&mut first).expect("first bytes");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let s = repo_with_long_status();
    let full = s.lode(&["status"]);
    assert_eq!(full.code, 0, "{}", full.stderr);
    assert!(full.stdout.len() > 150_000, "{}", full.stdout.len());
    // `lode status | head -c1`
    let (code, stderr) = with_closed_stdout(&s, &["status"], 1);
    assert_eq!((code, stderr.as_str()), (141, ""));
    // The reader gone before anything was written.
    let (code, stderr) = with_closed_stdout(&s, &["status", "--json"], 0);
    assert_eq!((code, stderr.as_str()), (141, ""));
}

fn run_both(s: &Scratch, dvc: &std::path::Path, args: &[&str]) -> (Run, Run) {
    (s.lode(args), s.run(dvc, args))
}

/// Each kind of ending, with the code real DVC gives for the same situation.
#[test]
fn exit_codes_are_dvcs() {
    let Some(dvc) = dvc::require() else { return };
    let outside = Scratch::new();
    let (l, d) = run_both(&outside, &dvc, &["status"]);
    assert_eq!((l.code, d.code), (253, 253), "not a repository");

    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    let (l, d) = run_both(&s, &dvc, &["status", "--no-such-flag"]);
    assert_eq!((l.code, d.code), (254, 254), "usage");
    let (l, d) = run_both(&s, &dvc, &["status"]);
    assert_eq!((l.code, d.code), (0, 0), "ok");

    s.write("a.txt", "a\n");
    s.lode(&["add", "-q", "a.txt"]).ok();
    s.write("a.txt", "changed\n");
    let (l, d) = run_both(&s, &dvc, &["status", "-q"]);
    assert_eq!((l.code, d.code), (1, 1), "changes found by status -q");

    s.write("bad.dvc", "outs: 3\n");
    let (l, d) = run_both(&s, &dvc, &["checkout", "bad.dvc"]);
    assert_eq!(
        (l.code, d.code),
        (255, 255),
        "invalid .dvc file: {}",
        l.stderr
    );
    std::fs::remove_file(s.join("bad.dvc")).expect("remove");

    s.write(".dvc/config", "[core]\n    no_such_option = 1\n");
    let (l, d) = run_both(&s, &dvc, &["status"]);
    assert_eq!((l.code, d.code), (251, 251), "config error: {}", l.stderr);
}

/// A failure whose cause is another error: `-v` names each cause, the default output only the
/// message DVC prints.
#[test]
fn verbose_prints_the_causes_of_an_error() {
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    std::fs::remove_file(s.join(".dvc/config")).expect("remove config");
    std::fs::create_dir(s.join(".dvc/config")).expect("config as a folder");
    let plain = s.lode(&["status"]);
    assert_eq!(plain.code, 251);
    assert_eq!(plain.stderr.lines().count(), 1, "{}", plain.stderr);
    assert!(plain
        .stderr
        .starts_with("ERROR: configuration error - config file error: "));
    let verbose = s.lode(&["-v", "status"]);
    assert_eq!(verbose.code, 251);
    let lines: Vec<&str> = verbose.stderr.lines().collect();
    assert_eq!(lines[0], plain.stderr.trim_end());
    assert!(
        lines[1..].contains(&"  caused by: Is a directory (os error 21)"),
        "{}",
        verbose.stderr
    );
}
