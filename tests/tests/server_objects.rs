//! Object routes over real HTTP: uploads (chunked and sized), downloads with ranges and
//! conditions, hash checks, legacy objects, directory manifests, concurrency, batch existence.

use lode_e2e::digest::md5_hex;
use lode_e2e::server::{legacy_object_path, object_path, Server};
use reqwest::blocking::{Body, Client};
use reqwest::StatusCode;

fn client() -> Client {
    Client::new()
}

fn obj_url(s: &Server, project: &str, oid: &str) -> String {
    format!("{}/{}", s.project_url(project), object_path(oid))
}

fn put(s: &Server, token: &str, project: &str, oid: &str, data: &[u8]) -> (StatusCode, String) {
    let r = client()
        .put(obj_url(s, project, oid))
        .bearer_auth(token)
        .body(data.to_vec())
        .send()
        .expect("put");
    (r.status(), r.text().unwrap_or_default())
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn upload_download_head_range_and_conditional_get() {
    let s = Server::start();
    let t = s.project_with_token("ml", "write");
    let data = pseudo_random(3 * 1024 * 1024 + 123, 1);
    let oid = md5_hex(&data);

    // Chunked, no Content-Length: what DVC sends.
    let reader = std::io::Cursor::new(data.clone());
    let r = client()
        .post(obj_url(&s, "ml", &oid))
        .basic_auth("dvc", Some(&t))
        .body(Body::new(reader))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (again, _) = put(&s, &t, "ml", &oid, &data);
    assert_eq!(again, StatusCode::OK, "second upload of a held object");

    let r = client()
        .get(obj_url(&s, "ml", &oid))
        .bearer_auth(&t)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().unwrap().as_ref(), &data[..]);

    let r = client()
        .head(obj_url(&s, "ml", &oid))
        .bearer_auth(&t)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-length"],
        data.len().to_string().as_str()
    );

    let r = client()
        .get(obj_url(&s, "ml", &oid))
        .bearer_auth(&t)
        .header("Range", "bytes=10-19")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-19/{}", data.len()).as_str()
    );
    assert_eq!(r.bytes().unwrap().as_ref(), &data[10..20]);

    let r = client()
        .get(obj_url(&s, "ml", &oid))
        .bearer_auth(&t)
        .header("Range", "bytes=-5")
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap().as_ref(), &data[data.len() - 5..]);

    let r = client()
        .get(obj_url(&s, "ml", &oid))
        .bearer_auth(&t)
        .header("Range", format!("bytes={}-", data.len()))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let r = client()
        .get(obj_url(&s, "ml", &oid))
        .bearer_auth(&t)
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = client()
        .get(obj_url(&s, "ml", &oid))
        .bearer_auth(&t)
        .header("If-Modified-Since", &modified)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = client()
        .get(obj_url(&s, "ml", &oid))
        .bearer_auth(&t)
        .header("If-Match", "\"something-else\"")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);

    let absent = md5_hex(b"never uploaded");
    let r = client()
        .get(obj_url(&s, "ml", &absent))
        .bearer_auth(&t)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[test]
fn body_with_wrong_md5_is_refused_with_both_hashes_and_nothing_stored() {
    let s = Server::start();
    let t = s.project_with_token("ml", "write");
    let claimed = md5_hex(b"what the name says");
    let actual = md5_hex(b"what was sent");
    let (status, body) = put(&s, &t, "ml", &claimed, b"what was sent");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "hash_mismatch");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&claimed) && msg.contains(&actual), "{msg}");
    // Large bodies take the streaming path; same answer.
    let big = pseudo_random(5 << 20, 2);
    let (status, _) = put(&s, &t, "ml", &claimed, &big);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(s.stored_files().is_empty(), "{:?}", s.stored_files());
    let r = client()
        .get(obj_url(&s, "ml", &claimed))
        .bearer_auth(&t)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[test]
