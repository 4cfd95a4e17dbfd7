//! A team's remote in the real Docker engine: admin through `docker exec`, real `lode push` and
//! `dvc push` from the host to the published port over HTTP and over HTTPS (a test CA), objects
//! that survive `docker restart` and a new container on the same volume, `docker stop` during
//! uploads, and a backup taken during uploads that a new container serves.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lode_e2e::digest::md5_hex;
use lode_e2e::docker::{self, docker_ok, Container, Volume};
use lode_e2e::dvc;
use lode_e2e::remote_repo::{RemoteRepo, Tool};
use lode_e2e::repo::Scratch;
use lode_e2e::server::object_path;
use lode_e2e::tls::TestCa;
use lode_e2e::uploads::{assert_served, eventually, pseudo_random, Uploads};
use reqwest::blocking::Client;

type Files = Vec<(String, Vec<u8>)>;

fn files(tag: &str, seed: u64) -> Files {
    vec![
        (
            format!("{tag}-small.txt"),
            format!("{tag} small file\n").into_bytes(),
        ),
        (format!("{tag}-model.bin"), pseudo_random(3 << 20, seed)),
    ]
}

fn push(repo: &RemoteRepo, files: &Files) {
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    repo.add_and_commit(&refs);
    repo.run(&["push"]).ok();
}

/// A clean clone of `repo` pulls `files` back byte for byte with lode from `url`, with the
/// remote `options` set.
fn pulls_back(repo: &RemoteRepo, url: &str, options: &[(&str, &str)], files: &Files) {
    let clone = repo.clone_with(Tool::Lode);
    clone.remote_option("url", url);
    for (k, v) in options {
        clone.remote_option(k, v);
    }
    clone.run(&["pull"]).ok();
    for (name, bytes) in files {
        assert_eq!(&clone.repo.read(name), bytes, "{name} differs after pull");
    }
}

#[test]
fn lode_and_dvc_push_over_http_and_objects_outlive_restarts_and_containers() {
    if !docker::available() {
        return;
    }
    let Some(dvc) = dvc::require() else { return };
    let data = Volume::new("data");
    let mount = data.mount("/data");
    let opts = ["--read-only", "--cap-drop", "ALL", "-v", &mount];
    let c = Container::run(&opts, &[]);
    let client = Client::new();
    c.wait_ready(&client, "http");
    let token = docker::team_token(|args| c.exec(args));
    let url = format!("{}/ml", c.url("http"));

    let lode_repo = RemoteRepo::new(Tool::Lode, &url, &token);
    let lode_files = files("lode", 1);
    push(&lode_repo, &lode_files);
    let dvc_repo = RemoteRepo::new(Tool::Dvc(&dvc), &url, &token);
    let dvc_files = files("dvc", 2);
    push(&dvc_repo, &dvc_files);

    docker_ok(&["restart", &c.name]);
    c.wait_ready(&client, "http");
    let url = format!("{}/ml", c.url("http"));
    pulls_back(&lode_repo, &url, &[], &lode_files);
    pulls_back(&dvc_repo, &url, &[], &dvc_files);

    drop(c);
    let c = Container::run(&opts, &[]);
    c.wait_ready(&client, "http");
    let url = format!("{}/ml", c.url("http"));
    pulls_back(&lode_repo, &url, &[], &lode_files);
    pulls_back(&dvc_repo, &url, &[], &dvc_files);
}

