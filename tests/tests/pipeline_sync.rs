//! Pipelines made by real `dvc` (a plain stage, a `foreach` stage, a stage in a subfolder with
//! `wdir`, a `cache: false` metric, a `push: false` output and a directory output): lode's
//! status, push, pull, checkout and gc agree with DVC's on the same repository, in both
//! directions, through a folder remote and through `lode-server`.

use std::path::{Path, PathBuf};

use lode_e2e::dvc;
use lode_e2e::repo::{files_under, Run, Scratch};
use lode_e2e::server::Server;

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
      outs:
      - model-${item}.bin
  metric:
    cmd: "echo '{\"acc\": 1}' > metrics.json"
    metrics:
    - metrics.json:
        cache: false
  nopush:
    cmd: echo secret > secret.txt
    outs:
    - secret.txt:
        push: false
  dirout:
    cmd: mkdir -p images/deep && echo one > images/one.txt && echo two > images/deep/two.txt
    outs:
    - images
"#;

const SUB_YAML: &str = "stages:
  deep:
    wdir: ..
    cmd: cp out.txt sub-out.txt
    deps:
    - out.txt
    outs:
    - sub-out.txt
";

/// Every workspace file a reproduced pipeline leaves, with its content.
const PRODUCED: &[(&str, &str)] = &[
    ("out.txt", "hello\n"),
    ("model-a.bin", "model a\n"),
    ("model-b.bin", "model b\n"),
    ("metrics.json", "{\"acc\": 1}\n"),
    ("secret.txt", "secret\n"),
    ("images/one.txt", "one\n"),
    ("images/deep/two.txt", "two\n"),
    ("sub-out.txt", "hello\n"),
];

/// Cached outputs DVC pushes: everything but the metric (not cached) and `secret.txt` (push:
/// false): `out.txt` (= `sub-out.txt`), two models, the directory's two files and its manifest.
const PUSHED: usize = 6;

struct Tools {
    dvc: PathBuf,
    /// DVC's site cache (remote indexes), private to the test.
    site: Scratch,
}

impl Tools {
    fn dvc(&self, s: &Scratch, args: &[&str]) -> Run {
        s.run(&self.dvc, args)
    }

    fn dvc_in(&self, s: &Scratch, rel: &str, args: &[&str]) -> Run {
        s.run_in(rel, &self.dvc, args)
    }

    fn init(&self, s: &Scratch) {
        self.dvc(s, &["init", "-q"]).ok();
        let site = self.site.path().to_str().expect("utf-8").to_string();
        self.dvc(s, &["config", "--local", "core.site_cache_dir", &site])
            .ok();
    }
}

fn tools() -> Option<Tools> {
    Some(Tools {
        dvc: dvc::require()?,
        site: Scratch::new(),
    })
}

fn commit_all(s: &Scratch, msg: &str) {
    s.run("git", &["add", "-A"]).ok();
    s.run("git", &["commit", "-qm", msg]).ok();
}

/// The sample pipelines, reproduced by DVC and committed to Git.
fn pipeline_repo(t: &Tools) -> Scratch {
    pipeline_repo_with(t, &|_| {})
}

/// Like [`pipeline_repo`], with `setup` run before anything is committed.
fn pipeline_repo_with(t: &Tools, setup: &dyn Fn(&Scratch)) -> Scratch {
    let s = Scratch::git();
    t.init(&s);
    setup(&s);
    s.write("data/in.txt", "hello\n");
    s.write("params.yaml", "models: [a, b]\nlr: 0.1\n");
    s.write("dvc.yaml", DVC_YAML);
    s.write("sub/dvc.yaml", SUB_YAML);
    t.dvc(&s, &["repro", "-q", "-P"]).ok();
    commit_all(&s, "pipelines");
    s
}

fn check_produced(s: &Scratch, rel: &str, skip: &[&str]) {
    for (p, content) in PRODUCED {
        if skip.contains(p) {
            continue;
        }
        let full = format!("{rel}/{p}");
        assert_eq!(s.read_string(&full), *content, "{full}");
    }
}

