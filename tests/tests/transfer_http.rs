//! `lode push/pull/fetch/status -c/gc -c` against a real `lode-server`, and interop with real
//! `dvc` through the same server.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lode_e2e::digest::md5_hex;
use lode_e2e::pyserver::PyServer;
use lode_e2e::repo::{assert_no_temp_files, Run, Scratch};
use lode_e2e::server::{object_path, Server};
use lode_e2e::{bins, dvc};

/// A lode repository whose default remote is a project of `server`, with the token stored as
/// DVC keeps credentials (basic auth, password in `config.local`).
fn lode_repo(url: &str, token: &str) -> Scratch {
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    s.lode(&["remote", "add", "-d", "storage", url]).ok();
    s.lode(&["remote", "modify", "storage", "auth", "basic"])
        .ok();
    s.lode(&["remote", "modify", "storage", "user", "lode"])
        .ok();
    s.lode(&["remote", "modify", "--local", "storage", "password", token])
        .ok();
    s
}

/// Runs `lode` with extra environment variables.
fn lode_env(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(bins::lode());
    c.args(args).current_dir(s.path()).env_remove("LODE_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run lode").into()
}

fn commit_all(s: &Scratch) {
    s.run("git", &["add", "-A"]).ok();
    s.run("git", &["commit", "-qm", "data"]).ok();
}

/// A clone of `s` (its Git history and config.local), without data or cache.
fn clone_of(s: &Scratch) -> Scratch {
    let c = Scratch::new();
    let dst = c.path().join("w");
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(s.path())
        .arg(&dst)
        .output()
        .expect("git clone");
    assert!(out.status.success());
    std::fs::copy(s.join(".dvc/config.local"), dst.join(".dvc/config.local"))
        .expect("copy config.local");
    c
}

fn run_in(c: &Scratch, args: &[&str]) -> Run {
    c.run_in("w", bins::lode(), args)
}

/// Every file under `dir` with its bytes, relative paths sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path()
                    .strip_prefix(dir)
                    .expect("under dir")
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}

fn write_dataset(s: &Scratch) {
    s.write("data/plain.txt", "hello\n");
    s.write("data/with space/é日本.txt", "unicode\n");
    s.write("data/empty", "");
    s.write("data/nested/deep/x.bin", [0u8, 1, 2, 3, 255]);
    std::fs::create_dir_all(s.join("data/empty-dir")).expect("mkdir");
    s.write("big.bin", vec![7u8; 3 << 20]);
    s.write("single file.csv", "a,b\r\n1,2\r\n");
}

#[test]
fn round_trip_files_and_directories() {
    let server = Server::start();
    let token = server.project_with_token("rt", "write");
    let s = lode_repo(&server.project_url("rt"), &token);
    write_dataset(&s);
    s.lode(&["add", "data", "big.bin", "single file.csv"]).ok();
    commit_all(&s);

    let st = s.lode(&["status", "-c"]).ok();
    assert!(
        st.stdout.contains("\tnew:                data/plain.txt\n"),
        "{}",
        st.stdout
    );
    let push = s.lode(&["push"]).ok();
    assert_eq!(push.stdout, "7 files pushed\n");
    assert_eq!(s.lode(&["push"]).ok().stdout, "Everything is up to date.\n");
    assert_eq!(
        s.lode(&["status", "-c"]).ok().stdout,
        "Cache and remote 'storage' are in sync.\n"
    );

    let c = clone_of(&s);
    let st = run_in(&c, &["status", "-c"]).ok();
    assert!(
        st.stdout.contains("\tdeleted:            big.bin\n"),
        "{}",
        st.stdout
    );
    let pull = run_in(&c, &["pull"]).ok();
    assert!(pull.stdout.contains("A       data/\n"), "{}", pull.stdout);
    assert!(
        pull.stdout.ends_with("7 files fetched and 6 files added\n"),
        "{}",
        pull.stdout
    );
    let mut want = tree(&s.join("data"));
    want.retain(|(p, _)| !p.ends_with(".gitignore"));
    assert_eq!(tree(&c.path().join("w/data")), want);
    assert_eq!(
        std::fs::read(c.path().join("w/big.bin")).unwrap(),
        s.read("big.bin")
    );
    assert_eq!(
        std::fs::read(c.path().join("w/single file.csv")).unwrap(),
        b"a,b\r\n1,2\r\n"
    );
    assert_no_temp_files(&c.path().join("w/.dvc/cache"));
    assert_eq!(
        run_in(&c, &["pull"]).ok().stdout,
        "Everything is up to date.\n"
    );

    // fetch alone fills the cache and leaves the workspace alone.
    let f = clone_of(&s);
    assert_eq!(run_in(&f, &["fetch"]).ok().stdout, "7 files fetched\n");
    assert!(!f.path().join("w/big.bin").exists());
    assert_eq!(
        run_in(&f, &["checkout"]).ok().stdout.lines().count(),
        3,
        "checkout after fetch"
    );
}

