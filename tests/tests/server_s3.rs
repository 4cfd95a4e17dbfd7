//! lode-server with its blobs in a real S3 store (SeaweedFS): where objects land, that nothing
//! unverified becomes visible, that another deployment's prefix is never listed, served or
//! deleted, crash clean-up, errors at start, and losing the store while serving.

use std::process::Command;
use std::time::Duration;

use lode_e2e::digest::md5_hex;
use lode_e2e::remote_repo::{RemoteRepo, Tool};
use lode_e2e::seaweed::{self, Seaweed};
use lode_e2e::server::{object_path, Server};
use lode_e2e::uploads::{eventually, eventually_within, pseudo_random};
use reqwest::blocking::Client;
use reqwest::StatusCode;

/// Larger than two parts of a multipart upload (8 MiB each), with a short last part.
const LARGE: usize = 20 * 1024 * 1024 + 5;

fn server_on(s3: &Seaweed, bucket: &str, prefix: &str, extra: &[(&str, &str)]) -> Server {
    let mut env = s3.server_env(bucket, prefix);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_with_env(&refs)
}

fn put(s: &Server, token: &str, oid: &str, data: &[u8]) -> StatusCode {
    Client::new()
        .put(format!("{}/{}", s.project_url("ml"), object_path(oid)))
        .bearer_auth(token)
        .body(data.to_vec())
        .send()
        .expect("put")
        .status()
}

fn get(s: &Server, token: &str, oid: &str, range: Option<&str>) -> (StatusCode, Vec<u8>) {
    let mut req = Client::new()
        .get(format!("{}/{}", s.project_url("ml"), object_path(oid)))
        .bearer_auth(token);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let r = req.send().expect("get");
    (
        r.status(),
        r.bytes().map(|b| b.to_vec()).unwrap_or_default(),
    )
}

/// The S3 key of an md5 object under `prefix`.
fn key_of(prefix: &str, oid: &str) -> String {
    format!("{prefix}/files/md5/{}/{}", &oid[..2], &oid[2..])
}

#[test]
fn verified_objects_land_under_the_prefix_and_other_prefixes_stay_untouched() {
    let Some(s3) = seaweed::shared() else { return };
    let bucket = s3.fresh_bucket();
    // Another deployment's object, valid in every way, under a prefix of its own.
    let foreign = b"another deployment's object".to_vec();
    let foreign_oid = md5_hex(&foreign);
    s3.put(&bucket, &key_of("team/b", &foreign_oid), &foreign);

    let mut s = server_on(s3, &bucket, "team/a", &[]);
    let t = s.project_with_token("ml", "admin");
    let small = pseudo_random(1000, 1);
    let large = pseudo_random(LARGE, 2);
    let (small_oid, large_oid) = (md5_hex(&small), md5_hex(&large));
    assert_eq!(put(&s, &t, &small_oid, &small), StatusCode::CREATED);
    assert_eq!(put(&s, &t, &large_oid, &large), StatusCode::CREATED);

    let mut expected = vec![key_of("team/a", &small_oid), key_of("team/a", &large_oid)];
    expected.sort();
    assert_eq!(s3.keys(&bucket, "team/a/files/"), expected);
    assert_eq!(
        s3.get(&bucket, &key_of("team/a", &large_oid)).as_deref(),
        Some(&large[..])
    );
    assert_eq!(s3.pending_uploads(&bucket, "team/a/"), Vec::<String>::new());

    let (status, body) = get(&s, &t, &large_oid, None);
    assert_eq!(status, StatusCode::OK);
    assert!(body == large, "large object served intact");
    let (status, body) = get(&s, &t, &large_oid, Some("bytes=9000000-9000009"));
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &large[9_000_000..9_000_010]);
    assert_eq!(get(&s, &t, &small_oid, None).1, small);
    // Present in the bucket, but not this deployment's.
    assert_eq!(get(&s, &t, &foreign_oid, None).0, StatusCode::NOT_FOUND);

    // Collection of everything unreferenced, then fsck, only ever see this prefix.
    let gc = s.collect_everything("ml", &t);
    assert_eq!(gc.status, 200, "{}", gc.body);
    assert_eq!(s3.keys(&bucket, "team/a/files/"), Vec::<String>::new());
    assert_eq!(
        s3.get(&bucket, &key_of("team/b", &foreign_oid)),
        Some(foreign.clone())
    );
    assert_eq!(put(&s, &t, &small_oid, &small), StatusCode::CREATED);
    s.terminate();
    let report = s.cli(&["fsck"]);
    assert_eq!(report.code, 0, "{}\n{}", report.stdout, report.stderr);
    assert!(
        report
            .stdout
            .contains("checked 1 blob(s) against 1 indexed object(s)"),
        "{}",
        report.stdout
    );
    assert_eq!(
        s3.get(&bucket, &key_of("team/b", &foreign_oid)),
        Some(foreign)
    );
}

