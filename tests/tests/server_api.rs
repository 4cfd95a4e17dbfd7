//! The native JSON API, the admin CLI, health, metrics and configuration.

use lode_e2e::digest::md5_hex;
use lode_e2e::repo::Scratch;
use lode_e2e::server::{object_path, Server};
use reqwest::blocking::Client;
use serde_json::{json, Value};

struct Api<'a> {
    s: &'a Server,
    c: Client,
}

impl<'a> Api<'a> {
    fn new(s: &'a Server) -> Api<'a> {
        Api {
            s,
            c: Client::new(),
        }
    }

    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/api/v1{path}", self.s.url());
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.c.request(m, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }
}

#[test]
fn users_groups_grants_and_user_tokens() {
    let s = Server::start();
    let root = s.server_admin_token();
    let api = Api::new(&s);

    let (st, who) = api.call("GET", "/whoami", &root, None);
    assert_eq!(st, 200);
    assert_eq!(who["server_admin"], true);
    assert_eq!(who["user"], "admin");

    assert_eq!(
        api.call("POST", "/projects", &root, Some(json!({"name": "vision"})))
            .0,
        201
    );
    assert_eq!(
        api.call("POST", "/projects", &root, Some(json!({"name": "vision"})))
            .0,
        409
    );
    assert_eq!(
        api.call(
            "POST",
            "/projects",
            &root,
            Some(json!({"name": "Bad/Name"}))
        )
        .0,
        400
    );
    assert_eq!(
        api.call("POST", "/projects", &root, Some(json!({"name": "metrics"})))
            .0,
        400
    );
    assert_eq!(
        api.call("POST", "/projects", &root, Some(json!({"nom": "x"})))
            .0,
        400
    );
    assert_eq!(
        api.call("POST", "/projects", &root, Some(json!({"name": "audio"})))
            .0,
        201
    );
    assert_eq!(
        api.call("POST", "/users", &root, Some(json!({"name": "alice"})))
            .0,
        201
    );
    assert_eq!(
        api.call("POST", "/groups", &root, Some(json!({"name": "ml-team"})))
            .0,
        201
    );
    assert_eq!(
        api.call("PUT", "/groups/ml-team/members/alice", &root, None)
            .0,
        204
    );
    let (st, groups) = api.call("GET", "/groups", &root, None);
    assert_eq!(st, 200);
    assert_eq!(groups[0]["members"][0], "alice");

    // A user token acts with the user's grants, here through a group.
    let (st, created) = api.call(
        "POST",
        "/tokens",
        &root,
        Some(json!({"user": "alice", "expires_in_secs": 3600})),
    );
    assert_eq!(st, 201, "{created}");
    let alice = created["token"].as_str().unwrap().to_string();
    assert!(created["info"]["expires_at"].as_i64().is_some());
    assert_eq!(
        api.call("GET", "/projects/vision/usage", &alice, None).0,
        404
    );
    let (st, _) = api.call(
        "POST",
        "/projects/vision/grants",
        &root,
        Some(json!({"group": "ml-team", "role": "write"})),
    );
    assert_eq!(st, 200);
    assert_eq!(
        api.call("GET", "/projects/vision/usage", &alice, None).0,
        200
    );
    let (_, projects) = api.call("GET", "/projects", &alice, None);
    assert_eq!(projects.as_array().unwrap().len(), 1, "{projects}");
    assert_eq!(projects[0]["name"], "vision");

    // Alice can write objects but not administer the project.
    let data = b"alice's data".to_vec();
    let oid = md5_hex(&data);
    let r = api
        .c
        .put(format!("{}/{}", s.project_url("vision"), object_path(&oid)))
        .basic_auth("alice", Some(&alice))
        .body(data)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        api.call("GET", "/projects/vision/grants", &alice, None).0,
        403
    );
    assert_eq!(
        api.call(
            "POST",
            "/tokens",
            &alice,
            Some(json!({"project": "vision", "role": "read"}))
        )
        .0,
        403
    );

