//! The lode-server image in a real Docker engine: how it runs (non-root, read-only root
//! filesystem, no capabilities, labels, health) and how it refuses bad settings: a data folder
//! its user cannot write, an index from a newer version, an unreadable key.

use std::collections::BTreeMap;
use std::path::Path;

use lode_e2e::docker::{self, chown_tree, docker, Container, Volume, IMAGE_UID};
use lode_e2e::repo::Scratch;
use lode_e2e::tls::TestCa;
use lode_e2e::uploads::{eventually_within, pseudo_random};
use reqwest::blocking::Client;
use std::time::Duration;

const HARDENED: &[&str] = &[
    "--read-only",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
];

#[test]
fn runs_as_a_numeric_user_on_a_read_only_root_and_turns_healthy() {
    if !docker::available() {
        return;
    }
    let data = Volume::new("data");
    let mut opts = HARDENED.to_vec();
    let mount = data.mount("/data");
    opts.extend(["-v", &mount, "--health-interval", "1s"]);
    let c = Container::run(&opts, &[]);
    let client = Client::new();
    c.wait_ready(&client, "http");

    assert_eq!(c.inspect("{{.Config.User}}"), "65532:65532");
    assert_eq!(c.inspect("{{.HostConfig.ReadonlyRootfs}}"), "true");
    let pid = c.inspect("{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65532"),
        "{uid_line}"
    );
    let caps = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert!(caps.ends_with("0000000000000000"), "{caps}");

    // What the image declares.
    let labels = c.inspect("{{json .Config.Labels}}");
    for key in [
        "org.opencontainers.image.version",
        "org.opencontainers.image.source",
        "org.opencontainers.image.licenses",
    ] {
        assert!(labels.contains(key), "{key} missing: {labels}");
    }
    assert!(labels.contains("\"org.opencontainers.image.licenses\":\"Apache-2.0\""));
    assert_eq!(c.inspect("{{.Config.StopSignal}}"), "SIGTERM");
    assert!(c
        .inspect("{{json .Config.ExposedPorts}}")
        .contains("8080/tcp"));
    assert!(c.inspect("{{json .Config.Volumes}}").contains("/data"));
    // No shell to run anything else with.
    assert_ne!(docker(&["exec", &c.name, "sh", "-c", "true"]).code, 0);

    // The health check is the image's own subcommand, and it passes.
    assert_eq!(c.exec(&["healthcheck"]).code, 0);
    eventually_within(
        Duration::from_secs(60),
        "the container turns healthy",
        || c.inspect("{{.State.Health.Status}}") == "healthy",
    );

    // Uploads work with nothing writable but /data.
    c.admin(&["project", "create", "p"]);
    let token = c.token(&["--project", "p", "--role", "write"]);
    let data = pseudo_random(100_000, 7);
    let oid = lode_e2e::digest::md5_hex(&data);
    let r = client
        .put(format!(
            "{}/p/{}",
            c.url("http"),
            lode_e2e::server::object_path(&oid)
        ))
        .bearer_auth(&token)
        .body(data)
        .send()
        .expect("upload");
    assert_eq!(r.status(), 201);
}

/// The names, sizes and contents of every file under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(e.path()).unwrap_or_default())
        })
        .collect()
}

/// The container's one line of complaint, after it exited non-zero.
fn refusal(c: &Container) -> String {
    let code = c.wait_exit();
    let logs = c.logs();
    assert_ne!(code, 0, "the container did not fail:\n{logs}");
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line:\n{logs}");
    lines[0].to_string()
}

#[test]
fn bad_settings_stop_the_container_with_one_line_and_change_nothing() {
    if !docker::available() {
        return;
    }
    let host = Scratch::new();

    // A bind-mounted folder that belongs to root.
    let root_owned = host.join("root-owned");
    std::fs::create_dir(&root_owned).unwrap();
    let mount = format!("{}:/data", root_owned.display());
    let c = Container::run(&["-v", &mount], &[]);
    let line = refusal(&c);
    assert!(
        line.contains("/data") && line.contains("uid 65532") && line.contains("chown"),
        "{line}"
    );
    assert!(snapshot(&root_owned).is_empty());

    // A data folder whose index a newer lode-server wrote.
    let newer = host.join("newer");
    let mut served = lode_e2e::server::Server::start_in(Some(&newer), &[]);
    served.create_project("ml");
    served.terminate();
    let py = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute(\"INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99990101000000, 'from the future', 1, X'00', 0)\"); c.commit()",
        )
        .arg(newer.join("lode.db"))
        .status()
        .expect("python3");
    assert!(py.success());
    chown_tree(&newer, IMAGE_UID);
    let before = snapshot(&newer);
    let mount = format!("{}:/data", newer.display());
    let c = Container::run(&["-v", &mount], &[]);
    let line = refusal(&c);
    assert!(
        line.contains("/data/lode.db") && line.contains("newer lode-server"),
        "{line}"
    );
    assert_eq!(snapshot(&newer), before, "the data folder changed");

    // A key the container user cannot read.
    let data = Volume::new("data");
    let dmount = data.mount("/data");
    let mut opts = vec!["-v".to_string(), dmount.clone()];
    opts.extend(docker::tls_options(
        host.path(),
        &TestCa::new("unreadable"),
        0o600,
    ));
    let c = Container::run(&opts.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let line = refusal(&c);
    assert!(
        line.contains("/certs/server.key") && line.contains("ermission denied"),
        "{line}"
    );
    let listing = Container::run_once(
        &["--entrypoint", "/usr/local/bin/lode-server", "-v", &dmount],
        &["fsck"],
    );
    assert!(
        listing
            .stdout
            .contains("checked 0 blob(s) against 0 indexed"),
        "{listing:?}"
    );
}

#[test]
fn healthcheck_fails_while_the_server_is_not_ready() {
    if !docker::available() {
        return;
    }
    let host = Scratch::new();
    let data = host.join("data");
    std::fs::create_dir(&data).unwrap();
    chown_tree(&data, IMAGE_UID);
    let mount = format!("{}:/data", data.display());
    let c = Container::run(
        &[
            "-v",
            &mount,
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
        &[],
    );
    c.wait_ready(&Client::new(), "http");
    assert_eq!(c.exec(&["healthcheck"]).code, 0);

    // The blob store stops taking writes: /readyz answers 503.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data.join("tmp"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let r = c.exec(&["healthcheck", "--timeout", "2s"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("503"), "{r:?}");
    eventually_within(
        Duration::from_secs(60),
        "the container turns unhealthy",
        || c.inspect("{{.State.Health.Status}}") == "unhealthy",
    );
    std::fs::set_permissions(data.join("tmp"), std::fs::Permissions::from_mode(0o755)).unwrap();

    // A server that accepts connections but never answers (frozen): exit 1 within the timeout.
    let listen = format!("127.0.0.1:{}", c.port());
    docker::docker_ok(&["pause", &c.name]);
    let r = lode_e2e::server::Server::cli_on(
        &host.join("unused"),
        &["healthcheck", "--listen", &listen, "--timeout", "1s"],
    );
    docker::docker_ok(&["unpause", &c.name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no answer within 1s"), "{r:?}");
}