#[test]
fn a_body_that_does_not_match_its_name_leaves_no_object_and_no_pending_upload() {
    let Some(s3) = seaweed::shared() else { return };
    let bucket = s3.fresh_bucket();
    let s = server_on(s3, &bucket, "p", &[]);
    let t = s.project_with_token("ml", "write");
    for (size, seed) in [(1000, 3), (LARGE, 4)] {
        let named = md5_hex(&pseudo_random(size, seed));
        let other = pseudo_random(size, seed + 100);
        assert_eq!(put(&s, &t, &named, &other), StatusCode::BAD_REQUEST);
        assert_eq!(s3.get(&bucket, &key_of("p", &named)), None, "{size}");
        eventually("the refused multipart upload to be aborted", || {
            s3.pending_uploads(&bucket, "p/").is_empty()
        });
        assert_eq!(get(&s, &t, &named, None).0, StatusCode::NOT_FOUND);
    }
    assert_eq!(s3.keys(&bucket, "p/files/"), Vec::<String>::new());
}

#[test]
fn fsck_finds_and_quarantines_a_blob_changed_in_the_bucket() {
    let Some(s3) = seaweed::shared() else { return };
    let bucket = s3.fresh_bucket();
    let mut s = server_on(s3, &bucket, "p", &[]);
    let t = s.project_with_token("ml", "write");
    let (good, bad) = (pseudo_random(5000, 5), pseudo_random(6000, 6));
    let (good_oid, bad_oid) = (md5_hex(&good), md5_hex(&bad));
    assert_eq!(put(&s, &t, &good_oid, &good), StatusCode::CREATED);
    assert_eq!(put(&s, &t, &bad_oid, &bad), StatusCode::CREATED);
    s.terminate();
    s3.put(
        &bucket,
        &key_of("p", &bad_oid),
        b"changed behind the server's back",
    );

    let found = s.cli(&["fsck"]);
    assert_eq!(found.code, 1, "{}\n{}", found.stdout, found.stderr);
    assert!(
        found
            .stdout
            .contains(&format!("corrupt blob: md5:{bad_oid}")),
        "{}",
        found.stdout
    );
    s.cli(&["fsck", "--repair"]).ok();
    assert_eq!(s3.get(&bucket, &key_of("p", &bad_oid)), None);
    assert_eq!(
        s3.get(&bucket, &format!("p/quarantine/md5/{bad_oid}"))
            .as_deref(),
        Some(&b"changed behind the server's back"[..])
    );
    assert_eq!(s3.get(&bucket, &key_of("p", &good_oid)), Some(good));
    let clean = s.cli(&["fsck"]);
    assert_eq!(clean.code, 0, "{}", clean.stdout);
}

#[test]
fn uploads_a_crash_left_are_aborted_after_the_grace_period_under_the_prefix_only() {
    let Some(s3) = seaweed::shared() else { return };
    let bucket = s3.fresh_bucket();
    let oid = md5_hex(b"never finished");
    s3.start_upload(&bucket, &key_of("p", &oid));
    s3.start_upload(&bucket, &key_of("other", &oid));

    // Within the grace period an upload may still be another replica's.
    let first = server_on(s3, &bucket, "p", &[]);
    assert_eq!(s3.pending_uploads(&bucket, "p/").len(), 1);
    drop(first);
    let _second = server_on(s3, &bucket, "p", &[("LODE_S3_UPLOAD_GRACE", "0s")]);
    assert_eq!(s3.pending_uploads(&bucket, "p/"), Vec::<String>::new());
    assert_eq!(
        s3.pending_uploads(&bucket, "other/"),
        vec![key_of("other", &oid)]
    );
}

/// `lode-server serve` against `env`: it must exit non-zero with one line on stderr.
fn refused_start(env: &[(String, String)]) -> String {
    let data = tempfile::tempdir().expect("temp dir");
    let out = Command::new(lode_e2e::bins::lode_server())
        .arg("serve")
        .env("LODE_DATA_DIR", data.path())
        .env("LODE_LISTEN", "127.0.0.1:0")
        .env_remove("LODE_CONFIG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run lode-server");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!out.status.success(), "started: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

fn with(mut env: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.to_string()));
    env
}

#[test]
fn a_missing_bucket_wrong_credentials_or_no_store_stop_the_start_with_one_line() {
    let Some(s3) = seaweed::shared() else { return };
    let bucket = s3.fresh_bucket();

    let missing = refused_start(&s3.server_env("lode-no-such-bucket", "p"));
    assert!(missing.contains("lode-no-such-bucket"), "{missing}");
    assert!(missing.contains(s3.endpoint()), "{missing}");

    let wrong = refused_start(&with(
        s3.server_env(&bucket, "p"),
        "AWS_SECRET_ACCESS_KEY",
        "not-the-secret",
    ));
    assert!(wrong.contains(&bucket), "{wrong}");

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let unreachable = refused_start(&with(
        s3.server_env(&bucket, "p"),
        "LODE_S3_ENDPOINT",
        &closed,
    ));
    assert!(unreachable.contains(&closed), "{unreachable}");
    assert!(unreachable.contains(&bucket), "{unreachable}");

    let bad_url = refused_start(&with(
        s3.server_env(&bucket, "p"),
        "LODE_BLOB_STORE",
        "s3:/x",
    ));
    assert!(bad_url.contains("s3:/x"), "{bad_url}");
}

