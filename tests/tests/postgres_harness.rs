//! The PostgreSQL the server's tests run against (tests/src/postgres.rs): one cluster shared by
//! a process's tests with an empty database for each, and a private cluster that keeps its data
//! across a stop and a start.

use lode_e2e::postgres::{self, Postgres};

#[test]
fn each_fresh_database_is_empty_and_separate() {
    let Some(pg) = postgres::shared() else { return };
    let a = pg.fresh_database();
    let b = pg.fresh_database();
    assert_ne!(a, b);
    assert!(a.starts_with("postgres://lode:") && a.contains("@127.0.0.1:"));
    let name = |url: &str| url.rsplit('/').next().unwrap().to_string();
    pg.psql(
        &name(&a),
        "CREATE TABLE t (x int); INSERT INTO t VALUES (7)",
    );
    assert_eq!(pg.psql(&name(&a), "SELECT x FROM t"), "7");
    let tables = pg.psql(
        &name(&b),
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    );
    assert_eq!(tables, "0");
}

#[test]
fn a_private_cluster_keeps_its_data_across_a_restart() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap().to_string();
    pg.psql(&db, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)");
    pg.stop();
    let refused = std::net::TcpStream::connect(("127.0.0.1", pg.port()));
    assert!(
        refused.is_err(),
        "a stopped cluster must not accept connections"
    );
    pg.restart();
    assert_eq!(pg.psql(&db, "SELECT x FROM t"), "42");
}
