//! The authorization matrix: every route against every kind of credential, with the status each
//! must get, and checks that nothing of a project leaks or changes without its grant.

use base64::Engine as _;
use lode_e2e::digest::md5_hex;
use lode_e2e::server::{object_path, Server};
use reqwest::blocking::Client;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cred {
    None,
    Malformed,
    BadSignature,
    AlgNone,
    Expired,
    Revoked,
    OtherProject,
    Read,
    Write,
    Admin,
    ServerAdmin,
}

const ALL: [Cred; 11] = [
    Cred::None,
    Cred::Malformed,
    Cred::BadSignature,
    Cred::AlgNone,
    Cred::Expired,
    Cred::Revoked,
    Cred::OtherProject,
    Cred::Read,
    Cred::Write,
    Cred::Admin,
    Cred::ServerAdmin,
];

struct Fixture {
    server: Server,
    tokens: std::collections::HashMap<&'static str, String>,
    present: String,
    present_bytes: Vec<u8>,
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl Fixture {
    fn new() -> Fixture {
        let server = Server::start();
        server.create_project("a");
        server.create_project("b");
        let mut tokens = std::collections::HashMap::new();
        tokens.insert("read", server.token("a", "read"));
        tokens.insert("write", server.token("a", "write"));
        tokens.insert("admin", server.token("a", "admin"));
        tokens.insert("other", server.token("b", "admin"));
        tokens.insert("server", server.server_admin_token());
        let expired = server.admin(&[
            "token",
            "create",
            "--project",
            "a",
            "--role",
            "admin",
            "--expires-in",
            "0s",
        ]);
        tokens.insert(
            "expired",
            expired.stdout.lines().last().unwrap().to_string(),
        );
        let made = server.admin(&["token", "create", "--project", "a", "--role", "admin"]);
        let revoked = made.stdout.lines().last().unwrap().to_string();
        let list = server.admin(&["token", "list", "--project", "a"]);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
        let id = rows
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .find(|id| made.stderr.contains(id.as_str()))
            .expect("new token id in the admin output");
        server.admin(&["token", "revoke", &id]);
        tokens.insert("revoked", revoked);

        let present_bytes = b"secret project data".to_vec();
        let present = md5_hex(&present_bytes);
        let r = Client::new()
            .put(format!(
                "{}/{}",
                server.project_url("a"),
                object_path(&present)
            ))
            .bearer_auth(&tokens["write"])
            .body(present_bytes.clone())
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        Fixture {
            server,
            tokens,
            present,
            present_bytes,
        }
    }

    fn header(&self, c: Cred) -> Option<String> {
        let t = |k: &str| self.tokens[k].clone();
        Some(match c {
            Cred::None => return None,
            Cred::Malformed => "Bearer not-a-token".into(),
            Cred::BadSignature => {
                // A valid header and payload with another token's signature.
                let good: Vec<&str> = self.tokens["admin"].split('.').collect();
                let other: Vec<&str> = self.tokens["write"].split('.').collect();
                format!("Bearer {}.{}.{}", good[0], good[1], other[2])
            }
            Cred::AlgNone => {
                let good: Vec<&str> = self.tokens["admin"].split('.').collect();
                format!(
                    "Bearer {}.{}.",
                    b64(br#"{"alg":"none","typ":"JWT"}"#),
                    good[1]
                )
            }
            Cred::Expired => format!("Bearer {}", t("expired")),
            Cred::Revoked => format!("Bearer {}", t("revoked")),
            Cred::OtherProject => format!("Bearer {}", t("other")),
            Cred::Read => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.format_basic(&t("read"))
            ),
            Cred::Write => format!("Bearer {}", t("write")),
            Cred::Admin => format!("Bearer {}", t("admin")),
            Cred::ServerAdmin => format!("Bearer {}", t("server")),
        })
    }
}

trait BasicFormat {
    fn format_basic(&self, token: &str) -> String;
}

impl BasicFormat for base64::engine::GeneralPurpose {
    fn format_basic(&self, token: &str) -> String {
        self.encode(format!("dvc:{token}"))
    }
}

fn is_invalid(c: Cred) -> bool {
    matches!(
        c,
        Cred::None
            | Cred::Malformed
            | Cred::BadSignature
            | Cred::AlgNone
            | Cred::Expired
            | Cred::Revoked
    )
}

fn rank(c: Cred) -> u8 {
    match c {
        Cred::Read => 1,
        Cred::Write => 2,
        Cred::Admin | Cred::ServerAdmin => 3,
        _ => 0,
    }
}

/// What a route needs on project `a`; `Server` for server-admin-only routes; `Any` for any
/// valid token.
#[derive(Clone, Copy)]
enum Need {
    Project(u8),
    Server,
    Any,
}

fn expected(c: Cred, need: Need, ok: u16) -> u16 {
    if is_invalid(c) {
        return 401;
    }
    match need {
        Need::Any => ok,
        Need::Server => {
            if c == Cred::ServerAdmin {
                ok
            } else {
                403
            }
        }
        Need::Project(r) => {
            if c == Cred::OtherProject {
                404
            } else if rank(c) >= r {
                ok
            } else {
                403
            }
        }
    }
}

#[test]
fn every_route_against_every_credential() {
    let f = Fixture::new();
    let s = &f.server;
    let absent = md5_hex(b"never stored anywhere");
    let mut failures = Vec::new();
    for c in ALL {
        let hdr = f.header(c);
        let auth: Vec<String> = hdr.iter().map(|h| format!("Authorization: {h}")).collect();
        let auth_refs: Vec<&str> = auth.iter().map(String::as_str).collect();
        let up = format!("upload by {c:?}");
        let up_oid = md5_hex(up.as_bytes());
        let batch = serde_json::json!({"kind": "md5", "oids": [f.present, absent]}).to_string();
        let token_req = serde_json::json!({"project": "a", "role": "read"}).to_string();
        let project_req = serde_json::json!({"name": format!("new-{}", rank(c))}).to_string();
        let cases: Vec<(&str, String, Vec<u8>, Need, u16)> = vec![
            (
                "GET",
                format!("/a/{}", object_path(&f.present)),
                vec![],
                Need::Project(1),
                200,
            ),
            (
                "HEAD",
                format!("/a/{}", object_path(&f.present)),
                vec![],
                Need::Project(1),
                200,
            ),
            (
                "GET",
                format!("/a/{}", object_path(&absent)),
                vec![],
                Need::Project(1),
                404,
            ),
            (
                "PUT",
                format!("/a/{}", object_path(&up_oid)),
                up.clone().into_bytes(),
                Need::Project(2),
                201,
            ),
            (
                "POST",
                format!("/a/{}", object_path(&up_oid)),
                up.clone().into_bytes(),
                Need::Project(2),
                200,
            ),
            (
                "POST",
                "/api/v1/projects/a/objects/batch".into(),
                batch.into_bytes(),
                Need::Project(1),
                200,
            ),
            (
                "GET",
                "/api/v1/projects/a".into(),
                vec![],
                Need::Project(1),
                200,
            ),
            (
                "GET",
                "/api/v1/projects/a/usage".into(),
                vec![],
                Need::Project(1),
                200,
            ),
            (
                "GET",
                "/api/v1/projects/a/grants".into(),
                vec![],
                Need::Project(3),
                200,
            ),
            (
                "GET",
                "/api/v1/projects/a/tokens".into(),
                vec![],
                Need::Project(3),
                200,
            ),
            (
                "GET",
                "/api/v1/projects/a/audit".into(),
                vec![],
                Need::Project(3),
                200,
            ),
            (
                "POST",
                "/api/v1/tokens".into(),
                token_req.into_bytes(),
                Need::Project(3),
                201,
            ),
            ("GET", "/api/v1/whoami".into(), vec![], Need::Any, 200),
            ("GET", "/api/v1/projects".into(), vec![], Need::Any, 200),
            (
                "POST",
                "/api/v1/projects".into(),
                project_req.into_bytes(),
                Need::Server,
                201,
            ),
            ("GET", "/api/v1/users".into(), vec![], Need::Server, 200),
            ("GET", "/api/v1/groups".into(), vec![], Need::Server, 200),
            ("GET", "/api/v1/audit".into(), vec![], Need::Server, 200),
        ];
        for (method, target, body, need, ok) in cases {
            // The object POST re-uploads what the PUT just stored, so writers get 200 there.
            let want = expected(c, need, ok);
            let r = s.raw(method, &target, &auth_refs, &body);
            if r.status != want {
                failures.push(format!(
                    "{c:?} {method} {target}: got {} want {want} ({})",
                    r.status, r.body
                ));
            }
            if r.status >= 400 {
                assert!(
                    r.body.contains("\"error\"") || method == "HEAD",
                    "{c:?} {method} {target}: error body is not JSON: {}",
                    r.body
                );
            }
            if r.status == 401 {
                assert!(r.headers.iter().any(|(k, _)| k == "www-authenticate"));
            }
            let leaked = String::from_utf8_lossy(&f.present_bytes).into_owned();
            if rank(c) == 0 && c != Cred::ServerAdmin {
                assert!(
                    !r.body.contains(&leaked),
                    "{c:?} {method} {target} leaked data"
                );
            }
        }
        // Writes that were refused left nothing behind.
        let stored = s.stored_files().iter().any(|p| p.ends_with(&up_oid[2..]));
        assert_eq!(stored, rank(c) >= 2, "{c:?}: upload stored = {stored}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_token_without_a_grant_cannot_tell_present_from_absent() {
    let f = Fixture::new();
    let s = &f.server;
    let absent = md5_hex(b"not here");
    for cred in [Cred::OtherProject, Cred::None, Cred::Revoked] {
        let hdr = f.header(cred);
        let auth: Vec<String> = hdr.iter().map(|h| format!("Authorization: {h}")).collect();
        let auth: Vec<&str> = auth.iter().map(String::as_str).collect();
        for method in ["GET", "HEAD"] {
            let p = s.raw(
                method,
                &format!("/a/{}", object_path(&f.present)),
                &auth,
                b"",
            );
            let a = s.raw(method, &format!("/a/{}", object_path(&absent)), &auth, b"");
            assert_eq!(
                (p.status, &p.body),
                (a.status, &a.body),
                "{cred:?} {method}"
            );
            // A project that does not exist answers the same as one without a grant.
            let n = s.raw(
                method,
                &format!("/nosuch/{}", object_path(&f.present)),
                &auth,
                b"",
            );
            assert_eq!(
                (p.status, &p.body.replace("'a'", "'nosuch'")),
                (n.status, &n.body)
            );
        }
        let batch = serde_json::json!({"kind": "md5", "oids": [f.present]}).to_string();
        let r = s.raw(
            "POST",
            "/api/v1/projects/a/objects/batch",
            &auth,
            batch.as_bytes(),
        );
        assert!(r.status == 404 || r.status == 401, "{cred:?}: {r:?}");
        assert!(!r.body.contains("missing"));
    }
}

#[test]
fn tokens_are_stored_hashed_and_never_logged() {
    let f = Fixture::new();
    let s = &f.server;
    // Use every token once so they pass through the server.
    for (_, t) in f.tokens.iter() {
        let _ = Client::new()
            .get(format!("{}/api/v1/whoami", s.url()))
            .bearer_auth(t)
            .send();
    }
    let db = s.index_contents();
    // The token rows are there (their creator), without the tokens.
    assert!(
        db.contains("admin-cli"),
        "the index's contents were not read"
    );
    let log = s.log();
    for (name, t) in f.tokens.iter() {
        let signature = t.rsplit('.').next().unwrap();
        assert!(
            !db.contains(signature),
            "{name} token stored in the database"
        );
        assert!(!log.contains(signature), "{name} token in the server log");
    }
    if s.database_url().is_none() {
        let secret = std::fs::metadata(s.data_dir().join("secret")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(secret.permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn revocation_through_the_api_applies_at_once() {
    let f = Fixture::new();
    let s = &f.server;
    let c = Client::new();
    let created: serde_json::Value = c
        .post(format!("{}/api/v1/tokens", s.url()))
        .bearer_auth(&f.tokens["admin"])
        .json(&serde_json::json!({"project": "a", "role": "read", "description": "ci"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = created["token"].as_str().unwrap();
    let id = created["info"]["id"].as_str().unwrap();
    let url = format!("{}/{}", s.project_url("a"), object_path(&f.present));
    assert_eq!(c.get(&url).bearer_auth(token).send().unwrap().status(), 200);
    let r = c
        .delete(format!("{}/api/v1/tokens/{id}", s.url()))
        .bearer_auth(&f.tokens["admin"])
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.get(&url).bearer_auth(token).send().unwrap().status(), 401);
    // Another project's admin cannot revoke (or even see) project a's tokens.
    let r = c
        .delete(format!("{}/api/v1/tokens/{id}", s.url()))
        .bearer_auth(&f.tokens["other"])
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}
