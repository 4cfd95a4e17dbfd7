//! Two `lode-server` replicas on one PostgreSQL index (and, for now, one blob folder): data
//! pushed through one is pulled through the other, by lode and by real DVC; a token revoked or a
//! grant removed is refused by the other within two seconds and an object collected through one
//! is not served by the other, whatever it had cached; a collection through one never deletes a
//! blob the other just acknowledged; the same object uploaded through both at once is stored
//! once; a replica killed mid-upload leaves nothing visible and the other serves on.

use std::time::Duration;

use lode_e2e::digest::md5_hex;
use lode_e2e::postgres;
use lode_e2e::remote_repo::{RemoteRepo, Tool};
use lode_e2e::server::{bearer, object_path, Server};
use lode_e2e::uploads::{eventually_within, pseudo_random};
use reqwest::blocking::Client;

/// Two replicas sharing a new database and a blob folder.
fn replicas() -> Option<(Server, Server)> {
    let url = postgres::shared()?.fresh_database();
    let a = Server::start_on_database(&url, None, &[]);
    let b = Server::start_on_database(&url, Some(a.data_dir()), &[]);
    Some((a, b))
}

fn push_through_one_pull_through_the_other(tool: Tool) {
    let Some((a, b)) = replicas() else { return };
    let token = a.project_with_token("ml", "write");
    let origin = RemoteRepo::new(tool, &a.project_url("ml"), &token);
    let big = pseudo_random(3 << 20, 7);
    let small = pseudo_random(2_000, 8);
    origin.add_and_commit(&[("big.bin", &big), ("small.bin", &small)]);
    origin.run(&["push"]).ok();

    let clone = origin.clone_with(tool);
    clone.remote_option("url", &b.project_url("ml"));
    clone.run(&["pull"]).ok();
    assert!(clone.repo.read("big.bin") == big, "big.bin differs");
    assert!(clone.repo.read("small.bin") == small, "small.bin differs");
}

#[test]
fn lode_pushes_through_one_replica_and_pulls_through_the_other() {
    push_through_one_pull_through_the_other(Tool::Lode);
}

#[test]
fn dvc_pushes_through_one_replica_and_pulls_through_the_other() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    push_through_one_pull_through_the_other(Tool::Dvc(&dvc));
}

fn whoami(s: &Server, token: &str) -> u16 {
    Client::new()
        .get(format!("{}/api/v1/whoami", s.url()))
        .bearer_auth(token)
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[test]
fn a_token_revoked_through_one_replica_is_refused_by_the_other_within_two_seconds() {
    let Some((a, b)) = replicas() else { return };
    let admin = a.server_admin_token();
    a.create_project("ml");
    let created: serde_json::Value = Client::new()
        .post(format!("{}/api/v1/tokens", a.url()))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"project": "ml", "role": "read"}))
        .send()
        .expect("create token")
        .json()
        .expect("token json");
    let token = created["token"].as_str().expect("token").to_string();
    let id = created["info"]["id"].as_str().expect("id").to_string();
    // Both replicas know the token, and have just checked it.
    assert_eq!(whoami(&a, &token), 200);
    assert_eq!(whoami(&b, &token), 200);

    let revoked = Client::new()
        .delete(format!("{}/api/v1/tokens/{id}", a.url()))
        .bearer_auth(&admin)
        .send()
        .expect("revoke");
    assert!(revoked.status().is_success(), "{revoked:?}");
    assert_eq!(whoami(&a, &token), 401);
    eventually_within(
        Duration::from_secs(2),
        "the other replica refuses it",
        || whoami(&b, &token) == 401,
    );
    // And it stays refused.
    assert_eq!(whoami(&b, &token), 401);
    assert_eq!(whoami(&b, &admin), 200);
}

