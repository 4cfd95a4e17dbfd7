//! Real `dvc` against a real `lode-server`: push, pull, fetch and `status -c` with basic and
//! custom (bearer) authentication, directories, and DVC 2 legacy objects.

use lode_e2e::dvc;
use lode_e2e::repo::{Run, Scratch};
use lode_e2e::server::Server;

struct DvcRepo {
    dvc: std::path::PathBuf,
    repo: Scratch,
    site_cache: Scratch,
}

impl DvcRepo {
    fn new(dvc: std::path::PathBuf) -> DvcRepo {
        let repo = Scratch::git();
        let site_cache = Scratch::new();
        let r = DvcRepo {
            dvc,
            repo,
            site_cache,
        };
        r.run(&["init", "-q"]).ok();
        // Keeps DVC's remote index and other state out of /var/tmp and private to this test.
        let sc = r
            .site_cache
            .path()
            .to_str()
            .expect("utf-8 path")
            .to_string();
        r.run(&["config", "--local", "core.site_cache_dir", &sc])
            .ok();
        r
    }

    fn run(&self, args: &[&str]) -> Run {
        self.repo.run(&self.dvc, args)
    }

    fn basic_remote(&self, url: &str, token: &str) {
        self.run(&["remote", "add", "-d", "storage", url]).ok();
        self.run(&["remote", "modify", "storage", "auth", "basic"])
            .ok();
        self.run(&["remote", "modify", "storage", "user", "dvc"])
            .ok();
        self.run(&["remote", "modify", "--local", "storage", "password", token])
            .ok();
    }

    /// Bearer token through `auth = custom`, uploading with PUT instead of DVC's default POST.
    fn bearer_remote(&self, url: &str, token: &str) {
        self.run(&["remote", "add", "-d", "storage", url]).ok();
        self.run(&["remote", "modify", "storage", "method", "PUT"])
            .ok();
        self.run(&["remote", "modify", "storage", "auth", "custom"])
            .ok();
        self.run(&[
            "remote",
            "modify",
            "storage",
            "custom_auth_header",
            "Authorization",
        ])
        .ok();
        self.run(&[
            "remote",
            "modify",
            "--local",
            "storage",
            "password",
            &format!("Bearer {token}"),
        ])
        .ok();
    }

    /// Removes the local cache and the workspace copies so only the remote has the data.
    fn forget_local(&self, paths: &[&str]) {
        std::fs::remove_dir_all(self.repo.join(".dvc/cache")).expect("remove cache");
        for p in paths {
            let full = self.repo.join(p);
            if full.is_dir() {
                std::fs::remove_dir_all(full).expect("remove dir");
            } else {
                std::fs::remove_file(full).expect("remove file");
            }
        }
    }
}

fn sample_data(r: &DvcRepo) {
    r.repo.write("data.csv", "a,b\r\n1,2\r\n");
    r.repo.write("images/a.txt", "hello\n");
    r.repo.write("images/sub/b.txt", "bee\n");
    r.repo
        .write("images/c.bin", [0u8, 1, 2, 3, 255].repeat(1000));
    r.repo.write("images/empty", "");
    r.run(&["add", "-q", "data.csv", "images"]).ok();
}

fn check_sample(r: &DvcRepo) {
    assert_eq!(r.repo.read_string("data.csv"), "a,b\r\n1,2\r\n");
    assert_eq!(r.repo.read_string("images/a.txt"), "hello\n");
    assert_eq!(r.repo.read_string("images/sub/b.txt"), "bee\n");
    assert_eq!(
        r.repo.read("images/c.bin"),
        [0u8, 1, 2, 3, 255].repeat(1000)
    );
    assert_eq!(r.repo.read("images/empty"), b"");
}

fn round_trip(bearer: bool) {
    let Some(dvc) = dvc::require() else { return };
    let server = Server::start();
    let token = server.project_with_token("ml", "write");
    let r = DvcRepo::new(dvc);
    if bearer {
        r.bearer_remote(&server.project_url("ml"), &token);
    } else {
        r.basic_remote(&server.project_url("ml"), &token);
    }
    sample_data(&r);

    let status = r.run(&["status", "-c"]).ok();
    assert!(status.stdout.contains("new:"), "{}", status.stdout);

    let push = r.run(&["push"]).ok();
    // 5 files in images (4 entries + the .dir) and data.csv.
    assert!(push.stdout.contains("6 files pushed"), "{push:?}");
    let again = r.run(&["push"]).ok();
    assert!(
        again.stdout.contains("Everything is up to date"),
        "{again:?}"
    );

    let status = r.run(&["status", "-c"]).ok();
    assert!(
        status
            .stdout
            .contains("Cache and remote 'storage' are in sync"),
        "{status:?}"
    );

    r.forget_local(&["data.csv", "images"]);
    let pull = r.run(&["pull"]).ok();
    assert!(pull.stdout.contains("6 files fetched"), "{pull:?}");
    check_sample(&r);

    std::fs::remove_dir_all(r.repo.join(".dvc/cache")).expect("remove cache");
    let fetch = r.run(&["fetch"]).ok();
    assert!(fetch.stdout.contains("6 files fetched"), "{fetch:?}");

    let usage = server.admin(&["usage", "ml"]);
    let v: serde_json::Value = serde_json::from_str(&usage.stdout).expect("usage json");
    assert_eq!(v["objects"], 6, "{v}");

    assert!(
        !server.log().contains(&token),
        "the token appeared in the server log"
    );
}

