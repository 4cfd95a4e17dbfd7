//! `lode commit` records changed stage outputs (and their dependencies and parameters) in
//! `dvc.lock` byte for byte as `dvc commit` does, stores them in the cache as DVC does, and DVC
//! calls the result clean.

use std::path::{Path, PathBuf};
use std::process::Command;

use lode_e2e::dvc;
use lode_e2e::repo::{Run, Scratch};

const DVC_YAML: &str = r#"stages:
  prep:
    cmd: cp data/in.txt out.txt
    deps:
    - data/in.txt
    outs:
    - out.txt
  train:
    foreach: ${models}
    do:
      cmd: echo model ${item} > model-${item}.bin
      params:
      - lr
      - train.layers
      - other.yaml:
        - opt
      outs:
      - model-${item}.bin
  long:
    cmd: python3 -c "print('a very long command line that DVC folds when it writes it')" > long.txt && echo '{}' > metrics.json
    params:
    - nested
    outs:
    - long.txt
    metrics:
    - metrics.json:
        cache: false
  dirout:
    cmd: mkdir -p images && echo one > images/one.txt && echo two > images/two.txt
    deps:
    - data
    outs:
    - images
"#;

const PARAMS: &str = "models: [a, b]
lr: 0.001
train:
  layers: [64, 32]
  dropout: 1e-5
nested:
  name: it's quoted
  ratio: 1.0e+20
  none: null
  flags: {x: true, y: [1.5, 'yes', null]}
";

struct Tools {
    dvc: PathBuf,
}

impl Tools {
    fn dvc(&self, s: &Path, args: &[&str]) -> Run {
        Command::new(&self.dvc)
            .args(args)
            .current_dir(s)
            .env("DVC_NO_ANALYTICS", "1")
            .env("DVC_NO_UPDATER", "1")
            .output()
            .expect("dvc")
            .into()
    }

    fn lode(&self, s: &Path, args: &[&str]) -> Run {
        Command::new(lode_e2e::bins::lode())
            .args(args)
            .current_dir(s)
            .output()
            .expect("lode")
            .into()
    }
}

/// The sample pipelines reproduced by DVC, in `base/` of a scratch folder.
fn base(t: &Tools) -> Scratch {
    let s = Scratch::new();
    s.run("mkdir", &["base"]).ok();
    s.run_in("base", "git", &["init", "-q"]).ok();
    let b = s.join("base");
    t.dvc(&b, &["init", "-q"]).ok();
    s.write("base/data/in.txt", "hello\n");
    s.write("base/params.yaml", PARAMS);
    s.write("base/other.yaml", "opt: adam\n");
    s.write("base/dvc.yaml", DVC_YAML);
    t.dvc(&b, &["repro", "-q"]).ok();
    s.run_in("base", "git", &["add", "-A"]).ok();
    s.run_in(
        "base",
        "git",
        &[
            "-c",
            "user.email=t@e",
            "-c",
            "user.name=T",
            "commit",
            "-qm",
            "x",
        ],
    )
    .ok();
    s
}

/// Copies `base/` to `ours/` and `theirs/` (with Git and the cache).
fn twins(s: &Scratch) -> (PathBuf, PathBuf) {
    for name in ["ours", "theirs"] {
        s.run("cp", &["-a", "base", name]).ok();
    }
    (s.join("ours"), s.join("theirs"))
}

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path()
                    .strip_prefix(dir)
                    .expect("under")
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}

/// Runs `commit args` with lode in `ours` and DVC in `theirs` after `change` was applied to
/// both; the lock files, caches and `.gitignore` files must come out the same.
fn same_commit(t: &Tools, s: &Scratch, change: &dyn Fn(&Path), args: &[&str]) -> (Run, Run) {
    let (ours, theirs) = twins(s);
    change(&ours);
    change(&theirs);
    let mut full = vec!["commit"];
    full.extend_from_slice(args);
    let a = t.lode(&ours, &full);
    let b = t.dvc(&theirs, &full);
    assert_eq!(a.code, b.code, "commit {args:?}: {a:?} / {b:?}");
    assert_eq!(
        std::fs::read_to_string(ours.join("dvc.lock")).ok(),
        std::fs::read_to_string(theirs.join("dvc.lock")).ok(),
        "dvc.lock after commit {args:?}"
    );
    let cache = |p: &Path| files_under(&p.join(".dvc/cache/files"));
    assert_eq!(cache(&ours), cache(&theirs), "cache after commit {args:?}");
    assert_eq!(
        std::fs::read_to_string(ours.join(".gitignore")).ok(),
        std::fs::read_to_string(theirs.join(".gitignore")).ok()
    );
    if a.code == 0 {
        assert_eq!(
            t.dvc(&ours, &["status", "--json"]).ok().stdout,
            t.dvc(&theirs, &["status", "--json"]).ok().stdout,
            "status after commit {args:?}"
        );
    }
    for name in ["ours", "theirs"] {
        s.run("rm", &["-rf", name]).ok();
    }
    (a, b)
}

