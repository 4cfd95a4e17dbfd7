//! `lode list` against real DVC on a registry published as a bare Git repository: the same
//! entries, the same JSON, the same errors and exit codes; the clone cache follows the registry.

use lode_e2e::registry::{Env, Registry};
use lode_e2e::repo::{Run, Scratch};
use lode_e2e::server::Server;

/// Everything a user sees: output, errors and exit code.
fn shown(r: &Run) -> (i32, String, String) {
    (r.code, r.stdout.clone(), r.stderr.clone())
}

/// How many bare clones the user cache holds.
fn clones(env: &Env) -> usize {
    std::fs::read_dir(env.cache_home().join("lode/repos"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("HEAD").is_file())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn list_matches_dvc_on_a_folder_remote() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let store = Scratch::new();
    let registry = Registry::new(store.path().to_str().expect("utf-8"), None);
    let env = Env::new(Some(dvc));
    let here = Scratch::new();
    let url = registry.url();
    let cases: &[&[&str]] = &[
        &[],
        &["--json"],
        &["-R"],
        &["-R", "--json"],
        &["data"],
        &["data", "--json"],
        &["data/sub", "--json"],
        &["data/sub/b.txt"],
        &["model.csv", "--json"],
        &["src", "--json"],
        &["README.md", "--json"],
        &["--dvc-only"],
        &["--dvc-only", "-R", "--json"],
        &["data", "-R", "--rev", "v1"],
        &["data", "--json", "--rev", "v1"],
        &["--rev", "v1", "-R", "--json"],
        &["README.md", "--dvc-only"],
        &["src", "--dvc-only"],
        &["nope"],
        &["data/nope"],
        &["--rev", "no-such-rev"],
    ];
    for args in cases {
        let mut full = vec!["list", url.as_str()];
        full.extend_from_slice(args);
        let ours = env.lode(here.path(), &full);
        let theirs = env.dvc(here.path(), &full);
        assert_eq!(shown(&ours), shown(&theirs), "lode {full:?}");
    }
    // The cases cover what a user looks at: sizes, hashes, folders expanded from manifests.
    let json = env
        .lode(here.path(), &["list", &url, "data", "--json"])
        .ok();
    let entries: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(entries.as_array().map(Vec::len), Some(3), "{json:?}");
    let v1 = env
        .lode(here.path(), &["list", &url, "data", "--rev", "v1"])
        .ok();
    assert_eq!(v1.stdout, "a.txt\nsub\n");
    // Nothing was written where the command ran.
    assert!(lode_e2e::repo::files_under(here.path()).is_empty());
}

#[test]
fn the_clone_cache_follows_the_registry() {
    let store = Scratch::new();
    let registry = Registry::new(store.path().to_str().expect("utf-8"), None);
    let env = Env::new(None);
    let here = Scratch::new();
    let url = registry.url();
    let before = env.lode(here.path(), &["list", &url, "data"]).ok();
    assert_eq!(before.stdout, "a.txt\nnew.txt\nsub\n");
    assert_eq!(clones(&env), 1, "one bare clone in the user cache");

    registry.revision(&[("data/third.txt", b"three\n")], "v3");
    let after = env.lode(here.path(), &["list", &url, "data"]).ok();
    assert_eq!(after.stdout, "a.txt\nnew.txt\nsub\nthird.txt\n");
    let pinned = env
        .lode(here.path(), &["list", &url, "data", "--rev", "v1"])
        .ok();
    assert_eq!(pinned.stdout, "a.txt\nsub\n");
    let by_commit = registry.commit("v2");
    let at_commit = env
        .lode(here.path(), &["list", &url, "data", "--rev", &by_commit])
        .ok();
    assert_eq!(at_commit.stdout, "a.txt\nnew.txt\nsub\n");
    assert_eq!(clones(&env), 1, "the same clone is reused");
}

#[test]
fn bad_sources_are_reported_as_dvc_does() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let env = Env::new(Some(dvc));
    let here = Scratch::new();
    let missing = here.join("no-such-repo");
    let missing = missing.to_str().expect("utf-8");
    let ours = env.lode(here.path(), &["list", missing]);
    let theirs = env.dvc(here.path(), &["list", missing]);
    assert_eq!(ours.code, theirs.code);
    assert_eq!(ours.code, 1);
    let prefix =
        format!("ERROR: failed to list '{missing}' - SCM error: Failed to clone repo '{missing}'");
    assert!(ours.stderr.starts_with(&prefix), "{}", ours.stderr);
    assert!(theirs.stderr.starts_with(&prefix), "{}", theirs.stderr);
    assert_eq!(
        clones(&env),
        0,
        "a failed clone leaves nothing in the cache"
    );
    let leftovers = std::fs::read_dir(env.cache_home().join("lode/repos"))
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "no half-made clone");
}

#[test]
fn folders_are_expanded_from_a_lode_server_remote() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let server = Server::start();
    let token = server.project_with_token("registry", "write");
    let registry = Registry::new(&server.project_url("registry"), Some(&token));
    let env = Env::new(Some(dvc));
    let here = Scratch::new();
    let url = registry.url();

    // Without the token the manifest cannot be read.
    let refused = env.lode(here.path(), &["list", &url, "data"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.starts_with("ERROR: failed to list"),
        "{refused:?}"
    );

    let remote = server.project_url("registry");
    env.global_remote(
        "storage",
        &[("url", &remote), ("password", &format!("Bearer {token}"))],
    );
    for args in [
        vec!["list", url.as_str(), "data", "--json"],
        vec!["list", url.as_str(), "-R"],
        vec!["list", url.as_str(), "data/sub", "--rev", "v1"],
    ] {
        let ours = env.lode(here.path(), &args).ok();
        let theirs = env.dvc(here.path(), &args).ok();
        assert_eq!(ours.stdout, theirs.stdout, "{args:?}");
    }
}