fn remove_produced(s: &Scratch, rel: &str) {
    for (p, _) in PRODUCED {
        let _ = std::fs::remove_file(s.join(&format!("{rel}/{p}")));
    }
    let _ = std::fs::remove_dir_all(s.join(&format!("{rel}/images")));
}

/// Runs `status --json` with both tools in `rel` and checks they print the same.
fn same_status(t: &Tools, s: &Scratch, rel: &str, args: &[&str]) -> String {
    let mut full = vec!["status", "--json"];
    full.extend_from_slice(args);
    let ours = s.run_in(rel, lode_e2e::bins::lode(), &full).ok().stdout;
    let theirs = t.dvc_in(s, rel, &full).ok().stdout;
    assert_eq!(ours, theirs, "status {args:?} in {rel}");
    ours
}

#[test]
fn status_agrees_with_dvc() {
    let Some(t) = tools() else { return };
    let s = pipeline_repo(&t);
    assert_eq!(same_status(&t, &s, ".", &[]), "{}\n");
    assert_eq!(same_status(&t, &s, "sub", &[]), "{}\n");

    // Every kind of change at once: a deleted output, a modified directory, a changed
    // dependency, a changed parameter, a deleted cache:false metric.
    std::fs::remove_file(s.join("model-b.bin")).expect("rm");
    s.write("images/deep/two.txt", "changed\n");
    s.write("data/in.txt", "changed\n");
    s.write("params.yaml", "models: [a, b]\nlr: 0.2\n");
    std::fs::remove_file(s.join("metrics.json")).expect("rm");
    let all = same_status(&t, &s, ".", &[]);
    assert!(all.contains("\"train@b\": [{\"changed deps\": {\"params.yaml\": {\"lr\": \"modified\"}}}, {\"changed outs\": {\"model-b.bin\": \"deleted\"}}]"), "{all}");
    same_status(&t, &s, "sub", &[]);
    for target in [
        "train",
        "train@a",
        "dvc.yaml:dirout",
        "sub/dvc.yaml:deep",
        "images",
        "sub/dvc.yaml",
    ] {
        same_status(&t, &s, ".", &[target]);
    }
    let ours = s.lode(&["status"]).ok().stdout;
    assert_eq!(ours, t.dvc(&s, &["status"]).ok().stdout);

    // A command that no longer matches the lock.
    let edited = DVC_YAML.replace("cp data/in.txt out.txt", "cp -f data/in.txt out.txt");
    s.write("dvc.yaml", &edited);
    let st = same_status(&t, &s, ".", &["prep"]);
    assert!(st.contains("\"changed command\""), "{st}");
}

/// lode pushes; DVC pulls into a fresh clone; then DVC pushes new data and lode pulls it.
fn both_directions(t: &Tools, s: &Scratch, remote_env: &dyn Fn(&Scratch, &str)) {
    let pushed = s.lode(&["push"]).ok();
    assert_eq!(pushed.stdout, format!("{PUSHED} files pushed\n"));
    assert_eq!(
        t.dvc(s, &["status", "-c", "--json"]).ok().stdout,
        "{}\n",
        "dvc sees everything lode pushed"
    );
    assert_eq!(s.lode(&["status", "-c", "--json"]).ok().stdout, "{}\n");

    // DVC pulls what lode pushed (all but the push:false output, which it cannot find).
    let c = s.clone_to_w();
    t.init_clone(&c);
    remote_env(&c, "w");
    let targets = ["prep", "train", "dirout", "sub/dvc.yaml:deep"];
    let mut args = vec!["pull"];
    args.extend(targets);
    t.dvc_in(&c, "w", &args).ok();
    check_produced(&c, "w", &["metrics.json", "secret.txt"]);

    // lode fetches and checks out what DVC pushed from another clone.
    let d = s.clone_to_w();
    t.init_clone(&d);
    remote_env(&d, "w");
    let pulled = d.run_in("w", lode_e2e::bins::lode(), &["pull"]);
    // The push:false output was never pushed: lode reports it as DVC does, and pulls the rest.
    assert_eq!(pulled.code, 1, "{pulled:?}");
    assert!(pulled.stderr.contains("secret.txt"), "{}", pulled.stderr);
    check_produced(&d, "w", &["metrics.json", "secret.txt"]);

    // New data pushed by DVC, pulled by lode.
    s.write("data/in.txt", "second\n");
    t.dvc(s, &["repro", "-q", "-P"]).ok();
    t.dvc(s, &["push", "-q"]).ok();
    commit_all(s, "second");
    d.run_in("w", "git", &["pull", "-q"]).ok();
    let pulled = d
        .run_in(
            "w",
            lode_e2e::bins::lode(),
            &["pull", "prep", "sub/dvc.yaml:deep"],
        )
        .ok();
    assert_eq!(
        pulled.stdout,
        "M       out.txt\nM       sub-out.txt\n1 file fetched and 2 files modified\n"
    );
    assert_eq!(d.read_string("w/out.txt"), "second\n");
    assert_eq!(d.read_string("w/sub-out.txt"), "second\n");
    let st = d
        .run_in("w", &t.dvc, &["status", "prep", "sub/dvc.yaml:deep"])
        .ok();
    assert_eq!(st.stdout, "Data and pipelines are up to date.\n");
}

