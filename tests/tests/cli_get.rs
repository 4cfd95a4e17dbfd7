//! `lode get` from a registry published as a bare Git repository whose data is on a real
//! `lode-server`: the same files as `dvc get`, outside or inside a repository, only the objects
//! the path needs, and DVC's refusals with nothing half-written.

use std::path::Path;

use lode_e2e::registry::{Env, Registry, V1, V2};
use lode_e2e::repo::{assert_no_temp_files, files_under, Scratch};
use lode_e2e::server::Server;

/// Every file under `dir` with its bytes and whether it is executable.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, bool)> {
    use std::os::unix::fs::PermissionsExt;
    files_under(dir)
        .into_iter()
        .map(|rel| {
            let p = dir.join(&rel);
            let exec = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o100 != 0;
            (rel, std::fs::read(&p).expect("read"), exec)
        })
        .collect()
}

struct Setup {
    server: Server,
    registry: Registry,
    env: Env,
}

fn setup(dvc: Option<std::path::PathBuf>) -> Setup {
    let server = Server::start();
    let token = server.project_with_token("registry", "write");
    let registry = Registry::new(&server.project_url("registry"), Some(&token));
    let env = Env::new(dvc);
    let remote = server.project_url("registry");
    env.global_remote(
        "storage",
        &[("url", &remote), ("password", &format!("Bearer {token}"))],
    );
    Setup {
        server,
        registry,
        env,
    }
}

#[test]
fn get_writes_what_dvc_get_writes() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let s = setup(Some(dvc));
    let url = s.registry.url();
    let cases: &[&[&str]] = &[
        &["data"],
        &["data", "--rev", "v1"],
        &["data/sub"],
        &["data/sub/b.txt", "-o", "b-copy.txt"],
        &["model.csv", "--rev", "v1"],
        &["README.md"],
        &["src"],
        &["data", "-o", "nested/folder/data"],
    ];
    for args in cases {
        let ours = Scratch::new();
        let theirs = Scratch::new();
        let mut full = vec!["get", url.as_str()];
        full.extend_from_slice(args);
        s.env.lode(ours.path(), &full).ok();
        s.env.dvc(theirs.path(), &full).ok();
        assert_eq!(snapshot(ours.path()), snapshot(theirs.path()), "{full:?}");
        assert!(!snapshot(ours.path()).is_empty(), "{full:?}");
        for file in files_under(ours.path()) {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(ours.join(&file))
                .expect("stat")
                .permissions()
                .mode();
            assert_ne!(mode & 0o200, 0, "{file} is the user's to edit");
        }
        assert_no_temp_files(ours.path());
    }
    // The revisions differ where the registry changed.
    let v1 = Scratch::new();
    s.env
        .lode(v1.path(), &["get", &url, "data/a.txt", "--rev", "v1"])
        .ok();
    assert_eq!(v1.read("a.txt"), V1[0].1);
    let v2 = Scratch::new();
    s.env.lode(v2.path(), &["get", &url, "data/a.txt"]).ok();
    assert_eq!(v2.read("a.txt"), V2[0].1);
}

#[test]
fn an_existing_destination_is_kept_without_force() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let s = setup(Some(dvc));
    let url = s.registry.url();
    let args = ["get", url.as_str(), "model.csv", "-o", "m.csv"];
    let ours = Scratch::new();
    let theirs = Scratch::new();
    ours.write("m.csv", "mine\n");
    theirs.write("m.csv", "mine\n");
    let a = s.env.lode(ours.path(), &args);
    let b = s.env.dvc(theirs.path(), &args);
    assert_eq!((a.code, &a.stderr), (b.code, &b.stderr));
    assert_eq!(a.code, 1);
    assert_eq!(ours.read("m.csv"), b"mine\n", "untouched");
    let mut forced = args.to_vec();
    forced.push("-f");
    s.env.lode(ours.path(), &forced).ok();
    s.env.dvc(theirs.path(), &forced).ok();
    assert_eq!(snapshot(ours.path()), snapshot(theirs.path()), "{forced:?}");

    // A folder: refused the same way; `-f` replaces it (dvc would write into it instead).
    let args = ["get", url.as_str(), "data"];
    ours.write("data/mine.txt", "mine\n");
    theirs.write("data/mine.txt", "mine\n");
    let a = s.env.lode(ours.path(), &args);
    let b = s.env.dvc(theirs.path(), &args);
    assert_eq!((a.code, &a.stderr), (b.code, &b.stderr));
    assert_eq!(ours.read("data/mine.txt"), b"mine\n", "untouched");
    s.env.lode(ours.path(), &["get", &url, "data", "-f"]).ok();
    let fresh = Scratch::new();
    s.env.lode(fresh.path(), &["get", &url, "data"]).ok();
    assert_eq!(snapshot(&ours.join("data")), snapshot(&fresh.join("data")));
    assert_no_temp_files(ours.path());
    let names: Vec<String> = std::fs::read_dir(ours.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no staging folders left: {names:?}");
}

#[test]
fn inside_a_repository_only_the_needed_objects_reach_its_cache() {
    let server = Server::start();
    let token = server.project_with_token("registry", "write");
    let registry = Registry::new(&server.project_url("registry"), Some(&token));
    let url = registry.url();
    // A global remote without a url would make the importing repository's config invalid:
    // the token comes from the environment here.
    let mut env = Env::new(None);
    env.token = Some(token);
    let here = Scratch::git();
    env.lode(here.path(), &["init", "-q"]).ok();
    env.lode(here.path(), &["get", &url, "data/sub"]).ok();
    assert_eq!(here.read("sub/b.txt"), V1[1].1);
    let cached: Vec<String> = files_under(&here.join(".dvc/cache/files/md5"));
    // b.txt, c.bin and the manifest of data/ (read to find them); not a.txt or new.txt.
    assert_eq!(cached.len(), 3, "{cached:?}");
    assert_eq!(cached.iter().filter(|p| p.ends_with(".dir")).count(), 1);
    let a_txt = lode_e2e::digest::md5_hex(V2[0].1);
    assert!(!cached.iter().any(|p| p.replace('/', "") == a_txt));
}

#[test]
fn bad_requests_write_nothing() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let s = setup(Some(dvc));
    let url = s.registry.url();
    let here = Scratch::new();
    let missing = here.join("no-such-repo");
    let missing = missing.to_str().expect("utf-8");
    let cases: Vec<Vec<&str>> = vec![
        vec!["get", url.as_str(), "no/such/path"],
        vec!["get", url.as_str(), "data", "--rev", "no-such-rev"],
        vec!["get", missing, "data"],
    ];
    for args in &cases {
        let ours = s.env.lode(here.path(), args);
        let theirs = s.env.dvc(here.path(), args);
        assert_eq!(ours.code, theirs.code, "{args:?}: {ours:?} {theirs:?}");
        assert_ne!(ours.code, 0);
        assert!(
            ours.stderr.starts_with("ERROR: failed to get '"),
            "{ours:?}"
        );
        assert!(files_under(here.path()).is_empty(), "{args:?}");
    }
    // A refused token: the data cannot be read, and nothing is left behind.
    let refused = Env::new(None);
    let remote = s.server.project_url("registry");
    refused.global_remote(
        "storage",
        &[("url", &remote), ("password", "Bearer not-a-token")],
    );
    let r = refused.lode(here.path(), &["get", &url, "data"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("failed to get 'data'"), "{r:?}");
    let left = std::fs::read_dir(here.path()).expect("ls").count();
    assert_eq!(left, 0, "nothing half-written");
}