    // A direct user grant raises her to admin; then she can make project tokens.
    api.call(
        "POST",
        "/projects/vision/grants",
        &root,
        Some(json!({"user": "alice", "role": "admin"})),
    );
    let (st, grants) = api.call("GET", "/projects/vision/grants", &alice, None);
    assert_eq!(st, 200);
    assert_eq!(grants.as_array().unwrap().len(), 2);
    let (st, ci) = api.call(
        "POST",
        "/tokens",
        &alice,
        Some(json!({"project": "vision", "role": "read", "description": "ci"})),
    );
    assert_eq!(st, 201);
    let ci_token = ci["token"].as_str().unwrap().to_string();
    let (st, who) = api.call("GET", "/whoami", &ci_token, None);
    assert_eq!(st, 200);
    assert_eq!(who["project"], "vision");
    assert_eq!(who["role"], "read");
    let (_, tokens) = api.call("GET", "/projects/vision/tokens", &alice, None);
    assert_eq!(tokens.as_array().unwrap().len(), 1);
    assert_eq!(tokens[0]["description"], "ci");
    assert!(
        tokens.to_string().find(&ci_token).is_none(),
        "token listed in clear"
    );

    // Usage counts objects and bytes.
    let (_, usage) = api.call("GET", "/projects/vision/usage", &ci_token, None);
    assert_eq!(usage["objects"], 1);
    assert_eq!(usage["bytes"], 12);

    // Taking the grants away takes the access away at once.
    assert_eq!(
        api.call("DELETE", "/projects/vision/grants/user/alice", &root, None)
            .0,
        204
    );
    assert_eq!(
        api.call("DELETE", "/groups/ml-team/members/alice", &root, None)
            .0,
        204
    );
    assert_eq!(
        api.call("GET", "/projects/vision/usage", &alice, None).0,
        404
    );

    // The audit log saw the administration and the push.
    let (st, log) = api.call("GET", "/projects/vision/audit", &root, None);
    assert_eq!(st, 200);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "project.create",
        "grant.set",
        "object.write",
        "token.create",
        "grant.remove",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let (st, all) = api.call("GET", "/audit?limit=500", &root, None);
    assert_eq!(st, 200);
    assert!(all.to_string().contains("group.add_member"));

    // Unknown API routes answer JSON 404.
    let (st, body) = api.call("GET", "/nope", &root, None);
    assert_eq!(st, 404);
    assert_eq!(body["error"]["code"], "not_found");

    assert_eq!(api.call("DELETE", "/projects/audio", &root, None).0, 204);
    assert_eq!(api.call("GET", "/projects/audio", &root, None).0, 404);
}

#[test]
fn admin_cli_prints_the_token_alone_on_the_last_line() {
    let s = Server::start();
    let out = s.admin(&["project", "create", "ml"]);
    assert_eq!(out.stdout.trim(), "ml");
    for args in [
        vec!["token", "create", "--project", "ml", "--role", "read"],
        vec![
            "token",
            "create",
            "--project",
            "ml",
            "--role",
            "write",
            "--expires-in",
            "30d",
        ],
        vec!["token", "create", "--project", "ml", "--role", "admin"],
        vec!["token", "create", "--server-admin"],
    ] {
        let out = s.admin(&args);
        let last = out.stdout.lines().last().unwrap();
        assert_eq!(last.split('.').count(), 3, "{out:?}");
        let r = Client::new()
            .get(format!("{}/api/v1/whoami", s.url()))
            .bearer_auth(last)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{args:?}");
    }
    let bad = s.cli(&[
        "admin",
        "token",
        "create",
        "--project",
        "nosuch",
        "--role",
        "read",
    ]);
    assert_ne!(bad.code, 0);
    let bad = s.cli(&[
        "admin",
        "token",
        "create",
        "--project",
        "ml",
        "--role",
        "owner",
    ]);
    assert_ne!(bad.code, 0);
    let bad = s.cli(&["admin", "project", "create", "../x"]);
    assert_ne!(bad.code, 0);
    let list = s.admin(&["token", "list"]);
    let rows: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().any(|r| r["expires_at"].is_i64()));
    let usage = s.admin(&["usage", "ml"]);
    assert!(usage.stdout.contains("\"objects\": 0"));
    let audit = s.admin(&["audit", "--project", "ml"]);
    assert!(audit.stdout.contains("token.create"));
}