fn ready(s: &Server) -> StatusCode {
    Client::new()
        .get(format!("{}/readyz", s.url()))
        .timeout(Duration::from_secs(10))
        .send()
        .map(|r| r.status())
        .unwrap_or(StatusCode::REQUEST_TIMEOUT)
}

#[test]
fn losing_the_store_turns_readiness_and_uploads_to_503_until_it_returns() {
    let Some(s3) = seaweed::own() else { return };
    let bucket = s3.fresh_bucket();
    let s = server_on(&s3, &bucket, "p", &[]);
    let t = s.project_with_token("ml", "write");
    let before = pseudo_random(2000, 7);
    assert_eq!(put(&s, &t, &md5_hex(&before), &before), StatusCode::CREATED);
    assert_eq!(ready(&s), StatusCode::OK);

    s3.stop();
    eventually_within(Duration::from_secs(5), "/readyz to answer 503", || {
        ready(&s) == StatusCode::SERVICE_UNAVAILABLE
    });
    let during = pseudo_random(3000, 8);
    let during_large = pseudo_random(LARGE, 9);
    assert_eq!(
        put(&s, &t, &md5_hex(&during), &during),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        put(&s, &t, &md5_hex(&during_large), &during_large),
        StatusCode::SERVICE_UNAVAILABLE
    );

    s3.restart();
    eventually("/readyz to answer 200 again", || {
        ready(&s) == StatusCode::OK
    });
    assert_eq!(
        get(&s, &t, &md5_hex(&during), None).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s3.get(&bucket, &key_of("p", &md5_hex(&during_large))), None);
    assert_eq!(get(&s, &t, &md5_hex(&before), None).1, before);
    assert_eq!(put(&s, &t, &md5_hex(&during), &during), StatusCode::CREATED);
}

fn redirects_so_far(s: &Server) -> u64 {
    let text = Client::new()
        .get(format!("{}/metrics", s.url()))
        .send()
        .and_then(|r| r.text())
        .expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("lode_downloads_redirected_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the redirect counter")
}

#[test]
fn with_redirected_downloads_lode_and_dvc_pull_large_objects_from_the_bucket() {
    let Some(s3) = seaweed::shared() else { return };
    let bucket = s3.fresh_bucket();
    let s = server_on(s3, &bucket, "p", &[("LODE_S3_REDIRECT_DOWNLOADS", "true")]);
    let t = s.project_with_token("ml", "write");
    let large = pseudo_random(3 * 1024 * 1024, 11);
    let small = pseudo_random(2000, 12);
    let (large_oid, small_oid) = (md5_hex(&large), md5_hex(&small));
    assert_eq!(put(&s, &t, &large_oid, &large), StatusCode::CREATED);
    assert_eq!(put(&s, &t, &small_oid, &small), StatusCode::CREATED);

    let url = format!("{}/{}", s.project_url("ml"), object_path(&large_oid));
    let no_follow = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_follow.get(&url).bearer_auth(&t).send().expect("get");
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(location.starts_with(s3.endpoint()), "{location}");
    // Without the token, nothing is redirected.
    assert_eq!(
        no_follow.get(&url).send().expect("get").status(),
        StatusCode::UNAUTHORIZED
    );
    // HEAD is answered by the server itself (a URL signed for GET refuses HEAD).
    let head = no_follow.head(&url).bearer_auth(&t).send().expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"],
        large.len().to_string().as_str()
    );
    // Small objects are served directly.
    assert_eq!(
        get(&s, &t, &small_oid, None),
        (StatusCode::OK, small.clone())
    );
    // A client following the redirect gets the bytes (and its Range) from the bucket.
    let (status, body) = get(&s, &t, &large_oid, None);
    assert_eq!(status, StatusCode::OK);
    assert!(body == large);
    let (status, body) = get(&s, &t, &large_oid, Some("bytes=100-199"));
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &large[100..200]);

    let origin = RemoteRepo::new(Tool::Lode, &s.project_url("ml"), &t);
    origin.add_and_commit(&[("big.bin", &large), ("small.bin", &small)]);
    origin.run(&["push"]).ok();
    let before = redirects_so_far(&s);
    let lode_clone = origin.clone_with(Tool::Lode);
    lode_clone.run(&["pull"]).ok();
    assert!(lode_clone.repo.read("big.bin") == large);
    assert_eq!(lode_clone.repo.read("small.bin"), small);
    assert_eq!(
        redirects_so_far(&s),
        before + 1,
        "lode followed one redirect"
    );

    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let dvc_clone = origin.clone_with(Tool::Dvc(&dvc));
    dvc_clone.run(&["pull"]).ok();
    assert!(dvc_clone.repo.read("big.bin") == large);
    assert_eq!(dvc_clone.repo.read("small.bin"), small);
    // DVC may ask more than once (it reads through fsspec); every answer was a redirect.
    assert!(
        redirects_so_far(&s) > before + 1,
        "dvc followed the redirect"
    );
}