#[test]
fn commit_writes_the_lock_dvc_writes() {
    let Some(dvc) = dvc::require() else { return };
    let t = Tools { dvc };
    let s = base(&t);

    // A changed output, without and with --force.
    let out_changed = |p: &Path| std::fs::write(p.join("out.txt"), "edited by hand\n").expect("w");
    let (ours, theirs) = same_commit(&t, &s, &out_changed, &[]);
    assert_eq!(ours.code, 1);
    assert_eq!(ours.stderr, theirs.stderr);
    let (ours, _) = same_commit(&t, &s, &out_changed, &["-f"]);
    assert_eq!(ours.stdout, "Updating lock file 'dvc.lock'\n");
    same_commit(&t, &s, &out_changed, &["prep", "-f"]);

    // Changed parameters and a changed dependency directory.
    let params = |p: &Path| {
        std::fs::write(
            p.join("params.yaml"),
            PARAMS.replace("lr: 0.001", "lr: 0.5"),
        )
        .expect("w");
        std::fs::write(p.join("other.yaml"), "opt: sgd\n").expect("w");
        std::fs::write(p.join("data/extra.txt"), "more\n").expect("w");
        std::fs::write(p.join("images/two.txt"), "two, edited\n").expect("w");
    };
    same_commit(&t, &s, &params, &["-f", "train@a", "dirout"]);
    same_commit(&t, &s, &params, &["-f", "train"]);
    same_commit(&t, &s, &params, &["-f"]);
    let (ours, theirs) = same_commit(&t, &s, &params, &["train@b"]);
    assert_eq!(ours.stderr, theirs.stderr);

    // A stage the lock does not know yet (written with DVC's folding of long values), and a
    // repository without any lock.
    let no_entry = |p: &Path| {
        let lock = std::fs::read_to_string(p.join("dvc.lock")).expect("lock");
        let start = lock.find("  long:\n").expect("long entry");
        let end = lock[start + 1..].find("\n  dirout:").expect("next") + start + 2;
        let mut cut = lock.clone();
        cut.replace_range(start..end, "");
        std::fs::write(p.join("dvc.lock"), cut).expect("w");
    };
    same_commit(&t, &s, &no_entry, &["-f", "long"]);
    let no_lock = |p: &Path| std::fs::remove_file(p.join("dvc.lock")).expect("rm");
    let (ours, theirs) = same_commit(&t, &s, &no_lock, &["-f"]);
    assert_eq!(ours.stdout, theirs.stdout);
}

#[test]
fn commit_refuses_missing_outputs_and_dependencies() {
    let Some(dvc) = dvc::require() else { return };
    let t = Tools { dvc };
    let s = base(&t);
    let no_out = |p: &Path| std::fs::remove_file(p.join("out.txt")).expect("rm");
    let (ours, theirs) = same_commit(&t, &s, &no_out, &["-f", "prep"]);
    assert_eq!(ours.stderr, theirs.stderr);
    assert_eq!(ours.code, 1);
    let no_dep = |p: &Path| std::fs::remove_file(p.join("data/in.txt")).expect("rm");
    let (ours, theirs) = same_commit(&t, &s, &no_dep, &["-f", "prep"]);
    assert_eq!(ours.stderr, theirs.stderr);
    let no_param = |p: &Path| {
        std::fs::write(p.join("params.yaml"), PARAMS.replace("lr: 0.001\n", "")).expect("w")
    };
    let (ours, theirs) = same_commit(&t, &s, &no_param, &["-f", "train@a"]);
    assert_eq!(ours.stderr, theirs.stderr);
}