impl Tools {
    /// A clone made by `git clone` in `w/`: DVC's site cache is a local setting, set again.
    fn init_clone(&self, c: &Scratch) {
        let site = self.site.path().to_str().expect("utf-8").to_string();
        self.dvc_in(c, "w", &["config", "--local", "core.site_cache_dir", &site])
            .ok();
    }
}

#[test]
fn folder_remote_both_directions() {
    let Some(t) = tools() else { return };
    let remote = Scratch::new();
    let s = pipeline_repo(&t);
    let url = remote.path().to_str().expect("utf-8").to_string();
    t.dvc(&s, &["remote", "add", "-d", "store", &url]).ok();
    commit_all(&s, "remote");
    both_directions(&t, &s, &|_, _| {});
    // The remote holds DVC's layout only: no secret.
    let stored = files_under(remote.path());
    assert!(
        stored.iter().all(|p| p.starts_with("files/md5/")),
        "{stored:?}"
    );
    assert!(!stored
        .iter()
        .any(|p| p.ends_with("dd02c7c2232759874e1c205587017bed")));
}

#[test]
fn lode_server_both_directions() {
    let Some(t) = tools() else { return };
    let server = Server::start();
    let token = server.project_with_token("ml", "write");
    let s = pipeline_repo(&t);
    t.dvc(
        &s,
        &["remote", "add", "-d", "storage", &server.project_url("ml")],
    )
    .ok();
    t.dvc(&s, &["remote", "modify", "storage", "auth", "basic"])
        .ok();
    t.dvc(&s, &["remote", "modify", "storage", "user", "dvc"])
        .ok();
    commit_all(&s, "remote");
    let set_token = |c: &Scratch, rel: &str| {
        c.run_in(
            rel,
            &t.dvc,
            &["remote", "modify", "--local", "storage", "password", &token],
        )
        .ok();
    };
    set_token(&s, ".");
    both_directions(&t, &s, &set_token);
}