#[test]
fn lode_and_dvc_push_over_https_with_the_teams_ca() {
    if !docker::available() {
        return;
    }
    let Some(dvc) = dvc::require() else { return };
    let host = Scratch::new();
    let ca = TestCa::new("team");
    let bundle = host.join("ca.pem");
    ca.write_bundle(&bundle);
    let data = Volume::new("data");
    let dmount = data.mount("/data");
    let mut opts: Vec<String> = [
        "--read-only",
        "--cap-drop",
        "ALL",
        "-v",
        &dmount,
        "--health-interval",
        "1s",
    ]
    .map(String::from)
    .to_vec();
    opts.extend(docker::tls_options(host.path(), &ca, 0o644));
    let c = Container::run(&opts.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let ca_cert = reqwest::Certificate::from_pem(&std::fs::read(&bundle).unwrap()).unwrap();
    let client = Client::builder().tls_certs_only([ca_cert]).build().unwrap();
    c.wait_ready(&client, "https");
    // The image's health check speaks HTTPS when the server does.
    eventually("the HTTPS container turns healthy", || {
        c.inspect("{{.State.Health.Status}}") == "healthy"
    });
    let token = docker::team_token(|args| c.exec(args));
    let url = format!("{}/ml", c.url("https"));
    let bundle_path = bundle.to_str().unwrap();

    let lode_repo = RemoteRepo::new(Tool::Lode, &url, &token);
    lode_repo.remote_option("ssl_verify", bundle_path);
    let lode_files = files("lode-tls", 3);
    push(&lode_repo, &lode_files);

    let dvc_repo = RemoteRepo::new(Tool::Dvc(&dvc), &url, &token);
    let dvc_files = files("dvc-tls", 4);
    // Without the CA, DVC refuses the server as well.
    let refs: Vec<(&str, &[u8])> = dvc_files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    dvc_repo.add_and_commit(&refs);
    assert_ne!(dvc_repo.run(&["push"]).code, 0);
    dvc_repo.remote_option("ssl_verify", bundle_path);
    dvc_repo.run(&["push"]).ok();

    pulls_back(
        &lode_repo,
        &url,
        &[("ssl_verify", bundle_path)],
        &lode_files,
    );
    pulls_back(&dvc_repo, &url, &[("ssl_verify", bundle_path)], &dvc_files);
}

/// A body handed out in pieces with pauses, so the upload is still running when the server is
/// told to stop; `started` counts bodies whose first piece was read.
struct SlowBody {
    data: Vec<u8>,
    at: usize,
    started: Arc<AtomicUsize>,
}

impl Read for SlowBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == 0 {
            self.started.fetch_add(1, Ordering::SeqCst);
        } else {
            std::thread::sleep(Duration::from_millis(40));
        }
        let n = buf.len().min(128 << 10).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn docker_stop_during_16_uploads_keeps_every_acknowledged_one_and_no_partial_one() {
    if !docker::available() {
        return;
    }
    let data = Volume::new("data");
    let mount = data.mount("/data");
    let c = Container::run(&["-v", &mount], &[]);
    let client = Client::new();
    c.wait_ready(&client, "http");
    c.admin(&["project", "create", "ml"]);
    let token = c.token(&["--project", "ml", "--role", "write"]);
    let url = format!("{}/ml", c.url("http"));

    let started = Arc::new(AtomicUsize::new(0));
    let objects: Vec<Vec<u8>> = (0..16).map(|i| pseudo_random(4 << 20, 100 + i)).collect();
    let results: Vec<(String, usize, bool)> = std::thread::scope(|scope| {
        let workers: Vec<_> = objects
            .iter()
            .map(|data| {
                let (url, token, started) = (&url, &token, started.clone());
                scope.spawn(move || {
                    let oid = md5_hex(data);
                    let body = SlowBody {
                        data: data.clone(),
                        at: 0,
                        started,
                    };
                    let acked = Client::builder()
                        .timeout(Duration::from_secs(120))
                        .build()
                        .unwrap()
                        .post(format!("{url}/{}", object_path(&oid)))
                        .bearer_auth(token)
                        .body(reqwest::blocking::Body::sized(body, data.len() as u64))
                        .send()
                        .is_ok_and(|r| r.status().is_success());
                    (oid, data.len(), acked)
                })
            })
            .collect();
        eventually("all 16 uploads are sending", || {
            started.load(Ordering::SeqCst) == 16
        });
        docker_ok(&["stop", "--time", "120", &c.name]);
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(c.wait_exit(), 0, "not a clean exit:\n{}", c.logs());
    let acked: Vec<(String, usize)> = results
        .iter()
        .filter(|(_, _, ok)| *ok)
        .map(|(o, s, _)| (o.clone(), *s))
        .collect();
    assert_eq!(
        acked.len(),
        16,
        "uploads in flight were cut off:\n{}",
        c.logs()
    );

    let fsck = Container::run_once(&["-v", &mount], &["fsck"]);
    assert!(fsck.stdout.contains("no problems found"), "{fsck:?}");
    drop(c);
    let c = Container::run(&["-v", &mount], &[]);
    c.wait_ready(&client, "http");
    assert_served(&client, &format!("{}/ml", c.url("http")), &token, &acked);
}

#[test]
fn a_backup_taken_during_uploads_is_served_by_a_new_container() {
    if !docker::available() {
        return;
    }
    let (data, backups) = (Volume::new("data"), Volume::new("backups"));
    let (dmount, bmount) = (data.mount("/data"), backups.mount("/backups"));
    // An empty folder that belongs to root, not to the container's user.
    let host = Scratch::new();
    let root_owned = format!("{}:/root-owned", host.path().display());
    let c = Container::run(
        &[
            "--read-only",
            "-v",
            &dmount,
            "-v",
            &bmount,
            "-v",
            &root_owned,
        ],
        &[],
    );
    let client = Client::new();
    c.wait_ready(&client, "http");
    c.admin(&["project", "create", "ml"]);
    let token = c.token(&["--project", "ml", "--role", "write"]);
    let url = format!("{}/ml", c.url("http"));

    let uploads = Uploads::start(
        &url,
        &token,
        4,
        |i| if i % 5 == 0 { 1 << 20 } else { 8 << 10 },
    );
    eventually("uploads are acknowledged", || {
        uploads.acknowledged().len() >= 20
    });
    let before = uploads.acknowledged();
    let r = c.exec(&["backup", "/backups/snap"]);
    uploads.stop();
    assert_eq!(r.code, 0, "{r:?}");
    // Another volume: copied, not linked.
    assert!(r.stdout.contains("copied"), "{r:?}");

    // Refused: a folder that is not empty, and one this user cannot create.
    let again = c.exec(&["backup", "/backups/snap"]);
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("is not empty") && again.stderr.contains("nothing was written"),
        "{again:?}"
    );
    let ro = c.exec(&["backup", "/elsewhere"]);
    assert_ne!(ro.code, 0);
    assert!(ro.stderr.contains("uid 65532"), "{ro:?}");
    let unwritable = c.exec(&["backup", "/root-owned"]);
    assert_ne!(unwritable.code, 0);
    assert!(
        unwritable
            .stderr
            .contains("not writable by this user (uid 65532)"),
        "{unwritable:?}"
    );
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        0,
        "the refused folder was written to"
    );

    let snap = ["-v", &bmount, "-e", "LODE_DATA_DIR=/backups/snap"];
    let fsck = Container::run_once(&snap, &["fsck"]);
    assert!(fsck.stdout.contains("no problems found"), "{fsck:?}");
    let restored = Container::run(&snap, &[]);
    restored.wait_ready(&client, "http");
    assert_served(
        &client,
        &format!("{}/ml", restored.url("http")),
        &token,
        &before,
    );
}