#[test]
fn health_readiness_and_metrics() {
    let s = Server::start();
    let t = s.project_with_token("ml", "write");
    let c = Client::new();
    assert_eq!(
        c.get(format!("{}/healthz", s.url()))
            .send()
            .unwrap()
            .status(),
        200
    );
    let r = c.get(format!("{}/readyz", s.url())).send().unwrap();
    assert_eq!(r.status(), 200);
    let data = vec![42u8; 5000];
    let oid = md5_hex(&data);
    let url = format!("{}/{}", s.project_url("ml"), object_path(&oid));
    c.put(&url).bearer_auth(&t).body(data).send().unwrap();
    c.get(&url).bearer_auth(&t).send().unwrap().bytes().unwrap();
    c.put(&url).bearer_auth(&t).body("wrong").send().unwrap();
    let r = c.get(format!("{}/metrics", s.url())).send().unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let m = r.text().unwrap();
    for needle in [
        "lode_http_requests_total{route=\"object\",method=\"PUT\",status=\"201\"} 1",
        "lode_http_requests_total{route=\"object\",method=\"GET\",status=\"200\"} 1",
        "lode_http_requests_total{route=\"object\",method=\"PUT\",status=\"400\"} 1",
        "lode_bytes_received_total 5005",
        "lode_bytes_sent_total 5000",
        "lode_objects_stored_total 1",
        "lode_upload_failures_total{reason=\"hash_mismatch\"} 1",
        "lode_project_objects 1",
    ] {
        assert!(m.contains(needle), "{needle} not in:\n{m}");
    }
    // Every response carries a request id.
    let r = c.get(format!("{}/healthz", s.url())).send().unwrap();
    assert!(r.headers().contains_key("x-request-id"));
}

#[test]
fn configuration_from_toml_env_and_defaults() {
    let home = Scratch::new();
    // No configuration at all: ./lode-data and a generated secret with mode 0600.
    let out = home
        .run(
            lode_e2e::bins::lode_server(),
            &["admin", "project", "create", "p"],
        )
        .ok();
    assert_eq!(out.stdout.trim(), "p");
    home.run(
        lode_e2e::bins::lode_server(),
        &["admin", "token", "create", "--server-admin"],
    )
    .ok();
    let secret = home.join("lode-data/secret");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(home.join("lode-data/lode.db").is_file());

    // A TOML file sets the data folder; a flag overrides the file.
    home.write(
        "lode.toml",
        "data_dir = \"from-file\"\nmax_object_size = \"1M\"\nlog_format = \"json\"\n",
    );
    home.run(
        lode_e2e::bins::lode_server(),
        &["--config", "lode.toml", "admin", "project", "create", "q"],
    )
    .ok();
    assert!(home.join("from-file/lode.db").is_file());
    home.run(
        lode_e2e::bins::lode_server(),
        &[
            "--config",
            "lode.toml",
            "--data-dir",
            "from-flag",
            "admin",
            "project",
            "list",
        ],
    )
    .ok();
    assert!(home.join("from-flag/lode.db").is_file());
    home.write("bad.toml", "colour = \"blue\"\n");
    let bad = home.run(
        lode_e2e::bins::lode_server(),
        &["--config", "bad.toml", "admin", "project", "list"],
    );
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("colour"), "{bad:?}");

    // The file's size limit applies to `serve` (data folder from the environment).
    let data = home.join("from-file");
    let s = Server::start_in(
        Some(&data),
        &[("LODE_CONFIG", home.join("lode.toml").to_str().unwrap())],
    );
    let t = s.project_with_token("r", "write");
    let big = vec![1u8; (1 << 20) + 1];
    let r = Client::new()
        .put(format!(
            "{}/{}",
            s.project_url("r"),
            object_path(&md5_hex(&big))
        ))
        .bearer_auth(&t)
        .body(big)
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(
        s.log().contains("\"level\""),
        "json logs requested by the file"
    );
}

#[test]
fn a_recreated_project_does_not_inherit_the_old_objects() {
    let s = Server::start();
    let root = s.server_admin_token();
    let api = Api::new(&s);
    api.call("POST", "/projects", &root, Some(json!({"name": "x"})));
    let t = s.token("x", "write");
    let data = b"old project data".to_vec();
    let oid = md5_hex(&data);
    let url = format!("{}/{}", s.project_url("x"), object_path(&oid));
    assert_eq!(
        api.c
            .put(&url)
            .bearer_auth(&t)
            .body(data)
            .send()
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        api.c.get(&url).bearer_auth(&t).send().unwrap().status(),
        200
    );

    assert_eq!(api.call("DELETE", "/projects/x", &root, None).0, 204);
    assert_eq!(
        api.c.get(&url).bearer_auth(&t).send().unwrap().status(),
        401,
        "its tokens went with it"
    );
    api.call("POST", "/projects", &root, Some(json!({"name": "x"})));
    let t2 = s.token("x", "read");
    assert_eq!(
        api.c.get(&url).bearer_auth(&t2).send().unwrap().status(),
        404
    );
    assert_eq!(
        api.c.get(&url).bearer_auth(&root).send().unwrap().status(),
        404
    );
}
