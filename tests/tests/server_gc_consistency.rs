//! Existence answers and blobs stay consistent with the index across pack uploads and server-side
//! garbage collection, including collection racing uploads of the same bytes by another project.

use lode_e2e::digest::md5_hex;
use lode_e2e::repo::Scratch;
use lode_e2e::server::{bearer, object_path, Server};

#[test]
fn existence_follows_pack_uploads_and_collection() {
    let server = Server::start();
    let token = server.project_with_token("p", "admin");
    let s = Scratch::git();
    s.lode(&["init", "-q"]).ok();
    s.lode(&["remote", "add", "-d", "storage", &server.project_url("p")])
        .ok();
    s.write("f.txt", "pushed in a pack\n");
    s.lode(&["add", "f.txt"]).ok();
    let oid = md5_hex(b"pushed in a pack\n");
    let target = format!("/p/{}", object_path(&oid));

    // DVC's existence check before the push: absent.
    assert_eq!(
        server.raw("GET", &target, &[&bearer(&token)], b"").status,
        404
    );
    let push = std::process::Command::new(lode_e2e::bins::lode())
        .arg("push")
        .current_dir(s.path())
        .env("LODE_TOKEN", &token)
        .output()
        .expect("lode push");
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    // The same check after a pack upload must see the object, or DVC would call it missing.
    let got = server.raw("GET", &target, &[&bearer(&token)], b"");
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.ends_with("pushed in a pack\n"), "{got:?}");

    assert_eq!(server.collect_everything("p", &token).status, 200);
    assert_eq!(
        server.raw("GET", &target, &[&bearer(&token)], b"").status,
        404
    );
    assert!(server.stored_files().iter().all(|f| !f.contains(&oid[2..])));

    // Pushed again after collection, the object is whole again.
    let put = server.raw("PUT", &target, &[&bearer(&token)], b"pushed in a pack\n");
    assert!(put.status < 300, "{put:?}");
    assert_eq!(
        server.raw("GET", &target, &[&bearer(&token)], b"").status,
        200
    );
}

#[test]
fn collection_never_deletes_a_blob_another_project_was_just_answered_for() {
    let server = Server::start();
    let a = server.project_with_token("a", "admin");
    let b = server.project_with_token("b", "write");
    for round in 0..40 {
        let body = format!("shared bytes, round {round}\n");
        let oid = md5_hex(body.as_bytes());
        let path = object_path(&oid);
        let put_a = server.raw(
            "PUT",
            &format!("/a/{path}"),
            &[&bearer(&a)],
            body.as_bytes(),
        );
        assert!(put_a.status < 300, "{put_a:?}");
        // Project a collects everything while project b uploads the same bytes.
        let (gc, put_b) = std::thread::scope(|scope| {
            let gc = scope.spawn(|| server.collect_everything("a", &a).status);
            let put_b = scope.spawn(|| {
                server.raw(
                    "PUT",
                    &format!("/b/{path}"),
                    &[&bearer(&b)],
                    body.as_bytes(),
                )
            });
            (
                gc.join().expect("gc thread"),
                put_b.join().expect("put thread"),
            )
        });
        assert_eq!(gc, 200);
        if put_b.status < 300 {
            let got = server.raw("GET", &format!("/b/{path}"), &[&bearer(&b)], b"");
            assert_eq!(
                got.status, 200,
                "round {round}: b was answered {} but lost the blob",
                put_b.status
            );
            assert!(got.body.ends_with(&body), "round {round}: {got:?}");
        }
    }
}
