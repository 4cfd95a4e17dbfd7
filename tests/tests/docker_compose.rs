//! `docker/compose.yaml` as the README uses it, in the real engine: `up -d`, the first admin
//! token and a project through `exec`, a push, and the data kept across `down` and `up`.

use std::process::Command;

use lode_e2e::docker::{self, docker, unique_name};
use lode_e2e::remote_repo::{RemoteRepo, Tool};
use lode_e2e::repo::Run;
use lode_e2e::uploads::eventually_within;
use std::time::Duration;

/// `docker compose` where the plugin is installed, else the standalone `docker-compose`.
fn compose_command() -> Vec<&'static str> {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if plugin {
        vec!["docker", "compose"]
    } else {
        vec!["docker-compose"]
    }
}

/// One compose project with its own name, port and volumes; taken down with them on drop.
struct Deployment {
    project: String,
    port: u16,
    env: Vec<(String, String)>,
}

impl Deployment {
    fn new() -> Deployment {
        let project = unique_name("compose").replace('-', "");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let env = vec![
            ("LODE_IMAGE".to_string(), docker::image().to_string()),
            ("LODE_PUBLISH".to_string(), format!("127.0.0.1:{port}")),
            ("LODE_VOLUME".to_string(), format!("{project}-data")),
            (
                "LODE_BACKUP_VOLUME".to_string(),
                format!("{project}-backups"),
            ),
        ];
        Deployment { project, port, env }
    }

    fn compose(&self, args: &[&str]) -> Run {
        let cmd = compose_command();
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/compose.yaml");
        Command::new(cmd[0])
            .args(&cmd[1..])
            .args(["-p", &self.project, "-f", file])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run compose")
            .into()
    }

    #[track_caller]
    fn compose_ok(&self, args: &[&str]) -> Run {
        let r = self.compose(args);
        assert_eq!(r.code, 0, "compose {args:?}:\n{}\n{}", r.stdout, r.stderr);
        r
    }

    /// `lode-server ARGS` in the service, as the README's alias runs it.
    fn lode_server(&self, args: &[&str]) -> Run {
        let mut all = vec!["exec", "-T", "lode-server", "lode-server"];
        all.extend_from_slice(args);
        self.compose_ok(&all)
    }

    fn wait_ready(&self) {
        let client = reqwest::blocking::Client::new();
        eventually_within(Duration::from_secs(60), "the service is ready", || {
            client
                .get(format!("http://127.0.0.1:{}/readyz", self.port))
                .send()
                .is_ok_and(|r| r.status() == 200)
        });
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--timeout", "5"]);
    }
}

#[test]
fn the_readme_team_path_on_compose_keeps_data_across_down_and_up() {
    if !docker::available() {
        return;
    }
    let d = Deployment::new();
    d.compose_ok(&["up", "-d"]);
    d.wait_ready();
    let name = d
        .compose_ok(&["ps", "-q", "lode-server"])
        .stdout
        .trim()
        .to_string();
    let inspect = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.RestartPolicy.Name}} {{.Config.StopTimeout}}",
        &name,
    ]);
    assert_eq!(
        inspect.stdout.trim(),
        "true [ALL] unless-stopped 300",
        "{inspect:?}"
    );

    let last = |r: Run| {
        r.stdout
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let admin = last(d.lode_server(&["admin", "token", "create", "--server-admin"]));
    assert!(!admin.is_empty());
    let alice = docker::team_token(|args| {
        let mut all = vec!["exec", "-T", "lode-server", "lode-server"];
        all.extend_from_slice(args);
        d.compose(&all)
    });

    let url = format!("http://127.0.0.1:{}/ml", d.port);
    let repo = RemoteRepo::new(Tool::Lode, &url, &alice);
    repo.add_and_commit(&[("data.csv", b"a,b\n1,2\n")]);
    repo.run(&["push"]).ok();
    d.lode_server(&["backup", "/backups/first"]);

    d.compose_ok(&["down", "--timeout", "30"]);
    d.compose_ok(&["up", "-d"]);
    d.wait_ready();
    let clone = repo.clone_with(Tool::Lode);
    clone.run(&["pull"]).ok();
    assert_eq!(clone.repo.read("data.csv"), b"a,b\n1,2\n");
}

/// `docker compose config` of `docker/compose.scale.yaml` with the given variables.
fn scale_config(args: &[&str], env: &[(&str, &str)]) -> Run {
    let cmd = compose_command();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/compose.scale.yaml");
    Command::new(cmd[0])
        .args(&cmd[1..])
        .args(["-p", "lodescale", "-f", file, "config"])
        .args(args)
        .env_remove("LODE_DB_PASSWORD")
        .env_remove("LODE_S3_ACCESS_KEY")
        .env_remove("LODE_S3_SECRET_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("run compose")
        .into()
}

/// The scale-out topology for users: compose accepts it, every replica gets the shared index and
/// bucket, the load balancer sends to every replica, and a missing secret is named.
#[test]
fn the_scale_out_compose_file_is_valid() {
    if !docker::available() {
        return;
    }
    let env = [
        ("LODE_DB_PASSWORD", "db-secret"),
        ("LODE_S3_ACCESS_KEY", "key-id"),
        ("LODE_S3_SECRET_KEY", "key-secret"),
    ];
    let services = scale_config(&["--services"], &env);
    assert_eq!(services.code, 0, "{services:?}");
    let mut names: Vec<&str> = services.stdout.lines().map(str::trim).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "lb",
            "lode-1",
            "lode-2",
            "lode-3",
            "postgres",
            "s3",
            "s3-bucket"
        ]
    );

    let full = scale_config(&[], &env);
    assert_eq!(full.code, 0, "{full:?}");
    let urls = full
        .stdout
        .matches("LODE_DATABASE_URL: postgres://lode:db-secret@postgres:5432/lode")
        .count();
    let stores = full
        .stdout
        .matches("LODE_BLOB_STORE: s3://lode/blobs")
        .count();
    assert_eq!((urls, stores), (3, 3), "{}", full.stdout);

    let nginx = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docker/nginx.scale.conf"
    ))
    .expect("nginx.scale.conf");
    let upstreams: Vec<&str> = nginx
        .lines()
        .filter(|l| l.trim_end().ends_with(';'))
        .filter_map(|l| l.trim().strip_prefix("server "))
        .filter_map(|l| l.split(':').next())
        .collect();
    let replicas: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("lode-"))
        .collect();
    assert_eq!(upstreams, replicas, "the load balancer's replicas");

    let missing = scale_config(&[], &env[1..]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("LODE_DB_PASSWORD"),
        "{}",
        missing.stderr
    );
}