#[test]
fn many_small_files_use_packs() {
    let server = Server::start();
    let token = server.project_with_token("many", "write");
    let s = lode_repo(&server.project_url("many"), &token);
    for i in 0..3000 {
        s.write(
            &format!("d/{:02}/{i}.txt", i % 17),
            format!("file number {i}\n"),
        );
    }
    s.lode(&["add", "d"]).ok();
    commit_all(&s);
    assert_eq!(s.lode(&["push"]).ok().stdout, "3001 files pushed\n");
    let metrics = reqwest::blocking::get(format!("{}/metrics", server.url()))
        .and_then(|r| r.text())
        .expect("metrics");
    let object_posts: u64 = metrics
        .lines()
        .filter(|l| l.contains("route=\"object\"") && l.contains("method=\"POST\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(object_posts, 0, "small objects must travel in packs");
    let c = clone_of(&s);
    run_in(&c, &["pull"]).ok();
    assert_eq!(tree(&c.path().join("w/d")).len(), 3000);
    assert_eq!(
        std::fs::read_to_string(c.path().join("w/d/07/2999.txt")).unwrap(),
        "file number 2999\n"
    );
}

#[test]
fn lode_token_from_environment_and_never_printed() {
    let server = Server::start();
    let token = server.project_with_token("env", "write");
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    let add = s
        .lode(&["remote", "add", "-d", "storage", &server.project_url("env")])
        .ok();
    assert_eq!(add.stdout, "Setting 'storage' as a default remote.\n");
    assert!(
        add.stderr
            .contains("lode remote modify --local storage password <token>"),
        "{}",
        add.stderr
    );
    s.write("a.txt", "a\n");
    s.lode(&["add", "a.txt"]).ok();

    let missing = lode_env(&s, &["push"], &[]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .starts_with("ERROR: failed to push data to the cloud - remote 'storage': 401"),
        "{}",
        missing.stderr
    );
    assert_eq!(
        missing.stderr.trim_end().lines().count(),
        1,
        "{}",
        missing.stderr
    );

    let wrong = lode_env(&s, &["push"], &[("LODE_TOKEN", "not-a-token")]);
    assert_eq!(wrong.code, 1);
    assert!(!wrong.stderr.contains("not-a-token"));

    let ok = lode_env(&s, &["push", "-v"], &[("LODE_TOKEN", &token)]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(ok.stdout, "1 file pushed\n");
    assert!(ok
        .stderr
        .contains("pushed 60b725f10c9c85c70d97880dfe8191b3"));
    for out in [&ok.stdout, &ok.stderr, &missing.stderr] {
        assert!(!out.contains(&token));
    }
    assert!(!s.read_string(".dvc/config").contains(&token));
    assert!(!server.log().contains(&token));

    let read = server.token("env", "read");
    s.write("b.txt", "b\n");
    s.lode(&["add", "b.txt"]).ok();
    let denied = lode_env(&s, &["push"], &[("LODE_TOKEN", &read)]);
    assert_eq!(denied.code, 1);
    assert!(denied.stderr.contains("403"), "{}", denied.stderr);
}

#[test]
fn server_down_is_one_line_and_leaves_nothing_behind() {
    let mut server = Server::start();
    let token = server.project_with_token("down", "write");
    let s = lode_repo(&server.project_url("down"), &token);
    s.write("f.txt", "x\n");
    s.lode(&["add", "f.txt"]).ok();
    commit_all(&s);
    s.lode(&["push"]).ok();
    server.kill();
    let push = s.lode(&["push"]);
    assert_eq!(push.code, 1);
    assert_eq!(push.stderr.trim_end().lines().count(), 1, "{}", push.stderr);
    assert!(push.stderr.contains("remote 'storage'"), "{}", push.stderr);
    let c = clone_of(&s);
    let pull = run_in(&c, &["pull"]);
    assert_eq!(pull.code, 1);
    assert!(!c.path().join("w/f.txt").exists());
    assert_no_temp_files(&c.path().join("w/.dvc"));
}

#[test]
fn corrupt_download_is_rejected() {
    let server = Server::start();
    let token = server.project_with_token("bad", "write");
    let s = lode_repo(&server.project_url("bad"), &token);
    s.write("small.txt", "small content\n");
    s.write("large.bin", vec![3u8; 2 << 20]);
    s.lode(&["add", "small.txt", "large.bin"]).ok();
    commit_all(&s);
    s.lode(&["push"]).ok();
    // Corrupt both blobs on the server's disk, keeping their sizes.
    for (orig, bad) in [
        (b"small content\n".to_vec(), b"small contenX\n".to_vec()),
        (vec![3u8; 2 << 20], vec![4u8; 2 << 20]),
    ] {
        let oid = md5_hex(&orig);
        let blob = server
            .data_dir()
            .join("blobs/md5")
            .join(&oid[..2])
            .join(&oid[2..]);
        let mut perm = std::fs::metadata(&blob).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&blob, perm).unwrap();
        std::fs::write(&blob, &bad).unwrap();
    }
    let c = clone_of(&s);
    let pull = run_in(&c, &["pull"]);
    assert_eq!(pull.code, 1, "{}", pull.stdout);
    assert!(pull.stderr.contains("hashes to"), "{}", pull.stderr);
    assert!(pull.stderr.contains("remote 'storage'"));
    assert!(!c.path().join("w/small.txt").exists());
    assert!(!c.path().join("w/large.bin").exists());
    let cache = c.path().join("w/.dvc/cache");
    assert!(tree(&cache).is_empty(), "{:?}", tree(&cache).len());
}

#[test]
fn killed_server_then_rerun_push_finishes_whole() {
    let mut server = Server::start();
    let token = server.project_with_token("kill", "write");
    let s = lode_repo(&server.project_url("kill"), &token);
    for i in 0..2000 {
        s.write(
            &format!("d/{i}.txt"),
            format!("{i} {}\n", "x".repeat(i % 300)),
        );
    }
    for i in 0..6 {
        s.write(&format!("d/big{i}.bin"), vec![i as u8; 4 << 20]);
    }
    s.lode(&["add", "d"]).ok();
    commit_all(&s);
    let mut child = Command::new(bins::lode())
        .args(["push", "-j", "2"])
        .current_dir(s.path())
        .env_remove("LODE_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn push");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let blobs = walkdir::WalkDir::new(server.data_dir().join("blobs"))
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .count();
        if blobs > 0 {
            break;
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "push never stored anything");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    let status = child.wait().expect("wait push");
    server.restart();
    s.lode(&[
        "remote",
        "modify",
        "storage",
        "url",
        &server.project_url("kill"),
    ])
    .ok();
    let again = s.lode(&["push"]).ok();
    assert!(
        again.stdout.ends_with("files pushed\n") || status.success(),
        "{}",
        again.stdout
    );
    assert_eq!(s.lode(&["push"]).ok().stdout, "Everything is up to date.\n");
    commit_all(&s);
    let c = clone_of(&s);
    run_in(&c, &["pull"]).ok();
    assert_eq!(tree(&c.path().join("w/d")).len(), 2006);
    assert_eq!(
        std::fs::read(c.path().join("w/d/big5.bin")).unwrap(),
        vec![5u8; 4 << 20]
    );
}

#[test]
fn gc_cloud_drops_unused_objects() {
    let server = Server::start();
    server.create_project("gc");
    let token = server.token("gc", "admin");
    let s = lode_repo(&server.project_url("gc"), &token);
    s.write("f.txt", "version one\n");
    s.lode(&["add", "f.txt"]).ok();
    s.lode(&["push"]).ok();
    s.write("f.txt", "version two\n");
    s.lode(&["add", "f.txt"]).ok();
    s.lode(&["push"]).ok();
    let old = md5_hex(b"version one\n");
    let blob = server
        .data_dir()
        .join("blobs/md5")
        .join(&old[..2])
        .join(&old[2..]);
    assert!(blob.is_file());

    // Inside the grace period nothing goes.
    let recent = s.lode(&["gc", "-w", "-c", "-f"]).ok();
    assert!(
        recent
            .stdout
            .contains("No unused cache to remove from remote."),
        "{}",
        recent.stdout
    );
    assert!(blob.is_file());

    let env = [("LODE_GC_GRACE_SECONDS", "0")];
    let dry = lode_env(&s, &["gc", "-w", "-c", "-f", "--dry"], &env);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout
            .contains(&format!("Would remove {}", object_path(&old))),
        "{}",
        dry.stdout
    );
    assert!(blob.is_file());
    let real = lode_env(&s, &["gc", "-w", "-c", "-f"], &env);
    assert_eq!(real.code, 0, "{}", real.stderr);
    assert!(
        real.stdout.contains("Removed 1 objects from remote."),
        "{}",
        real.stdout
    );
    assert!(!blob.exists());
    assert_eq!(
        s.lode(&["status", "-c"]).ok().stdout,
        "Cache and remote 'storage' are in sync.\n"
    );

    let writer = server.token("gc", "write");
    s.lode(&[
        "remote", "modify", "--local", "storage", "password", &writer,
    ])
    .ok();
    let denied = lode_env(&s, &["gc", "-w", "-c", "-f"], &env);
    assert_eq!(denied.code, 1);
    assert!(denied.stderr.contains("403"), "{}", denied.stderr);
}

#[test]
fn pack_routes_authorization() {
    let server = Server::start();
    let write = server.project_with_token("p1", "write");
    let read = server.token("p1", "read");
    let other = server.project_with_token("p2", "admin");
    let client = reqwest::blocking::Client::new();
    let data = b"pack me\n";
    let oid = md5_hex(data);
    let mut pack = b"LODEPK01".to_vec();
    pack.push(0);
    pack.extend(hex::decode(&oid).unwrap());
    pack.extend((data.len() as u64).to_be_bytes());
    pack.extend(data);
    pack.push(0x80);
    pack.extend([0u8; 24]);
    let up = |tok: Option<&str>| {
        let mut r = client
            .post(format!(
                "{}/api/v1/projects/p1/packs?kind=md5",
                server.url()
            ))
            .body(pack.clone());
        if let Some(t) = tok {
            r = r.bearer_auth(t);
        }
        r.send().unwrap().status().as_u16()
    };
    assert_eq!(up(None), 401);
    assert_eq!(up(Some(&read)), 403);
    assert_eq!(up(Some(&other)), 404);
    assert_eq!(up(Some(&write)), 200);
    let fetch = |tok: &str| {
        client
            .post(format!("{}/api/v1/projects/p1/packs/fetch", server.url()))
            .bearer_auth(tok)
            .json(&serde_json::json!({"kind": "md5", "oids": [oid]}))
            .send()
            .unwrap()
    };
    let got = fetch(&read);
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.bytes().unwrap().to_vec(), pack);
    assert_eq!(fetch(&other).status().as_u16(), 404);
    let gc = |tok: &str| {
        client
            .post(format!("{}/api/v1/projects/p1/gc", server.url()))
            .bearer_auth(tok)
            .json(&serde_json::json!({"keep": [], "dry_run": true}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(gc(&write), 403);
    assert_eq!(gc(&other), 404);
    // A body that does not match its name is refused and nothing is stored.
    let mut bad = pack.clone();
    bad[8 + 25] = b'P';
    let resp = client
        .post(format!(
            "{}/api/v1/projects/p1/packs?kind=md5",
            server.url()
        ))
        .bearer_auth(&write)
        .body(bad)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().unwrap().contains(&oid));
}

#[test]
fn dvc_push_lode_pull_and_back() {
    let Some(dvc_bin) = dvc::require() else {
        return;
    };
    let server = Server::start();
    let token = server.project_with_token("mix", "write");
    let url = server.project_url("mix");
    let d = Scratch::git();
    let site = Scratch::new();
    let dvc = |args: &[&str]| d.run(&dvc_bin, args);
    dvc(&["init", "-q"]).ok();
    dvc(&[
        "config",
        "--local",
        "core.site_cache_dir",
        site.path().to_str().unwrap(),
    ])
    .ok();
    dvc(&["remote", "add", "-d", "storage", &url]).ok();
    dvc(&["remote", "modify", "storage", "auth", "basic"]).ok();
    dvc(&["remote", "modify", "storage", "user", "dvc"]).ok();
    dvc(&["remote", "modify", "--local", "storage", "password", &token]).ok();
    d.write("images/a b.png", "png bytes\n");
    d.write("images/ü/c.txt", "c\n");
    d.write("data.csv", "x,y\n");
    dvc(&["add", "images", "data.csv"]).ok();
    dvc(&["push"]).ok();
    commit_all(&d);

    let c = clone_of(&d);
    let pull = run_in(&c, &["pull"]).ok();
    assert!(
        pull.stdout.ends_with("4 files fetched and 3 files added\n"),
        "{}",
        pull.stdout
    );
    assert_eq!(
        std::fs::read_to_string(c.path().join("w/images/ü/c.txt")).unwrap(),
        "c\n"
    );
    assert_eq!(
        run_in(&c, &["status", "-c"]).ok().stdout,
        "Cache and remote 'storage' are in sync.\n"
    );

    // And back: lode pushes a new version, dvc pulls it.
    std::fs::write(c.path().join("w/images/new.txt"), "new\n").unwrap();
    run_in(&c, &["add", "images"]).ok();
    assert_eq!(run_in(&c, &["push"]).ok().stdout, "2 files pushed\n");
    c.run_in("w", "git", &["add", "-A"]).ok();
    c.run_in("w", "git", &["commit", "-qm", "new"]).ok();
    d.run(
        "git",
        &["pull", "-q", c.path().join("w").to_str().unwrap(), "main"],
    )
    .ok();
    std::fs::remove_dir_all(d.join(".dvc/cache")).unwrap();
    std::fs::remove_dir_all(d.join("images")).unwrap();
    let dp = dvc(&["pull"]).ok();
    assert!(dp.stdout.contains("images"), "{}", dp.stdout);
    assert_eq!(d.read_string("images/new.txt"), "new\n");
    assert_eq!(
        dvc(&["status", "-c"]).ok().stdout.trim(),
        "Cache and remote 'storage' are in sync."
    );
}

/// DVC 2 legacy (md5-dos2unix) objects keep their own namespace on the way out and back: the
/// server stores them as legacy blobs and the clone gets the raw CRLF bytes back.
#[test]
fn legacy_objects_round_trip() {
    let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/dvc2-legacy");
    let server = Server::start();
    let token = server.project_with_token("legacy", "write");
    let s = Scratch::git();
    for entry in walkdir::WalkDir::new(&fixture) {
        let entry = entry.expect("walk fixture");
        let rel = entry.path().strip_prefix(&fixture).expect("relative");
        let dest = s.path().join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
    s.lode(&[
        "remote",
        "add",
        "-d",
        "storage",
        &server.project_url("legacy"),
    ])
    .ok();
    s.lode(&["remote", "modify", "--local", "storage", "auth", "basic"])
        .ok();
    s.lode(&["remote", "modify", "--local", "storage", "user", "u"])
        .ok();
    s.lode(&["remote", "modify", "--local", "storage", "password", &token])
        .ok();
    commit_all(&s);
    let push = s.lode(&["push"]).ok();
    assert!(push.stdout.ends_with("files pushed\n"), "{}", push.stdout);
    let legacy_blobs = server.stored_files();
    assert!(
        legacy_blobs
            .iter()
            .any(|p| p == "blobs/md5-dos2unix/e5/ebd4c02cefbe7955977c67ada242b7"),
        "{legacy_blobs:?}"
    );
    assert!(!legacy_blobs.iter().any(|p| p.starts_with("blobs/md5/")));
    let c = clone_of(&s);
    run_in(&c, &["pull"]).ok();
    assert_eq!(
        std::fs::read(c.path().join("w/data.csv")).unwrap(),
        std::fs::read(fixture.join("data.csv")).unwrap()
    );
    assert_eq!(
        tree(&c.path().join("w/images")),
        tree(&fixture.join("images"))
    );
    assert!(c
        .path()
        .join("w/.dvc/cache/e5/ebd4c02cefbe7955977c67ada242b7")
        .is_file());
}

#[test]
fn tls_failure_is_one_line_naming_the_remote() {
    let server = Server::start();
    let token = server.project_with_token("tls", "write");
    // The server speaks plain HTTP, so the TLS handshake fails.
    let url = server.project_url("tls").replacen("http://", "https://", 1);
    let s = lode_repo(&url, &token);
    s.write("f.txt", "tls\n");
    s.lode(&["add", "f.txt"]).ok();
    commit_all(&s);
    for args in [&["push"][..], &["status", "-c"][..]] {
        let run = s.lode(args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stdout);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains("remote 'storage'"), "{}", run.stderr);
        assert!(!run.stderr.contains(&token));
    }
    assert!(server.stored_files().is_empty());
    let c = clone_of(&s);
    let pull = run_in(&c, &["pull"]);
    assert_eq!(pull.code, 1);
    assert!(pull.stderr.contains("remote 'storage'"), "{}", pull.stderr);
    assert!(!c.path().join("w/f.txt").exists());
    assert_no_temp_files(&c.path().join("w/.dvc"));
}

#[test]
fn object_over_the_server_limit_is_refused_with_413() {
    let server = Server::start_with_env(&[("LODE_MAX_OBJECT_SIZE", "1M")]);
    let token = server.project_with_token("limit", "write");
    let s = lode_repo(&server.project_url("limit"), &token);
    s.write("small.txt", "fits\n");
    s.write("large.bin", vec![7u8; 3 << 20]);
    s.lode(&["add", "small.txt", "large.bin"]).ok();
    let push = s.lode(&["push"]);
    assert_eq!(push.code, 1, "{}", push.stdout);
    assert!(push.stderr.contains("413"), "{}", push.stderr);
    assert!(push.stderr.contains("remote 'storage'"), "{}", push.stderr);
    let large = md5_hex(&vec![7u8; 3 << 20]);
    assert!(push.stderr.contains(&large), "{}", push.stderr);
    // What fits was still stored; the refused object left nothing behind.
    let stored = server.stored_files();
    assert!(stored.iter().any(|p| p.ends_with(&md5_hex(b"fits\n")[2..])));
    assert!(
        !stored.iter().any(|p| p.ends_with(&large[2..])),
        "{stored:?}"
    );
}

/// A server that answers 503 to everything and logs each request line to the file it is given.
const FAILING_SERVER: &str = r#"
log = sys.argv[1]
class H(Base):
    def fail(self):
        self.body()
        with open(log, "a") as f:
            f.write(f"{self.command} {self.path}\n")
        self.answer(503, b"unavailable")
    do_GET = do_HEAD = do_POST = do_PUT = fail
"#;

#[test]
fn server_errors_are_retried_then_reported_in_one_line() {
    let dir = Scratch::new();
    let log = dir.join("requests.log");
    let server = PyServer::start(FAILING_SERVER, &log);
    let url = format!("http://127.0.0.1:{}/p", server.port);
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    s.lode(&["remote", "add", "-d", "storage", &url]).ok();
    s.write(".dvc/config.local", "");
    s.write("f.txt", "retry me\n");
    s.lode(&["add", "f.txt"]).ok();
    commit_all(&s);
    let push = s.lode(&["push"]);
    let c = clone_of(&s);
    let pull = run_in(&c, &["pull"]);
    drop(server);
    // As DVC does: first one line for the object, naming it and the remote, then a summary.
    let oid = md5_hex(b"retry me\n");
    for run in [&push, &pull] {
        assert_eq!(run.code, 1, "{}", run.stdout);
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains("remote 'storage'") && first.contains(&oid) && first.contains("503"),
            "{}",
            run.stderr
        );
    }
    // Each object request was tried more than once before giving up.
    let requests = std::fs::read_to_string(&log).unwrap_or_default();
    let tries = requests.lines().filter(|l| l.contains(&oid[2..])).count();
    assert!(tries >= 2 * 3, "{requests}");
    assert!(!c.path().join("w/f.txt").exists());
    assert_no_temp_files(&c.path().join("w/.dvc"));
}