#[test]
fn dvc_push_pull_fetch_status_with_basic_auth() {
    round_trip(false);
}

#[test]
fn dvc_push_pull_fetch_status_with_bearer_custom_auth() {
    round_trip(true);
}

#[test]
fn dvc_with_read_token_pulls_but_cannot_push() {
    let Some(dvc) = dvc::require() else { return };
    let server = Server::start();
    let write = server.project_with_token("ml", "write");
    let read = server.token("ml", "read");

    let writer = DvcRepo::new(dvc.clone());
    writer.basic_remote(&server.project_url("ml"), &write);
    sample_data(&writer);
    writer.run(&["push"]).ok();

    let reader = DvcRepo::new(dvc.clone());
    reader.basic_remote(&server.project_url("ml"), &read);
    reader.repo.write("new.txt", "only local\n");
    reader.run(&["add", "-q", "new.txt"]).ok();
    let push = reader.run(&["push"]);
    assert_eq!(push.code, 1, "{push:?}");
    assert!(push.stderr.contains("403"), "{push:?}");

    // The read token still pulls what the writer pushed.
    for f in ["data.csv.dvc", "images.dvc"] {
        std::fs::copy(writer.repo.join(f), reader.repo.join(f)).expect("copy .dvc");
    }
    let pull = reader.run(&["pull", "data.csv", "images"]).ok();
    assert!(pull.stdout.contains("fetched"), "{pull:?}");
    check_sample(&reader);
}

#[test]
fn dvc_token_of_another_project_sees_nothing() {
    let Some(dvc) = dvc::require() else { return };
    let server = Server::start();
    let a = server.project_with_token("team-a", "write");
    let b = server.project_with_token("team-b", "admin");

    let ra = DvcRepo::new(dvc.clone());
    ra.basic_remote(&server.project_url("team-a"), &a);
    sample_data(&ra);
    ra.run(&["push"]).ok();

    // Same data, project A's URL, project B's token: everything looks absent, nothing pulls.
    let rb = DvcRepo::new(dvc);
    rb.basic_remote(&server.project_url("team-a"), &b);
    sample_data(&rb);
    let status = rb.run(&["status", "-c"]).ok();
    assert!(!status.stdout.contains("in sync"), "{status:?}");
    rb.forget_local(&["data.csv", "images"]);
    let pull = rb.run(&["pull"]);
    assert_ne!(pull.code, 0, "{pull:?}");
    assert!(!rb.repo.join("data.csv").exists());
}

#[test]
fn dvc_legacy_objects_round_trip() {
    let Some(dvc) = dvc::require() else { return };
    let server = Server::start();
    let token = server.project_with_token("old", "write");
    let r = DvcRepo::new(dvc);
    r.basic_remote(&server.project_url("old"), &token);

    // A DVC 2 output: no `hash:` key, named by the md5-dos2unix hash, raw CRLF bytes in the cache.
    let raw = b"a,b\r\n1,2\r\n";
    let legacy = "e5ebd4c02cefbe7955977c67ada242b7";
    r.repo.write("data.csv", raw);
    r.repo.write(
        "data.csv.dvc",
        format!("outs:\n- md5: {legacy}\n  size: 10\n  path: data.csv\n"),
    );
    r.repo.write(
        &format!(".dvc/cache/{}/{}", &legacy[..2], &legacy[2..]),
        raw,
    );

    let push = r.run(&["push"]).ok();
    assert!(push.stdout.contains("1 file pushed"), "{push:?}");
    let blob = format!("blobs/md5-dos2unix/{}/{}", &legacy[..2], &legacy[2..]);
    assert_eq!(server.stored_blob(&blob).expect("legacy blob"), raw);
    let md5_fan_out = format!("blobs/md5/{}/", &legacy[..2]);
    assert!(!server
        .stored_files()
        .iter()
        .any(|f| f.starts_with(&md5_fan_out)));

    r.forget_local(&["data.csv"]);
    let pull = r.run(&["pull"]).ok();
    assert!(pull.stdout.contains("1 file fetched"), "{pull:?}");
    assert_eq!(r.repo.read("data.csv"), raw);
}