fn legacy_objects_are_verified_with_dos2unix_and_kept_apart() {
    let s = Server::start();
    let t = s.project_with_token("ml", "write");
    let raw = b"a,b\r\n1,2\r\n";
    let legacy = "e5ebd4c02cefbe7955977c67ada242b7";
    let url = format!("{}/{}", s.project_url("ml"), legacy_object_path(legacy));
    let r = client()
        .post(&url)
        .bearer_auth(&t)
        .body(raw.to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = client().get(&url).bearer_auth(&t).send().unwrap();
    assert_eq!(
        r.bytes().unwrap().as_ref(),
        raw,
        "legacy objects keep raw bytes"
    );
    // The same name in the md5 namespace is a different object: absent, and these bytes do not
    // hash to it with plain md5.
    let r = client()
        .get(obj_url(&s, "ml", legacy))
        .bearer_auth(&t)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, _) = put(&s, &t, "ml", legacy, raw);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A binary legacy object hashes raw.
    let bin = b"\x00\x01bin\r\n";
    let name = md5_hex(bin);
    let url = format!("{}/{}", s.project_url("ml"), legacy_object_path(&name));
    let r = client()
        .put(&url)
        .bearer_auth(&t)
        .body(bin.to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[test]
fn directory_manifest_needs_every_entry_held_by_the_project() {
    let s = Server::start();
    let t = s.project_with_token("ml", "write");
    let other = s.project_with_token("other", "write");
    let (a, b) = (b"file a\n".to_vec(), b"file b\n".to_vec());
    let (ha, hb) = (md5_hex(&a), md5_hex(&b));
    let manifest = format!(
        r#"[{{"md5": "{ha}", "relpath": "a.txt"}}, {{"md5": "{hb}", "relpath": "b.txt"}}]"#
    );
    let dir_oid = format!("{}.dir", md5_hex(manifest.as_bytes()));

    put(&s, &t, "ml", &ha, &a);
    // `b` is held by another project only: that does not count.
    put(&s, &other, "other", &hb, &b);
    let before = s.stored_files();
    let (status, body) = put(&s, &t, "ml", &dir_oid, manifest.as_bytes());
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body.contains("missing_entries") && body.contains(&hb),
        "{body}"
    );
    assert_eq!(s.stored_files(), before, "nothing stored");
    let r = client()
        .get(obj_url(&s, "ml", &dir_oid))
        .bearer_auth(&t)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    put(&s, &t, "ml", &hb, &b);
    let (status, body) = put(&s, &t, "ml", &dir_oid, manifest.as_bytes());
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Not a manifest at all.
    let junk = b"{\"not\": \"a list\"}";
    let junk_oid = format!("{}.dir", md5_hex(junk));
    let (status, body) = put(&s, &t, "ml", &junk_oid, junk);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("invalid_manifest"));
}

#[test]
fn concurrent_uploads_of_the_same_object_all_succeed_with_one_blob() {
    let s = Server::start();
    let t = s.project_with_token("ml", "write");
    let data = pseudo_random(3 << 20, 3);
    let oid = md5_hex(&data);
    let url = obj_url(&s, "ml", &oid);
    let statuses: Vec<StatusCode> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                let (url, t, data) = (&url, &t, &data);
                scope.spawn(move || {
                    client()
                        .post(url)
                        .bearer_auth(t)
                        .body(data.clone())
                        .send()
                        .expect("upload")
                        .status()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| s.is_success()), "{statuses:?}");
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "exactly one upload added the object: {statuses:?}"
    );
    let files = s.stored_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("blobs/md5/"));
    let r = client().get(&url).bearer_auth(&t).send().unwrap();
    assert_eq!(md5_hex(&r.bytes().unwrap()), oid);
}

