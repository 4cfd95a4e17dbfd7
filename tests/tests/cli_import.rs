//! `lode import` and `lode update` against real DVC, from a registry published as a bare Git
//! repository with its data on a real `lode-server`: the same `.dvc` files byte for byte, DVC
//! updating what lode wrote and lode updating what DVC wrote, and refusals that write nothing.

use std::path::Path;

use lode_e2e::registry::{Env, Registry, V2};
use lode_e2e::repo::{files_under, Run, Scratch};
use lode_e2e::server::Server;

struct Setup {
    _server: Server,
    registry: Registry,
    env: Env,
}

fn setup() -> Option<Setup> {
    let dvc = lode_e2e::dvc::require()?;
    let server = Server::start();
    let token = server.project_with_token("registry", "write");
    let registry = Registry::new(&server.project_url("registry"), Some(&token));
    let env = Env::new(Some(dvc));
    let remote = server.project_url("registry");
    env.global_remote(
        "storage",
        &[("url", &remote), ("password", &format!("Bearer {token}"))],
    );
    Some(Setup {
        _server: server,
        registry,
        env,
    })
}

/// A new Git repository initialised by DVC, with one commit.
fn consumer(env: &Env) -> Scratch {
    let s = Scratch::git();
    env.dvc(s.path(), &["init", "-q"]).ok();
    s.run("git", &["commit", "-qm", "init"]).ok();
    s
}

