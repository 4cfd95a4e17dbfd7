//! Two `lode-server` replicas on one PostgreSQL index (and, for now, one blob folder): data
//! pushed through one is pulled through the other, by lode and by real DVC, and a token revoked
//! through one is refused by the other within two seconds, whatever either had cached.

use std::time::Duration;

use lode_e2e::postgres;
use lode_e2e::remote_repo::{RemoteRepo, Tool};
use lode_e2e::server::Server;
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
