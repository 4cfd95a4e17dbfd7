//! A DVC pipeline made by real `dvc` (`dvc stage add` + `dvc repro`): lode's `status`, `push`,
//! `pull` and `checkout` see the stage's output as DVC does, on the same repository.

use std::path::Path;

use lode_e2e::dvc;
use lode_e2e::repo::{Run, Scratch};

fn dvc_in(s: &Scratch, dvc: &Path, args: &[&str]) -> Run {
    s.run(dvc, args)
}

fn commit_all(s: &Scratch) {
    s.run("git", &["add", "-A"]).ok();
    s.run("git", &["commit", "-qm", "pipeline"]).ok();
}

/// A repository with one stage, `prep`, copying `in.txt` to `out.txt`, reproduced by DVC.
fn plain_stage(dvc: &Path, remote: &Path) -> Scratch {
    let s = Scratch::git();
    dvc_in(&s, dvc, &["init", "-q"]).ok();
    dvc_in(
        &s,
        dvc,
        &[
            "remote",
            "add",
            "-d",
            "store",
            remote.to_str().expect("utf-8"),
        ],
    )
    .ok();
    s.write("in.txt", "hello\n");
    dvc_in(
        &s,
        dvc,
        &[
            "stage",
            "add",
            "-q",
            "-n",
            "prep",
            "-d",
            "in.txt",
            "-o",
            "out.txt",
            "cp in.txt out.txt",
        ],
    )
    .ok();
    dvc_in(&s, dvc, &["repro", "-q"]).ok();
    commit_all(&s);
    s
}

#[test]
fn status_push_pull_and_checkout_see_a_stage_output() {
    let Some(dvc) = dvc::require() else { return };
    let remote = Scratch::new();
    let s = plain_stage(&dvc, remote.path());

    // Up to date: both tools agree, in text and JSON.
    let ours = s.lode(&["status"]).ok();
    assert_eq!(ours.stdout, "Data and pipelines are up to date.\n");
    assert_eq!(ours.stdout, dvc_in(&s, &dvc, &["status"]).ok().stdout);

    // The output is pushed (DVC would push it too).
    assert_eq!(s.lode(&["push"]).ok().stdout, "1 file pushed\n");
    assert_eq!(
        dvc_in(&s, &dvc, &["status", "-c"]).ok().stdout,
        "Cache and remote 'store' are in sync.\n"
    );

    // A deleted output is reported as DVC reports it, and checked out again.
    std::fs::remove_file(s.join("out.txt")).expect("rm");
    let ours = s.lode(&["status", "--json"]).ok();
    assert_eq!(
        ours.stdout,
        "{\"prep\": [{\"changed outs\": {\"out.txt\": \"deleted\"}}]}\n"
    );
    assert_eq!(
        ours.stdout,
        dvc_in(&s, &dvc, &["status", "--json"]).ok().stdout
    );
    let human = s.lode(&["status"]).ok().stdout;
    assert_eq!(human, dvc_in(&s, &dvc, &["status"]).ok().stdout);
    assert_eq!(
        human,
        "prep:\n\tchanged outs:\n\t\tdeleted:            out.txt\n"
    );
    assert_eq!(s.lode(&["checkout"]).ok().stdout, "A       out.txt\n");
    assert_eq!(s.read_string("out.txt"), "hello\n");
    assert_eq!(
        dvc_in(&s, &dvc, &["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );

    // A changed dependency is a changed stage for both tools.
    s.write("in.txt", "changed\n");
    let ours = s.lode(&["status", "--json"]).ok().stdout;
    assert_eq!(
        ours,
        "{\"prep\": [{\"changed deps\": {\"in.txt\": \"modified\"}}]}\n"
    );
    assert_eq!(ours, dvc_in(&s, &dvc, &["status", "--json"]).ok().stdout);
    s.write("in.txt", "hello\n");

    // A fresh clone pulls the stage output from what lode pushed.
    let c = s.clone_to_w();
    let pull = c.run_in("w", lode_e2e::bins::lode(), &["pull"]).ok();
    assert_eq!(
        pull.stdout,
        "A       out.txt\n1 file fetched and 1 file added\n"
    );
    assert_eq!(
        std::fs::read_to_string(c.join("w/out.txt")).expect("pulled"),
        "hello\n"
    );
    let theirs = c.run_in("w", &dvc, &["status"]).ok();
    assert_eq!(theirs.stdout, "Data and pipelines are up to date.\n");
}

#[test]
fn targets_name_stages_and_outputs() {
    let Some(dvc) = dvc::require() else { return };
    let remote = Scratch::new();
    let s = plain_stage(&dvc, remote.path());
    std::fs::remove_file(s.join("out.txt")).expect("rm");
    for target in ["prep", "dvc.yaml:prep", "out.txt", "dvc.yaml"] {
        let ours = s.lode(&["status", target]).ok().stdout;
        let theirs = dvc_in(&s, &dvc, &["status", target]).ok().stdout;
        assert_eq!(ours, theirs, "target {target}");
    }
    assert_eq!(
        s.lode(&["checkout", "prep"]).ok().stdout,
        "A       out.txt\n"
    );
    let nope = s.lode(&["status", "nope"]);
    assert_eq!(nope.code, 1);
    assert_eq!(
        nope.stderr,
        "ERROR: 'nope' does not exist as an output or a stage name in 'dvc.yaml': Stage 'nope' not found inside 'dvc.yaml' file\n"
    );
    let theirs = dvc_in(&s, &dvc, &["status", "nope"]);
    assert_eq!(theirs.code, nope.code);
    assert_eq!(theirs.stderr, nope.stderr);
}
