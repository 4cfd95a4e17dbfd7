//! lode-server with its index in PostgreSQL (`--database-url`, `LODE_DATABASE_URL`): start-up
//! against a database that does not answer, readiness while the database goes away and comes
//! back, the signing secret kept in the database, and two servers sharing one database.

use std::process::Command;
use std::time::Duration;

use lode_e2e::digest::md5_hex;
use lode_e2e::postgres::{self, Postgres, PASSWORD};
use lode_e2e::repo::Run;
use lode_e2e::server::{object_path, Server};
use lode_e2e::uploads::{eventually, eventually_within, pseudo_random};
use reqwest::blocking::Client;

fn put(s: &Server, token: &str, project: &str, data: &[u8]) -> u16 {
    Client::new()
        .put(format!(
            "{}/{}",
            s.project_url(project),
            object_path(&md5_hex(data))
        ))
        .bearer_auth(token)
        .body(data.to_vec())
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The status of a GET of the object, and whether the body is `data`.
fn get(s: &Server, token: &str, project: &str, data: &[u8]) -> (u16, bool) {
    Client::new()
        .get(format!(
            "{}/{}",
            s.project_url(project),
            object_path(&md5_hex(data))
        ))
        .bearer_auth(token)
        .send()
        .map(|r| {
            let status = r.status().as_u16();
            (status, r.bytes().is_ok_and(|b| b[..] == data[..]))
        })
        .unwrap_or((0, false))
}

fn readyz(s: &Server) -> u16 {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .get(format!("{}/readyz", s.url()))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[test]
fn a_database_that_does_not_answer_stops_every_command_with_one_line() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("postgres://lode:{PASSWORD}@127.0.0.1:{port}/nowhere");
    let data = tempfile::tempdir().unwrap();
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["admin", "project", "list"],
        &["fsck"],
    ] {
        let r: Run = Command::new(lode_e2e::bins::lode_server())
            .args(args)
            .env("LODE_DATA_DIR", data.path())
            .env("LODE_DATABASE_URL", &url)
            .env_remove("LODE_CONFIG")
            .output()
            .expect("run lode-server")
            .into();
        assert_ne!(r.code, 0, "{args:?} started without its database");
        let stderr = r.stderr.trim();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("Error: cannot reach PostgreSQL database 'nowhere' on 127.0.0.1:")
                && stderr.contains(&port.to_string()),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains(PASSWORD), "{args:?} printed the password");
    }
    // A URL that is not one is refused without being quoted.
    let r: Run = Command::new(lode_e2e::bins::lode_server())
        .args(["admin", "project", "list"])
        .env("LODE_DATA_DIR", data.path())
        .env(
            "LODE_DATABASE_URL",
            format!("postgres://lode:{PASSWORD}@127.0.0.1:99999/x"),
        )
        .output()
        .expect("run lode-server")
        .into();
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("database URL"), "{}", r.stderr);
    assert!(!r.stderr.contains(PASSWORD), "{}", r.stderr);
}

#[test]
fn readiness_follows_the_database_and_the_server_recovers_when_it_returns() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let s = Server::start_on_database(&pg.fresh_database(), None, &[]);
    let token = s.project_with_token("ml", "write");
    let before = pseudo_random(10_000, 1);
    assert_eq!(put(&s, &token, "ml", &before), 201);
    assert_eq!(readyz(&s), 200);

    pg.stop();
    eventually_within(Duration::from_secs(5), "/readyz answers 503", || {
        readyz(&s) == 503
    });
    // An upload while the index is away is refused as unavailable, and never acknowledged.
    let during = pseudo_random(10_000, 2);
    assert_eq!(put(&s, &token, "ml", &during), 503);

    pg.restart();
    eventually("/readyz answers 200 again", || readyz(&s) == 200);
    assert_eq!(get(&s, &token, "ml", &before), (200, true));
    assert_eq!(get(&s, &token, "ml", &during).0, 404);
    assert_eq!(put(&s, &token, "ml", &during), 201);
    assert_eq!(get(&s, &token, "ml", &during), (200, true));
}

#[test]
fn tokens_are_signed_with_the_secret_in_the_database() {
    let Some(pg) = postgres::shared() else { return };
    let url = pg.fresh_database();
    // Two servers on one database and one blob folder.
    let a = Server::start_on_database(&url, None, &[]);
    let b = Server::start_on_database(&url, Some(a.data_dir()), &[]);
    let token = a.project_with_token("ml", "write");
    let data = pseudo_random(5_000, 3);
    assert_eq!(put(&b, &token, "ml", &data), 201);
    assert!(!a.data_dir().join("secret").exists());
    let db = url.rsplit('/').next().unwrap();
    assert_eq!(
        pg.psql(db, "SELECT length(secret) FROM signing_secret"),
        "32"
    );

    // A secret file, when given, is used instead, by every server given it.
    let shared = tempfile::tempdir().unwrap();
    let file = shared.path().join("secret");
    let file = file.to_str().unwrap();
    let env = [("LODE_SECRET_FILE", file)];
    let c = Server::start_on_database(&url, Some(a.data_dir()), &env);
    let d = Server::start_on_database(&url, Some(a.data_dir()), &env);
    let from_file = c.token("ml", "read");
    assert_eq!(get(&d, &from_file, "ml", &data), (200, true));
    assert_eq!(get(&a, &from_file, "ml", &data).0, 401);
    assert_eq!(get(&a, &token, "ml", &data), (200, true));
}

#[test]
fn backup_refuses_a_postgresql_index_and_names_pg_dump() {
    let Some(pg) = postgres::shared() else { return };
    let s = Server::start_on_database(&pg.fresh_database(), None, &[]);
    s.create_project("ml");
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("backup");
    let r = s.cli(&["backup", dest.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("pg_dump"), "{r:?}");
    assert!(!r.stderr.contains(PASSWORD), "{r:?}");
    assert!(!dest.exists(), "a refused backup left {}", dest.display());
}