/// `gc` keeps exactly what DVC's keeps: cached outputs of the workspace's stages (and, with
/// `--all-commits`, of every commit's), not the `cache: false` metric or dependencies.
#[test]
fn gc_agrees_with_dvc() {
    let Some(t) = tools() else { return };
    let s = pipeline_repo(&t);
    // A second version: the first one's objects are only used by the first commit.
    s.write("data/in.txt", "second\n");
    t.dvc(&s, &["repro", "-q", "-P"]).ok();
    commit_all(&s, "second");
    // An object no stage uses (the dependency's bytes are not cached by DVC either).
    let cache = |w: &Scratch| files_under(&w.join("w/.dvc/cache"));
    for scope in [vec!["-w"], vec!["-A"]] {
        let ours = s.clone_to_w();
        let theirs = s.clone_to_w();
        for c in [&ours, &theirs] {
            t.init_clone(c);
            copy_dir(&s.join(".dvc/cache"), &c.join("w/.dvc/cache"));
            c.write(
                "w/.dvc/cache/files/md5/00/0000000000000000000000000000ff",
                "unused",
            );
            t.dvc_in(c, "w", &["checkout", "-q"]).ok();
        }
        let mut args = vec!["gc", "-f"];
        args.extend(scope.iter().copied());
        ours.run_in("w", lode_e2e::bins::lode(), &args).ok();
        t.dvc_in(&theirs, "w", &args).ok();
        assert_eq!(cache(&ours), cache(&theirs), "gc {scope:?}");
        assert!(!cache(&ours).iter().any(|p| p.ends_with("0000ff")));
        // What remains is what the workspace needs: lode and DVC both call it clean.
        assert_eq!(
            ours.run_in("w", lode_e2e::bins::lode(), &["status", "--json"])
                .ok()
                .stdout,
            "{}\n"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from).into_iter().flatten() {
        let rel = e.path().strip_prefix(from).expect("under");
        let dest = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else if e.file_type().is_file() {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// `checkout` restores every cached output (not the `cache: false` metric), and after a
/// `lode checkout` DVC calls the workspace clean.
#[test]
fn checkout_restores_stage_outputs() {
    let Some(t) = tools() else { return };
    let s = pipeline_repo(&t);
    remove_produced(&s, ".");
    let out = s.lode(&["checkout"]).ok();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "A       images/",
            "A       model-a.bin",
            "A       model-b.bin",
            "A       out.txt",
            "A       secret.txt",
            "A       sub-out.txt"
        ]
    );
    check_produced(&s, ".", &["metrics.json"]);
    let st = t.dvc(&s, &["status", "--json"]).ok().stdout;
    assert_eq!(
        st,
        "{\"metric\": [{\"changed outs\": {\"metrics.json\": \"deleted\"}}]}\n"
    );
    assert_eq!(same_status(&t, &s, ".", &[]), st);
}

/// `push --all-commits` sends what every commit's stages recorded, as DVC's does; `fetch -A`
/// brings all of it back.
#[test]
fn history_push_and_fetch_include_older_stage_outputs() {
    let Some(t) = tools() else { return };
    let ours = Scratch::new();
    let theirs = Scratch::new();
    let url = |r: &Scratch| r.path().to_str().expect("utf-8").to_string();
    // In every commit: DVC reads each commit's own configuration when it walks history.
    let s = pipeline_repo_with(&t, &|s| {
        t.dvc(s, &["remote", "add", "-d", "theirs", &url(&theirs)])
            .ok();
        t.dvc(s, &["remote", "add", "ours", &url(&ours)]).ok();
    });
    s.write("data/in.txt", "second\n");
    t.dvc(&s, &["repro", "-q", "-P"]).ok();
    commit_all(&s, "second");
    s.lode(&["push", "-A", "-r", "ours"]).ok();
    t.dvc(&s, &["push", "-A", "-r", "theirs"]).ok();
    let stored = files_under(ours.path());
    assert_eq!(stored, files_under(theirs.path()));
    // Both versions of out.txt (and everything else that is pushed) are there.
    assert_eq!(stored.len(), PUSHED + 1, "{stored:?}");

    // A clone fetches every commit's outputs back, and can check out the first commit's.
    let c = s.clone_to_w();
    t.init_clone(&c);
    c.run_in("w", lode_e2e::bins::lode(), &["fetch", "-A", "-r", "ours"])
        .ok();
    c.run_in("w", "git", &["checkout", "-q", "HEAD~1"]).ok();
    c.run_in("w", lode_e2e::bins::lode(), &["checkout", "prep"])
        .ok();
    assert_eq!(c.read_string("w/out.txt"), "hello\n");
}

/// A `dvc.yaml` in a folder `.dvcignore` excludes declares nothing, for either tool.
#[test]
fn dvcignored_pipelines_are_not_read() {
    let Some(t) = tools() else { return };
    let s = pipeline_repo(&t);
    s.write(
        "skipped/dvc.yaml",
        "stages:\n  x:\n    cmd: echo\n    outs: [never.txt]\n",
    );
    s.write(".dvcignore", "skipped/\n");
    assert_eq!(same_status(&t, &s, ".", &[]), "{}\n");
    std::fs::remove_file(s.join(".dvcignore")).expect("rm");
    let st = same_status(&t, &s, ".", &[]);
    assert!(st.contains("skipped/dvc.yaml:x"), "{st}");
}