/// Every file of the workspace (not `.git`, not `.dvc/`) with its text, and the names of the
/// objects in the cache.
fn snapshot(dir: &Path) -> (Vec<(String, String)>, Vec<String>) {
    let mut work = Vec::new();
    let mut cache = Vec::new();
    for p in files_under(dir) {
        if let Some(obj) = p.strip_prefix(".dvc/cache/") {
            cache.push(obj.to_string());
        } else if !p.starts_with(".git/") && !p.starts_with(".dvc/") {
            let bytes = std::fs::read(dir.join(&p)).expect("read");
            work.push((p, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    (work, cache)
}

/// The same workspace and the same file objects in both caches. `.dir` manifests may differ:
/// lode keeps those of the source's folders it read to find a subfolder, DVC those of the
/// subfolders of what it checked out; `status` checks the ones each output needs.
#[track_caller]
fn assert_same(ours: &Path, theirs: &Path) {
    let (work_a, cache_a) = snapshot(ours);
    let (work_b, cache_b) = snapshot(theirs);
    assert_eq!(work_a, work_b);
    let files = |c: Vec<String>| -> Vec<String> {
        c.into_iter().filter(|o| !o.ends_with(".dir")).collect()
    };
    assert_eq!(files(cache_a), files(cache_b));
}

/// Output lines without DVC's `git add` hint, whose paths DVC prints in no fixed order.
fn without_hint(r: &Run) -> String {
    r.stdout
        .lines()
        .filter(|l| !l.starts_with("\tgit add "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn import_writes_what_dvc_import_writes_and_each_updates_the_other() {
    let Some(s) = setup() else {
        return;
    };
    let url = s.registry.url();
    let imports: &[&[&str]] = &[
        &["data"],
        &["model.csv", "-o", "m.csv", "--rev", "v1", "--no-download"],
        &["README.md"],
        &["data/sub", "-o", "s", "--rev", "v1"],
    ];
    let by_lode = consumer(&s.env);
    let by_dvc = consumer(&s.env);
    let other = consumer(&s.env);
    for args in imports {
        let mut full = vec!["import", url.as_str()];
        full.extend_from_slice(args);
        let ours = s.env.lode(by_lode.path(), &full).ok();
        let theirs = s.env.dvc(by_dvc.path(), &full).ok();
        s.env.dvc(other.path(), &full).ok();
        assert_eq!(without_hint(&ours), without_hint(&theirs), "{full:?}");
    }
    assert_same(by_lode.path(), by_dvc.path());
    assert_eq!(by_lode.read("data/a.txt"), V2[0].1);
    let text = by_lode.read_string("s.dvc");
    assert!(
        text.contains("frozen: true\n") && text.contains("    rev: v1\n"),
        "{text}"
    );
    assert!(text.contains(&format!("    rev_lock: {}\n", s.registry.commit("v1"))));

    // DVC reads what lode wrote as its own.
    let status_ours = s.env.dvc(by_lode.path(), &["status"]).ok();
    let status_theirs = s.env.dvc(by_dvc.path(), &["status"]).ok();
    assert_eq!(status_ours.stdout, status_theirs.stdout);

    // The registry moves on; DVC updates lode's files, lode updates DVC's.
    s.registry.revision(
        &[
            ("data/a.txt", b"third edition\n"),
            ("model.csv", b"x,y\n3,4\n"),
        ],
        "v3",
    );
    for target in ["data.dvc", "m.csv.dvc", "README.md.dvc"] {
        let a = s.env.dvc(by_lode.path(), &["update", target]).ok();
        let b = s.env.lode(by_dvc.path(), &["update", target]).ok();
        s.env.dvc(other.path(), &["update", target]).ok();
        assert_eq!(a.stdout, b.stdout, "{target}");
    }
    // dvc updating lode's imports, lode updating dvc's.
    assert_same(by_lode.path(), other.path());
    assert_same(by_dvc.path(), other.path());
    assert_eq!(other.read("data/a.txt"), b"third edition\n");
    assert!(other
        .read_string("data.dvc")
        .contains(&s.registry.commit("v3")));

    // Back to v1 with --rev, both ways.
    s.env
        .lode(by_lode.path(), &["update", "--rev", "v1", "data.dvc"])
        .ok();
    s.env
        .dvc(by_dvc.path(), &["update", "--rev", "v1", "data.dvc"])
        .ok();
    assert_eq!(
        by_lode.read_string("data.dvc"),
        by_dvc.read_string("data.dvc")
    );
    assert_same(by_lode.path(), by_dvc.path());
    let status = s.env.dvc(by_lode.path(), &["status"]).ok();
    assert_eq!(status.stdout.trim(), "Data and pipelines are up to date.");
}

#[test]
fn refused_imports_write_nothing() {
    let Some(s) = setup() else {
        return;
    };
    let url = s.registry.url();
    let ours = consumer(&s.env);
    let theirs = consumer(&s.env);
    ours.write("data/mine.txt", "mine\n");
    theirs.write("data/mine.txt", "mine\n");
    let missing = ours.join("no-such-repo");
    let missing = missing.to_str().expect("utf-8");
    let cases: Vec<Vec<&str>> = vec![
        vec!["import", url.as_str(), "data"],
        vec!["import", url.as_str(), "no/such/path"],
        vec!["import", url.as_str(), "model.csv", "--rev", "no-such-rev"],
        vec!["import", missing, "model.csv"],
    ];
    // Lode's lock file stays in `.dvc/tmp/`, DVC's disposable state.
    let state = |dir: &Path| -> Vec<String> {
        files_under(dir)
            .into_iter()
            .filter(|p| !p.starts_with(".dvc/tmp/"))
            .collect()
    };
    let before = state(ours.path());
    for args in &cases {
        let a = s.env.lode(ours.path(), args);
        let b = s.env.dvc(theirs.path(), args);
        assert_eq!(a.code, b.code, "{args:?}: {a:?} {b:?}");
        assert_ne!(a.code, 0);
        assert!(a.stderr.starts_with("ERROR: failed to import '"), "{a:?}");
        assert_eq!(state(ours.path()), before, "{args:?} wrote something");
    }
    let exists = s.env.lode(ours.path(), &["import", &url, "data"]);
    let dvc_exists = s.env.dvc(theirs.path(), &["import", &url, "data"]);
    assert_eq!(exists.stderr, dvc_exists.stderr);

    let outside = Scratch::new();
    let a = s.env.lode(outside.path(), &["import", &url, "data"]);
    let b = s.env.dvc(outside.path(), &["import", &url, "data"]);
    assert_eq!((a.code, &a.stderr), (b.code, &b.stderr));
    assert!(files_under(outside.path()).is_empty());
}

#[test]
fn pull_and_fetch_take_imports_from_their_sources() {
    let Some(s) = setup() else {
        return;
    };
    let url = s.registry.url();
    // Imported by each tool, committed, cloned without data; the repositories have no remote.
    for importer in ["lode", "dvc"] {
        let origin = consumer(&s.env);
        for args in [
            vec!["import", url.as_str(), "data"],
            vec!["import", url.as_str(), "README.md"],
        ] {
            match importer {
                "lode" => s.env.lode(origin.path(), &args).ok(),
                _ => s.env.dvc(origin.path(), &args).ok(),
            };
        }
        origin.run("git", &["add", "-A"]).ok();
        origin.run("git", &["commit", "-qm", "imports"]).ok();
        let ours = origin.clone_to_w();
        let theirs = origin.clone_to_w();
        let a = s.env.lode(&ours.join("w"), &["pull"]).ok();
        let b = s.env.dvc(&theirs.join("w"), &["pull"]).ok();
        // Both print one line per output, in an order of their own.
        let lines = |t: &str| {
            let mut v: Vec<String> = t.lines().map(str::to_string).collect();
            v.sort();
            v
        };
        assert_eq!(lines(&a.stdout), lines(&b.stdout), "{importer}");
        assert_eq!(a.stderr, b.stderr, "{importer}");
        assert_same(&ours.join("w"), &theirs.join("w"));
        assert_eq!(ours.read("w/data/a.txt"), V2[0].1);
        let status = s.env.lode(&ours.join("w"), &["status"]).ok();
        assert_eq!(status.stdout.trim(), "Data and pipelines are up to date.");

        // fetch alone fills the cache; checkout then needs nothing else.
        let fetched = origin.clone_to_w();
        let w = fetched.join("w");
        let f = s.env.lode(&w, &["fetch"]).ok();
        assert!(f.stdout.contains("fetched"), "{f:?}");
        s.env.lode(&w, &["checkout"]).ok();
        assert_same(&w, &theirs.join("w"));
        // Pushing still needs a remote of the repository's own.
        let push = s.env.lode(&w, &["push"]);
        assert_eq!(push.code, 1, "{push:?}");
    }
}