#[test]
fn a_collection_through_one_replica_never_deletes_what_the_other_just_acknowledged() {
    let Some((one, other)) = replicas() else {
        return;
    };
    let a = one.project_with_token("a", "admin");
    let b = one.project_with_token("b", "write");
    for round in 0..30 {
        let body = format!("shared bytes, round {round}\n");
        let path = object_path(&md5_hex(body.as_bytes()));
        let put_a = one.raw(
            "PUT",
            &format!("/a/{path}"),
            &[&bearer(&a)],
            body.as_bytes(),
        );
        assert!(put_a.status < 300, "{put_a:?}");
        // Project a collects everything through one replica while project b uploads the same
        // bytes through the other.
        let (gc, put_b) = std::thread::scope(|scope| {
            let gc = scope.spawn(|| one.collect_everything("a", &a).status);
            let put_b = scope.spawn(|| {
                other.raw(
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
        assert!(put_b.status < 300, "round {round}: {put_b:?}");
        for s in [&one, &other] {
            let got = s.raw("GET", &format!("/b/{path}"), &[&bearer(&b)], b"");
            assert_eq!(
                got.status, 200,
                "round {round}: b lost the blob it was answered for"
            );
            assert!(got.body.ends_with(&body), "round {round}: {got:?}");
        }
    }
}

#[test]
fn an_object_collected_through_one_replica_is_not_served_by_the_other() {
    let Some((one, other)) = replicas() else {
        return;
    };
    let a = one.project_with_token("a", "admin");
    let body = b"collected soon\n";
    let target = format!("/a/{}", object_path(&md5_hex(body)));
    assert!(one.raw("PUT", &target, &[&bearer(&a)], body).status < 300);
    // The other replica has answered for it, and remembers that.
    assert_eq!(other.raw("GET", &target, &[&bearer(&a)], b"").status, 200);
    assert_eq!(other.raw("HEAD", &target, &[&bearer(&a)], b"").status, 200);
    assert_eq!(one.collect_everything("a", &a).status, 200);
    assert_eq!(other.raw("HEAD", &target, &[&bearer(&a)], b"").status, 404);
    assert_eq!(other.raw("GET", &target, &[&bearer(&a)], b"").status, 404);
}

#[test]
fn the_same_object_uploaded_through_both_replicas_at_once_is_stored_once() {
    let Some((one, other)) = replicas() else {
        return;
    };
    let t = one.project_with_token("ml", "write");
    for round in 0..10u64 {
        let body = pseudo_random(200_000, 100 + round);
        let target = format!("/ml/{}", object_path(&md5_hex(&body)));
        let (x, y) = std::thread::scope(|scope| {
            let x = scope.spawn(|| one.raw("PUT", &target, &[&bearer(&t)], &body).status);
            let y = scope.spawn(|| other.raw("PUT", &target, &[&bearer(&t)], &body).status);
            (x.join().expect("put"), y.join().expect("put"))
        });
        assert!(x < 300 && y < 300, "round {round}: {x} {y}");
        for s in [&one, &other] {
            let got = Client::new()
                .get(format!("{}{target}", s.url()))
                .bearer_auth(&t)
                .send()
                .expect("get");
            assert_eq!(got.status().as_u16(), 200);
            assert!(got.bytes().expect("body")[..] == body[..], "round {round}");
        }
    }
    let usage: serde_json::Value = Client::new()
        .get(format!("{}/api/v1/projects/ml/usage", other.url()))
        .bearer_auth(&t)
        .send()
        .expect("usage")
        .json()
        .expect("usage json");
    assert_eq!(usage["objects"], 10, "{usage}");
    assert_eq!(usage["bytes"], 10 * 200_000, "{usage}");
}

#[test]
fn a_replica_killed_mid_upload_leaves_nothing_visible_and_the_other_serves_on() {
    use std::io::Write;
    let Some((mut one, other)) = replicas() else {
        return;
    };
    let t = one.project_with_token("ml", "write");
    let kept = pseudo_random(50_000, 1);
    let kept_target = format!("/ml/{}", object_path(&md5_hex(&kept)));
    assert!(one.raw("PUT", &kept_target, &[&bearer(&t)], &kept).status < 300);

    let partial = pseudo_random(4 << 20, 2);
    let partial_target = format!("/ml/{}", object_path(&md5_hex(&partial)));
    let mut c =
        std::net::TcpStream::connect(one.url().trim_start_matches("http://")).expect("connect");
    write!(
        c,
        "PUT {partial_target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Length: {}\r\n\r\n",
        partial.len()
    )
    .expect("send head");
    c.write_all(&partial[..1 << 20]).expect("send part");
    c.flush().expect("flush");
    one.kill();

    assert_eq!(
        other
            .raw("GET", &partial_target, &[&bearer(&t)], b"")
            .status,
        404
    );
    assert_eq!(
        other
            .raw("HEAD", &partial_target, &[&bearer(&t)], b"")
            .status,
        404
    );
    let got = other.raw("GET", &kept_target, &[&bearer(&t)], b"");
    assert_eq!(got.status, 200);
    // The other replica takes the same upload whole.
    assert!(
        other
            .raw("PUT", &partial_target, &[&bearer(&t)], &partial)
            .status
            < 300
    );
    assert_eq!(
        other
            .raw("HEAD", &partial_target, &[&bearer(&t)], b"")
            .status,
        200
    );
}

#[test]
fn a_grant_removed_through_one_replica_stops_reads_through_the_other_within_two_seconds() {
    let Some((one, other)) = replicas() else {
        return;
    };
    let writer = one.project_with_token("ml", "write");
    let body = b"readable while granted\n";
    let target = format!("/ml/{}", object_path(&md5_hex(body)));
    assert!(one.raw("PUT", &target, &[&bearer(&writer)], body).status < 300);
    one.admin(&["user", "create", "alice"]);
    one.admin(&["group", "create", "team"]);
    one.admin(&["group", "add-member", "team", "alice"]);
    one.admin(&[
        "grant",
        "set",
        "--project",
        "ml",
        "--group",
        "team",
        "--role",
        "read",
    ]);
    let run = one.admin(&["token", "create", "--user", "alice"]);
    let alice = run
        .stdout
        .lines()
        .last()
        .expect("token line")
        .trim()
        .to_string();
    assert_eq!(
        other.raw("GET", &target, &[&bearer(&alice)], b"").status,
        200
    );

    // Removed with `admin` next to the replicas: the one that has served her reads, and has
    // cached her role, must stop serving them.
    one.admin(&["grant", "remove", "--project", "ml", "--group", "team"]);
    eventually_within(Duration::from_secs(2), "reads are refused", || {
        other.raw("GET", &target, &[&bearer(&alice)], b"").status != 200
    });
    assert_eq!(
        other.raw("GET", &target, &[&bearer(&writer)], b"").status,
        200
    );
}