#[test]
fn paths_outside_the_grammar_get_400_before_anything_happens() {
    let s = Server::start();
    let t = s.project_with_token("ml", "write");
    let auth = format!("Authorization: Bearer {t}");
    let good = md5_hex(b"x");
    let (p2, p30) = (&good[..2], &good[2..]);
    let bad_targets = [
        format!("/../files/md5/{p2}/{p30}"),
        format!("/ml/files/md5/../../{p30}"),
        format!("/ml/files/md5/{p2}/../../../secret"),
        format!("/%2e%2e/files/md5/{p2}/{p30}"),
        format!("/ml/files/md5/%2e%2e/{p30}"),
        format!("/ml/files/md5/{p2}/{p30}%00"),
        format!("/ML/files/md5/{p2}/{p30}"),
        format!("/ml/files/md5/{}/{p30}", p2.to_uppercase()),
        format!("/ml/files/md5/{p2}/{}", p30.to_uppercase()),
        format!("/ml/files/md5/{p2}/{}", &p30[1..]),
        format!("/ml/files/md5/{p2}/{p30}0"),
        format!("/ml/files/md5/{p2}/{}zz", &p30[2..]),
        format!("/ml/files/md5/{p2}/{p30}.DIR"),
        format!("/ml/files/md5/{p2}{p30}"),
        format!("/ml//{p2}/{p30}"),
        format!("/ml/{p2}/{p30}/extra"),
        format!("/.ml/{p2}/{p30}"),
        format!("/api/{p2}/{p30}"),
    ];
    for method in ["GET", "HEAD", "PUT", "POST"] {
        for target in &bad_targets {
            let r = s.raw(method, target, &[&auth], b"x");
            assert_eq!(r.status, 400, "{method} {target}: {r:?}");
        }
    }
    assert!(s.stored_files().is_empty());
    // Batch ids follow the same grammar.
    let r = client()
        .post(format!("{}/api/v1/projects/ml/objects/batch", s.url()))
        .bearer_auth(&t)
        .json(&serde_json::json!({"kind": "md5", "oids": ["../../etc/passwd"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn batch_existence_answers_missing_ids_in_order() {
    let s = Server::start();
    let t = s.project_with_token("ml", "write");
    let mut held = Vec::new();
    for i in 0..20 {
        let d = format!("object {i}");
        put(&s, &t, "ml", &md5_hex(d.as_bytes()), d.as_bytes());
        held.push(md5_hex(d.as_bytes()));
    }
    let mut asked = Vec::new();
    let mut expected_missing = Vec::new();
    for i in 0..5000 {
        if i % 250 == 0 {
            asked.push(held[i / 250].clone());
        } else {
            let m = md5_hex(format!("absent {i}").as_bytes());
            asked.push(m.clone());
            expected_missing.push(m);
        }
    }
    let r = client()
        .post(format!("{}/api/v1/projects/ml/objects/batch", s.url()))
        .bearer_auth(&t)
        .json(&serde_json::json!({"kind": "md5", "oids": asked}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().unwrap();
    let missing: Vec<String> = v["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    assert_eq!(missing, expected_missing);
    // The legacy namespace is separate.
    let r = client()
        .post(format!("{}/api/v1/projects/ml/objects/batch", s.url()))
        .bearer_auth(&t)
        .json(&serde_json::json!({"kind": "md5-dos2unix", "oids": [held[0]]}))
        .send()
        .unwrap();
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v["missing"][0], held[0].as_str());
}

#[test]
fn objects_over_the_size_limit_are_refused() {
    let s = Server::start_with_env(&[("LODE_MAX_OBJECT_SIZE", "1M")]);
    let t = s.project_with_token("ml", "write");
    let data = pseudo_random((1 << 20) + 1, 4);
    let (status, body) = put(&s, &t, "ml", &md5_hex(&data), &data);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(s.stored_files().is_empty());
    let ok = pseudo_random(1 << 20, 5);
    assert_eq!(put(&s, &t, "ml", &md5_hex(&ok), &ok).0, StatusCode::CREATED);
}

#[test]
fn legacy_directory_manifests_are_checked_in_the_legacy_namespace() {
    let s = Server::start();
    let t = s.project_with_token("ml", "write");
    let raw = b"line\r\n".to_vec();
    let legacy = md5_hex(b"line\n");
    let manifest = format!(r#"[{{"md5": "{legacy}", "relpath": "a.txt"}}]"#);
    let dir_oid = format!("{}.dir", md5_hex(manifest.as_bytes()));
    let legacy_url = |oid: &str| format!("{}/{}", s.project_url("ml"), legacy_object_path(oid));
    // The entry held only in the md5 namespace does not count.
    let (status, _) = put(&s, &t, "ml", &legacy, b"line\n");
    assert_eq!(status, StatusCode::CREATED);
    let r = client()
        .post(legacy_url(&dir_oid))
        .bearer_auth(&t)
        .body(manifest.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = client()
        .post(legacy_url(&legacy))
        .bearer_auth(&t)
        .body(raw)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = client()
        .post(legacy_url(&dir_oid))
        .bearer_auth(&t)
        .body(manifest)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}
